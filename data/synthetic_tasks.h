// A built-in synthetic continual-learning benchmark: a few short-string substitution tasks that a tiny GPT-2
// (2 layers, 64 channels, the byte codec of data/text_codec.h, context 64) with LoRA adapters on a frozen
// random base learns in seconds on a CPU, and on which sequential training visibly forgets. `train cl` runs it
// when no task order is given; the tests use it to check that methods differ as they should.
//
// Task t (1-based, named "sub<t>") maps a string x of min_length..max_length symbols from the alphabet
// 'a', 'b', ... (alphabet_size letters) through its own substitution P_t, symbol by symbol:
//     prompt  "sub<t> " + x + "="          e.g. "sub2 cab="       (at most 5 + 3 + 1 = 9 bytes by default)
//     answer  P_t(x[0]) P_t(x[1]) ...      e.g. "hfe"             (as long as x: 1 to 3 letters)
// The substitutions are rows of a random Latin square: P_t(s) = out[(shift[t] + column[s]) mod A] with random
// permutations out and column of the A symbols and distinct random shifts. So every P_t is a permutation, and for
// every symbol s the tasks all disagree: P_t(s) != P_u(s) for t != u (this needs num_tasks <= alphabet_size).
// Answers are lower-case letters, so exact match's normalisation (lower-case, drop punctuation) keeps them apart.
//
// Why it measures forgetting: every task has the same inputs (x, drawn the same way) and the same output
// alphabet, and differs only in the mapping. Training on task u alone pushes the model to answer P_u(x) whatever
// the task word says, which overwrites what it answered for task t: sequential fine-tuning of one adapter should
// drop an old task's score towards chance, while replay, separate branches or joint training (MTL) can keep it.
// The prompt names its task, so a model trained on all tasks jointly can learn them all (the task word selects
// the substitution), and a task-agnostic evaluation is possible in principle. After training on task u alone, a
// model that answers P_u(x) scores exactly 0 on every earlier task: no symbol maps alike in two tasks.
//
// Learnability, as measured with `train cl` on 2 CPU cores (2 layers, 64 channels, random frozen base, LoRA r=8):
// with adapters on all four linears (--lora-modules all) and 3 epochs at lr 1e-3, every method reaches 100% on
// the task it has just trained, in a few seconds per task; SeqLoRA and IncLoRA then score 0% on earlier tasks,
// replay and MTL 100% on all. With qkv adapters alone the tasks need about 6 epochs at lr 3e-3. Most of the cost
// is the first task: later ones reuse the position-by-position copying the adapters learned for it.
//
// With disjoint_inputs, task t writes its input symbols with its own characters: symbol s of task t (0-based) is
// SYNTHETIC_INPUT_SYMBOLS[t * alphabet_size + s] (task 1 keeps 'a', 'b', ...; task 2 with 8 symbols uses 'i' .. 'p'), while
// the answers stay in 'a', 'b', ... So the tasks no longer share an input distribution: a method that keeps its
// branches apart by input (IncLoRA, O-LoRA's orthogonal subspaces, N-LoRA's sparse updates, AM-LoRA's attention)
// can keep an old task even though every task's word and format are alike. The shared-input default is the harder
// test: there only what reads the task word (replay, MTL, a prompt gate) can keep the old tasks.
//
// Examples: each draws its length uniformly from min_length..max_length, then its symbols uniformly. The train and
// test splits are drawn independently from that same distribution (with different random streams), so they
// overlap on purpose: by default nearly every one- and two-symbol test input is also a training input, while
// about half of the three-symbol ones (512 possible strings, ~330 drawn for training) are not, which asks for the
// symbol-by-symbol rule rather than a lookup of whole strings. Everything is a deterministic function of the
// options (the seed included); different seeds give different substitutions and examples.
#pragma once
#include <cstdint>
#include <vector>

#include "data/task_data.h"

// The characters of the input symbols with disjoint_inputs: task t's symbol s is INPUT_SYMBOLS[t * A + s].
inline constexpr char SYNTHETIC_INPUT_SYMBOLS[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

struct SyntheticBenchmarkOptions {
    int num_tasks = 4;        // 1..alphabet_size
    int train_per_task = 1000;
    int test_per_task = 100;
    int alphabet_size = 8;    // symbols 'a' .. 'a' + alphabet_size - 1; 2..26
    int min_length = 1;       // of x, in symbols; 1 <= min_length <= max_length <= 8
    int max_length = 3;
    bool disjoint_inputs = false;  // each task's inputs in its own characters (needs num_tasks * alphabet_size <= 62)
    uint64_t seed = 1337;
};

// num_tasks tasks "sub1", "sub2", ... with options.train_per_task and options.test_per_task examples each; every
// Task has format prompt_answer, labels empty, directory "synthetic". Fails on options out of range.
std::vector<Task> synthetic_cl_benchmark(const SyntheticBenchmarkOptions& options = SyntheticBenchmarkOptions());
