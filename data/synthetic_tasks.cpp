#include "data/synthetic_tasks.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "data/file_io.h"
#include "data/random.h"

namespace {

// The seed of an independent stream for one purpose: a hash, so that streams of nearby seeds or purposes do not
// overlap (splitmix64 streams whose seeds differ by a multiple of its increment are shifted copies of each other).
uint64_t stream_seed(uint64_t seed, uint64_t purpose) {
    Random mix(seed ^ (purpose * 0xD1B54A32D192ED03ULL));
    return mix.next();
}

// Fisher-Yates shuffle of 0..n-1 from the given stream.
std::vector<int> random_permutation(int n, Random& random) {
    std::vector<int> p(n);
    std::iota(p.begin(), p.end(), 0);
    for (int i = n - 1; i > 0; i--) std::swap(p[i], p[random.below(uint32_t(i + 1))]);
    return p;
}

// One example of task t: x drawn from `random`, mapped through substitution (alphabet_size) symbol by symbol; x's
// symbols written from input_symbols (alphabet_size characters).
TaskExample draw_example(const std::string& name, const std::vector<int>& substitution, const char* input_symbols,
                         const SyntheticBenchmarkOptions& o, Random& random) {
    const int length = o.min_length + int(random.below(uint32_t(o.max_length - o.min_length + 1)));
    std::string x, answer;
    for (int k = 0; k < length; k++) {
        const int symbol = int(random.below(uint32_t(o.alphabet_size)));
        x += input_symbols[symbol];
        answer += char('a' + substitution[symbol]);
    }
    return TaskExample{name + " " + x + "=", answer};
}

}  // namespace

std::vector<Task> synthetic_cl_benchmark(const SyntheticBenchmarkOptions& o) {
    if (o.alphabet_size < 2 || o.alphabet_size > 26)
        fail("synthetic benchmark: the alphabet size must be 2..26, got " + std::to_string(o.alphabet_size));
    if (o.num_tasks < 1 || o.num_tasks > o.alphabet_size)
        fail("synthetic benchmark: the number of tasks must be 1..alphabet size (" + std::to_string(o.alphabet_size) +
             ") so that every task maps every symbol differently, got " + std::to_string(o.num_tasks));
    if (o.min_length < 1 || o.max_length < o.min_length || o.max_length > 8)
        fail("synthetic benchmark: string lengths must satisfy 1 <= min <= max <= 8, got " +
             std::to_string(o.min_length) + ".." + std::to_string(o.max_length));
    const int symbols = int(sizeof(SYNTHETIC_INPUT_SYMBOLS)) - 1;
    if (o.disjoint_inputs && o.num_tasks * o.alphabet_size > symbols)
        fail("synthetic benchmark: disjoint inputs need tasks x alphabet size <= " + std::to_string(symbols) +
             ", got " + std::to_string(o.num_tasks) + " x " + std::to_string(o.alphabet_size));
    if (o.train_per_task < 1 || o.test_per_task < 1)
        fail("synthetic benchmark: every task needs at least one train and one test example");

    // The Latin square: P_t(s) = out[(shift[t] + column[s]) mod A], shifts distinct across tasks.
    const int A = o.alphabet_size;
    Random square(stream_seed(o.seed, 0));
    const std::vector<int> out = random_permutation(A, square);
    const std::vector<int> column = random_permutation(A, square);
    const std::vector<int> shift = random_permutation(A, square);  // the first num_tasks entries are used

    std::vector<Task> tasks(o.num_tasks);
    for (int t = 0; t < o.num_tasks; t++) {
        Task& task = tasks[t];
        task.name = "sub" + std::to_string(t + 1);
        task.format = TaskFormat::prompt_answer;
        task.directory = "synthetic";
        std::vector<int> substitution(A);
        for (int s = 0; s < A; s++) substitution[s] = out[(shift[t] + column[s]) % A];
        // One stream per (task, split), so changing one split's size leaves the other's examples as they were.
        Random train(stream_seed(o.seed, uint64_t(2 * t + 1)));
        Random test(stream_seed(o.seed, uint64_t(2 * t + 2)));
        const char* inputs = SYNTHETIC_INPUT_SYMBOLS + (o.disjoint_inputs ? size_t(t) * A : 0);
        for (int i = 0; i < o.train_per_task; i++)
            task.train.push_back(draw_example(task.name, substitution, inputs, o, train));
        for (int i = 0; i < o.test_per_task; i++)
            task.test.push_back(draw_example(task.name, substitution, inputs, o, test));
    }
    return tasks;
}
