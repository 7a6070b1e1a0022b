// The data side of continual learning: the byte and GPT-2 codecs, the built-in synthetic benchmark (deterministic,
// conflicting tasks that name themselves), training rows (answer-only loss weights, truncation that keeps the
// prompt's end, padding) and shuffled epochs (the replay buffer's tests: test/test_replay_buffer.cpp). The last test
// encodes order 1 of the shared benchmark and is skipped when it is absent.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "data/cl_batches.h"
#include "data/synthetic_tasks.h"
#include "data/text_codec.h"
#include "data/tokenizer.h"
#include "lora/metrics.h"
#include "test/test_support.h"

using Catch::Contains;

namespace {

EncodedExample example(std::vector<int> prompt, std::vector<int> answer) {
    EncodedExample e;
    e.prompt = std::move(prompt);
    e.answer = std::move(answer);
    return e;
}

// One row of a batch as vectors, for whole-row comparisons.
struct Row {
    std::vector<int> inputs, targets;
    std::vector<float> weights;
};
Row row_of(const TrainingBatch& batch, int b) {
    const size_t begin = size_t(b) * batch.T, end = begin + batch.T;
    return Row{{batch.inputs.begin() + begin, batch.inputs.begin() + end},
               {batch.targets.begin() + begin, batch.targets.begin() + end},
               {batch.loss_weights.begin() + begin, batch.loss_weights.begin() + end}};
}

TrainingBatch empty_batch(int B, int T) {
    TrainingBatch batch;
    batch.B = B;
    batch.T = T;
    batch.inputs.assign(size_t(B) * T, -7);  // poisoned: every element must be written
    batch.targets.assign(size_t(B) * T, -7);
    batch.loss_weights.assign(size_t(B) * T, -7.0f);
    return batch;
}

// "sub2 cab=" -> ("sub2", "cab")
std::pair<std::string, std::string> split_prompt(const std::string& prompt) {
    const size_t space = prompt.find(' ');
    REQUIRE(space != std::string::npos);
    REQUIRE(prompt.back() == '=');
    return {prompt.substr(0, space), prompt.substr(space + 1, prompt.size() - space - 2)};
}

}  // namespace

TEST_CASE("cl data: the byte codec round-trips every byte and rejects ids outside its vocabulary", "[cl_data]") {
    TextCodec codec = byte_codec();
    CHECK(codec.name == "byte");
    CHECK(codec.eot_token == 256);
    CHECK(codec.vocab_size == 257);

    std::string all_bytes;
    for (int b = 0; b < 256; b++) all_bytes += char(b);
    const std::string text = "sub1 abc=\n" + all_bytes + "na\xC3\xAFve \xFF\xFE";
    std::vector<int> ids = codec.encode(text);
    REQUIRE(ids.size() == text.size());
    for (size_t i = 0; i < text.size(); i++) CHECK(ids[i] == int(static_cast<unsigned char>(text[i])));
    CHECK(codec.decode(ids) == text);
    CHECK(codec.encode("").empty());
    CHECK(codec.decode({}).empty());
    // The end-of-text id decodes as GPT-2's decoder shows it; it is never produced by encode.
    CHECK(codec.decode({'a', 256}) == "a<|endoftext|>");
    CHECK(codec.encode("<|endoftext|>").size() == 13);

    REQUIRE_THROWS_WITH(codec.decode({'a', 'b', 257}), Contains("257") && Contains("position 2"));
    REQUIRE_THROWS_WITH(codec.decode({-1}), Contains("-1") && Contains("position 0"));
}

TEST_CASE("cl data: the synthetic benchmark is deterministic, conflicting and names its tasks", "[cl_data]") {
    SyntheticBenchmarkOptions options;
    options.seed = 7;
    const std::vector<Task> tasks = synthetic_cl_benchmark(options);
    REQUIRE(tasks.size() == 4);

    // Deterministic for a seed, different for another.
    const std::vector<Task> again = synthetic_cl_benchmark(options);
    SyntheticBenchmarkOptions other_seed = options;
    other_seed.seed = 8;
    const std::vector<Task> other = synthetic_cl_benchmark(other_seed);
    bool differs = false;
    for (size_t t = 0; t < tasks.size(); t++) {
        REQUIRE(again[t].train.size() == tasks[t].train.size());
        for (size_t i = 0; i < tasks[t].train.size(); i++) {
            CHECK(again[t].train[i].prompt == tasks[t].train[i].prompt);
            CHECK(again[t].train[i].answer == tasks[t].train[i].answer);
            differs |= other[t].train[i].prompt != tasks[t].train[i].prompt ||
                       other[t].train[i].answer != tasks[t].train[i].answer;
        }
        for (size_t i = 0; i < tasks[t].test.size(); i++) CHECK(again[t].test[i].prompt == tasks[t].test[i].prompt);
    }
    CHECK(differs);

    TextCodec codec = byte_codec();
    std::set<std::string> names;
    // substitution[task word][symbol] = the answer letter, collected from the examples and checked consistent.
    std::map<std::string, std::map<char, char>> substitution;
    std::map<std::string, std::map<std::string, std::string>> answer_of;  // task word -> x -> answer
    for (const Task& task : tasks) {
        INFO(task.name);
        names.insert(task.name);
        CHECK(task.name.size() <= 5);
        CHECK(task.train.size() == 1000);
        CHECK(task.test.size() == 100);
        CHECK(task.format == TaskFormat::prompt_answer);
        std::set<size_t> lengths;
        for (const std::vector<TaskExample>* split : {&task.train, &task.test}) {
            for (const TaskExample& e : *split) {
                INFO(e.prompt << " -> " << e.answer);
                CHECK(e.prompt.size() <= 16);
                CHECK(codec.encode(e.prompt).size() + codec.encode(e.answer).size() + 1 <= 64);
                auto [word, x] = split_prompt(e.prompt);
                CHECK(word == task.name);  // each prompt names its task
                REQUIRE(x.size() == e.answer.size());
                CHECK((x.size() >= 1 && x.size() <= 3));
                lengths.insert(x.size());
                for (size_t k = 0; k < x.size(); k++) {
                    CHECK((x[k] >= 'a' && x[k] <= 'h'));
                    CHECK((e.answer[k] >= 'a' && e.answer[k] <= 'h'));
                    auto [entry, inserted] = substitution[word].emplace(x[k], e.answer[k]);
                    CHECK(entry->second == e.answer[k]);  // a deterministic function of the symbol
                }
                answer_of[word][x] = e.answer;
            }
        }
        CHECK(lengths == std::set<size_t>{1, 2, 3});
        // Train and test overlap, but some test inputs are new: the symbol-by-symbol rule is what is tested.
        std::set<std::string> train_prompts;
        for (const TaskExample& e : task.train) train_prompts.insert(e.prompt);
        size_t unseen = 0;
        for (const TaskExample& e : task.test) unseen += train_prompts.count(e.prompt) == 0;
        CHECK(unseen >= 5);
        CHECK(unseen < task.test.size());
        // A permutation of the alphabet, every symbol seen.
        REQUIRE(substitution[task.name].size() == 8);
        std::set<char> images;
        for (auto [symbol, image] : substitution[task.name]) images.insert(image);
        CHECK(images.size() == 8);
    }
    CHECK(names == std::set<std::string>{"sub1", "sub2", "sub3", "sub4"});

    // The tasks conflict: for every symbol all tasks answer differently, so the same x gets a different answer.
    for (char symbol = 'a'; symbol <= 'h'; symbol++) {
        std::set<char> images;
        for (const Task& task : tasks) images.insert(substitution[task.name][symbol]);
        CHECK(images.size() == tasks.size());
    }
    size_t shared_inputs = 0;
    for (const auto& [x, answer] : answer_of["sub1"]) {
        for (const char* word : {"sub2", "sub3", "sub4"}) {
            auto found = answer_of[word].find(x);
            if (found == answer_of[word].end()) continue;
            shared_inputs++;
            CHECK(found->second != answer);
        }
    }
    CHECK(shared_inputs >= 8);

    // The options shape the tasks.
    SyntheticBenchmarkOptions small;
    small.num_tasks = 2;
    small.train_per_task = 10;
    small.test_per_task = 5;
    small.alphabet_size = 4;
    small.min_length = small.max_length = 2;
    const std::vector<Task> two = synthetic_cl_benchmark(small);
    REQUIRE(two.size() == 2);
    for (const Task& task : two) {
        CHECK(task.train.size() == 10);
        CHECK(task.test.size() == 5);
        for (const TaskExample& e : task.train) {
            auto [word, x] = split_prompt(e.prompt);
            CHECK(x.size() == 2);
            CHECK(std::all_of(x.begin(), x.end(), [](char c) { return c >= 'a' && c <= 'd'; }));
        }
    }

    // Options out of range fail with what is wrong.
    SyntheticBenchmarkOptions bad = options;
    bad.num_tasks = 9;
    REQUIRE_THROWS_WITH(synthetic_cl_benchmark(bad), Contains("number of tasks"));
    bad = options;
    bad.max_length = 0;
    REQUIRE_THROWS_WITH(synthetic_cl_benchmark(bad), Contains("lengths"));
    bad = options;
    bad.alphabet_size = 27;
    REQUIRE_THROWS_WITH(synthetic_cl_benchmark(bad), Contains("alphabet size"));
}

TEST_CASE("cl data: with disjoint inputs each synthetic task writes its inputs in its own characters", "[cl_data]") {
    SyntheticBenchmarkOptions options;
    options.seed = 7;
    const std::vector<Task> shared = synthetic_cl_benchmark(options);
    options.disjoint_inputs = true;
    const std::vector<Task> disjoint = synthetic_cl_benchmark(options);
    REQUIRE(disjoint.size() == 4);
    std::set<char> seen_by_earlier;
    for (size_t t = 0; t < disjoint.size(); t++) {
        INFO(disjoint[t].name);
        std::set<char> inputs;
        REQUIRE(disjoint[t].train.size() == shared[t].train.size());
        for (size_t i = 0; i < disjoint[t].train.size(); i++) {
            auto [word, x] = split_prompt(disjoint[t].train[i].prompt);
            auto [shared_word, shared_x] = split_prompt(shared[t].train[i].prompt);
            CHECK(word == disjoint[t].name);
            REQUIRE(x.size() == shared_x.size());
            // the same example, its symbols spelt with task t's characters; the answer unchanged
            CHECK(disjoint[t].train[i].answer == shared[t].train[i].answer);
            for (size_t k = 0; k < x.size(); k++) {
                CHECK(x[k] == SYNTHETIC_INPUT_SYMBOLS[8 * t + (shared_x[k] - 'a')]);
                inputs.insert(x[k]);
            }
        }
        CHECK(inputs.size() == 8);
        for (char c : inputs) CHECK(seen_by_earlier.count(c) == 0);  // no character shared with an earlier task
        seen_by_earlier.insert(inputs.begin(), inputs.end());
    }
    CHECK(split_prompt(disjoint[0].train[0].prompt) == split_prompt(shared[0].train[0].prompt));  // task 1 as before
    options.num_tasks = 8;  // 8 tasks x 8 symbols > 62 characters
    REQUIRE_THROWS_WITH(synthetic_cl_benchmark(options), Contains("disjoint inputs"));
}

TEST_CASE("cl data: encode_examples appends the end token to every answer", "[cl_data]") {
    TextCodec codec = byte_codec();
    std::vector<EncodedExample> encoded = encode_examples({{"ab=", "xy"}, {"q", ""}}, codec);
    REQUIRE(encoded.size() == 2);
    CHECK(encoded[0].prompt == std::vector<int>{'a', 'b', '='});
    CHECK(encoded[0].answer == std::vector<int>{'x', 'y', 256});
    CHECK(encoded[1].answer == std::vector<int>{256});
    REQUIRE_THROWS_WITH(encode_examples({{"a", "b"}, {"", "c"}}, codec),
                        Contains("example 1") && Contains("prompt is empty"));
}

TEST_CASE("cl data: an answer that continues the prompt is encoded with the codec's leading space", "[cl_data]") {
    TextCodec codec = byte_codec();
    CHECK(codec.answer_prefix.empty());  // the synthetic benchmark's "ab=xy" stays as it is
    codec.answer_prefix = " ";
    std::vector<EncodedExample> encoded =
        encode_examples({{"Answer:", "xy"}, {"Answer: ", "xy"}, {"Answer:", " xy"}, {"Answer:\n", "xy"}}, codec);
    CHECK(encoded[0].answer == std::vector<int>{' ', 'x', 'y', 256});  // the space is added
    CHECK(encoded[1].answer == std::vector<int>{'x', 'y', 256});       // the prompt ends in a space already
    CHECK(encoded[2].answer == std::vector<int>{' ', 'x', 'y', 256});  // the answer starts with one already
    CHECK(encoded[3].answer == std::vector<int>{'x', 'y', 256});       // a newline ends the prompt
    CHECK(encoded[0].prompt == codec.encode("Answer:"));
}

TEST_CASE("cl data: with GPT-2's tokenizer a label is the token it is in running text", "[cl_data]") {
    const std::string shared = shared_data_dir();
    if (shared.empty()) SKIP_TEST("the GPT-2 tokenizer files (../shared/data/tokenizer/gpt2) are absent");
    GPT2Tokenizer tokenizer;
    tokenizer.load_dir(shared + "/tokenizer/gpt2");
    TextCodec codec = gpt2_codec(tokenizer);
    // "Answer: World" tokenizes as "Answer" ":" " World": the label is " World" (id 2159), not "World" (10603)
    const std::vector<int> running = codec.encode("Answer: World");
    const std::vector<EncodedExample> encoded = encode_examples({{"Answer:", "World"}}, codec);
    REQUIRE(running.size() == 3);
    CHECK(encoded[0].answer == std::vector<int>{running[2], codec.eot_token});
    CHECK(running[2] != codec.encode("World")[0]);
    // and exact match reads the generated " World" as the label
    CHECK(exact_match(codec.decode({running[2]}), "World"));
}

TEST_CASE("cl data: a training row weighs the answer targets only and pads with weight 0", "[cl_data]") {
    const int eot = 256;
    // s = 10 11 12 13 | 20 21 eot, T = 9: 6 real positions, 3 padding.
    const EncodedExample e = example({10, 11, 12, 13}, {20, 21, eot});
    CHECK(training_length(e) == 6);
    TrainingBatch batch = empty_batch(2, 9);
    fill_training_row(batch, 1, e);
    Row row = row_of(batch, 1);
    CHECK(row.inputs == std::vector<int>{10, 11, 12, 13, 20, 21, eot, eot, eot});
    CHECK(row.targets == std::vector<int>{11, 12, 13, 20, 21, eot, eot, eot, eot});
    CHECK(row.weights == std::vector<float>{0, 0, 0, 1, 1, 1, 0, 0, 0});
    // Row 0 is untouched.
    CHECK(row_of(batch, 0).inputs == std::vector<int>(9, -7));

    // Exactly fitting: |s| = T + 1, no padding.
    TrainingBatch exact = empty_batch(1, 6);
    fill_training_row(exact, 0, e);
    row = row_of(exact, 0);
    CHECK(row.inputs == std::vector<int>{10, 11, 12, 13, 20, 21});
    CHECK(row.targets == std::vector<int>{11, 12, 13, 20, 21, eot});
    CHECK(row.weights == std::vector<float>{0, 0, 0, 1, 1, 1});

    // Too long: the start of the prompt is cut, its end and the whole answer kept (s' = 12 13 20 21 eot).
    TrainingBatch cut = empty_batch(1, 4);
    fill_training_row(cut, 0, e);
    row = row_of(cut, 0);
    CHECK(row.inputs == std::vector<int>{12, 13, 20, 21});
    CHECK(row.targets == std::vector<int>{13, 20, 21, eot});
    CHECK(row.weights == std::vector<float>{0, 1, 1, 1});

    // Only the last prompt token fits beside the answer.
    TrainingBatch tight = empty_batch(1, 3);
    fill_training_row(tight, 0, e);
    row = row_of(tight, 0);
    CHECK(row.inputs == std::vector<int>{13, 20, 21});
    CHECK(row.targets == std::vector<int>{20, 21, eot});
    CHECK(row.weights == std::vector<float>{1, 1, 1});

    // The answer alone is longer than T: the last prompt token and the answer's first T tokens; eot not trained.
    TrainingBatch long_answer = empty_batch(1, 2);
    fill_training_row(long_answer, 0, e);
    row = row_of(long_answer, 0);
    CHECK(row.inputs == std::vector<int>{13, 20});
    CHECK(row.targets == std::vector<int>{20, 21});
    CHECK(row.weights == std::vector<float>{1, 1});

    // A one-token prompt and an answer that is just the end token: one weighted position.
    TrainingBatch minimal = empty_batch(1, 3);
    fill_training_row(minimal, 0, example({5}, {eot}));
    row = row_of(minimal, 0);
    CHECK(row.inputs == std::vector<int>{5, eot, eot});
    CHECK(row.targets == std::vector<int>{eot, eot, eot});
    CHECK(row.weights == std::vector<float>{1, 0, 0});

    REQUIRE_THROWS_WITH(fill_training_row(batch, 2, e), Contains("row 2"));
    REQUIRE_THROWS_WITH(fill_training_row(batch, 0, example({}, {eot})), Contains("empty prompt"));
    REQUIRE_THROWS_WITH(fill_training_row(batch, 0, example({1}, {})), Contains("empty answer"));
}

TEST_CASE("cl data: make_training_batch sizes T to the longest row, up to max_T", "[cl_data]") {
    const int eot = 256;
    const EncodedExample short_one = example({1, 2}, {3, eot});                 // 3 positions
    const EncodedExample long_one = example({1, 2, 3, 4, 5, 6}, {7, 8, eot});  // 8 positions
    TrainingBatch batch = make_training_batch({&short_one, &long_one}, 64);
    CHECK(batch.B == 2);
    CHECK(batch.T == 8);
    REQUIRE(batch.inputs.size() == 16);
    Row first = row_of(batch, 0);
    CHECK(first.inputs == std::vector<int>{1, 2, 3, eot, eot, eot, eot, eot});
    CHECK(first.weights == std::vector<float>{0, 1, 1, 0, 0, 0, 0, 0});
    float total = 0;
    for (float w : batch.loss_weights) total += w;
    CHECK(total == 5);  // 2 + 3 answer targets

    TrainingBatch capped = make_training_batch({&short_one, &long_one}, 5);
    CHECK(capped.T == 5);
    CHECK(row_of(capped, 1).inputs == std::vector<int>{4, 5, 6, 7, 8});
    CHECK(row_of(capped, 1).weights == std::vector<float>{0, 0, 1, 1, 1});
    REQUIRE_THROWS_WITH(make_training_batch({&short_one}, 0), Contains("maximum sequence length"));
}

TEST_CASE("cl data: EpochBatches visits every example once per epoch, deterministically", "[cl_data]") {
    TextCodec codec = byte_codec();
    SyntheticBenchmarkOptions options;
    options.train_per_task = 53;  // not a multiple of the batch size: the last batch holds 5
    const std::vector<EncodedExample> examples = encode_examples(synthetic_cl_benchmark(options)[0].train, codec);

    EpochBatches batches(examples, 16, 64, 42);
    CHECK(batches.batches_per_epoch() == 4);
    std::vector<std::vector<size_t>> orders;
    for (uint64_t epoch = 0; epoch < 3; epoch++) {
        batches.start_epoch(epoch);
        std::vector<int> seen(examples.size(), 0);
        std::vector<int> sizes;
        TrainingBatch batch;
        while (batches.next(batch)) {
            sizes.push_back(batch.B);
            REQUIRE(batches.rows().size() == size_t(batch.B));
            int longest = 0;
            for (const EncodedExample* e : batches.rows()) {
                seen[size_t(e - examples.data())]++;
                longest = std::max(longest, training_length(*e));
            }
            CHECK(batch.T == longest);  // no wasted positions
            CHECK(batch.inputs.size() == size_t(batch.B) * batch.T);
        }
        CHECK(sizes == std::vector<int>{16, 16, 16, 5});
        CHECK(std::all_of(seen.begin(), seen.end(), [](int count) { return count == 1; }));
        CHECK_FALSE(batches.next(batch));
        orders.push_back(batches.order());
    }
    CHECK(orders[0] != orders[1]);  // each epoch is shuffled anew

    // The same seed and epoch give the same order, also from a fresh object (a resumed run); another seed differs.
    EpochBatches again(examples, 16, 64, 42);
    again.start_epoch(2);
    CHECK(again.order() == orders[2]);
    EpochBatches other(examples, 16, 64, 43);
    CHECK(other.order() != orders[0]);

    // max_T caps the length.
    EpochBatches capped(examples, 8, 4, 1);
    TrainingBatch batch;
    while (capped.next(batch)) CHECK(batch.T <= 4);

    std::vector<EncodedExample> none;
    EpochBatches empty(none, 4, 64, 1);
    CHECK(empty.batches_per_epoch() == 0);
    CHECK_FALSE(empty.next(batch));
    REQUIRE_THROWS_WITH(EpochBatches(examples, 0, 64, 1), Contains("batch size"));
}

TEST_CASE("cl data: every example of order 1 encodes with GPT-2 into weighted training rows", "[cl_data]") {
    const std::string data = shared_data_dir();
    const std::string tokenizer_dir = data.empty() ? "" : data + "/tokenizer/gpt2";
    const std::string root = data.empty() ? "" : data + "/cl_benchmark/LLM-CL-Benchmark_500";
    if (tokenizer_dir.empty() || !std::filesystem::is_directory(tokenizer_dir))
        SKIP_TEST("the GPT-2 tokenizer files (../shared/data/tokenizer/gpt2) are absent");
    if (!std::filesystem::is_directory(root))
        SKIP_TEST("the benchmark (../shared/data/cl_benchmark/LLM-CL-Benchmark_500) is absent");

    GPT2Tokenizer tokenizer;
    tokenizer.load_dir(tokenizer_dir);
    TextCodec codec = gpt2_codec(tokenizer);
    CHECK(codec.name == "gpt2");
    CHECK(codec.eot_token == 50256);
    CHECK(codec.vocab_size == 50257);
    CHECK(codec.decode(codec.encode(" Answer: World")) == " Answer: World");

    const std::vector<std::string> order = task_order(root, "1");
    REQUIRE(order.size() == 4);
    for (const std::string& directory : order) {
        const Task task = load_task(directory);
        INFO(describe_task(task));
        for (const std::vector<TaskExample>* split : {&task.train, &task.test}) {
            const std::vector<EncodedExample> encoded = encode_examples(*split, codec);
            REQUIRE(encoded.size() == split->size());
            for (size_t i = 0; i < encoded.size(); i++) {
                const EncodedExample& e = encoded[i];
                INFO("example " << i << ": " << (*split)[i].answer);
                CHECK(e.answer.size() >= 2);
                CHECK(e.answer.back() == 50256);
                // the label as it continues "Answer:" in running text: " Artist"
                const std::string answer = codec.decode(std::vector<int>(e.answer.begin(), e.answer.end() - 1));
                CHECK(answer == answer_text((*split)[i], codec));
                CHECK(answer == " " + (*split)[i].answer);
                CHECK(exact_match(answer, (*split)[i].answer));
                TrainingBatch batch = make_training_batch({&e}, 1024);
                float weighted = 0;
                for (float w : batch.loss_weights) weighted += w;
                CHECK(weighted == float(e.answer.size()));  // every answer token and the eot: none cut off
                // The last weighted target is the eot, and the prompt's last token comes right before the answer.
                const int last = std::min(training_length(e), 1024) - 1;
                CHECK(batch.targets[size_t(last)] == 50256);
                CHECK(batch.inputs[size_t(last) - (e.answer.size() - 1)] == e.prompt.back());
            }
        }
    }
}
