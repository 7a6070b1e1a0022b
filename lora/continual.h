// `train cl`: LoRA fine-tuning of a frozen GPT-2 over a sequence of tasks with one or more continual-learning
// methods, evaluation after every task (greedy decoding, exact match), the accuracy matrix with AA / BWT / FT,
// adapters saved at every task boundary and resumable from there. With no data given it runs the built-in
// synthetic benchmark (data/synthetic_tasks.h) on a small random base, on the CPU in about a minute.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lora/lora_config.h"
#include "lora/method_options.h"
#include "lora/metrics.h"
#include "model/gpt2.h"
#include "model/run_directory.h"

struct ContinualOptions {
    std::vector<std::string> methods = {"seqlora", "inclora", "replay", "mtl"};
    // data: a task order ("1".."6" or a list of task names / directories) in benchmark_root; empty = synthetic
    std::string order;
    std::string benchmark_root;  // empty: default_benchmark_root()
    std::string tokenizer_dir;   // empty: ../shared/data/tokenizer/gpt2 (real data only)
    size_t max_train = 0, max_test = 0;  // per task, 0 = all
    int synthetic_tasks = 4;
    bool synthetic_disjoint_inputs = false;  // each synthetic task's inputs in its own characters
    // model
    std::string base_checkpoint;  // empty: a random base of base_config (synthetic benchmark only)
    std::string base_config = "2:64:4:257:64";
    std::string device = "auto";
    std::string precision = "fp32";  // of the CUDA matrix products: fp32, bf16 or auto (model/precision.h)
    LoraConfig lora;
    // training
    int epochs = 3;
    int batch_size = 16;
    int max_seq_len = 0;  // 0: the model's context
    AdamWSettings optimizer;
    int replay_size = 500;
    MethodOptions method;  // each method's own options
    // evaluation
    bool eval_all = false;  // evaluate every task after each one (default: the tasks seen so far)
    int max_new_tokens = 50;
    int eval_batch_size = 32;
    // run
    std::string out_dir = "out/cl";
    StartMode start = StartMode::fresh;  // resume: continue the run in out_dir, each method from its latest task
    bool overwrite = false;              // a fresh start may replace the run in out_dir
    int stop_after = 0;  // end each method after this many tasks in all (a stage of a longer run); 0 = all
    uint64_t seed = 1337;
    int log_every = 50;  // steps between log lines; 0 = none
    bool quiet = false;  // no log lines at all (tests)
};

struct MethodResult {
    std::string method;
    std::vector<std::string> task_names;
    std::vector<std::vector<double>> accuracy;  // a[j][i], score x100 on task i after task j
    ContinualMetrics metrics;
    std::vector<double> seconds_per_task;  // training and evaluation of each task run (kept in the adapter files across a resume)
    std::vector<float> final_adapters;     // the adapters' parameters at the end (host fp32)
};

// The defaults that differ between the built-in synthetic benchmark and real tasks. Real tasks take
// METHODS.md's LoRA defaults (qkv, r = 8) and its N-LoRA lambda (0.4). The synthetic benchmark's random base is no
// language model, so its adapters need every linear and more steps to learn the tasks within seconds; and there
// N-LoRA's lambda 0.4, the weight of an L1 norm summed over every entry of every d_out x d_in update, holds the new
// branch at zero (the task is never learned: AA 0), while 4e-4 learns it and still collides far less than IncLoRA.
// Likewise AM-LoRA's lambda_sp 0.01 there shuts the new branch's attention before the branch has learned anything
// (the cross-entropy's gradient is weak: the random frozen output embedding keeps the loss near 4.3 nats), so task
// 1 reaches 6% instead of 90%; 1e-4 learns (test/test_amlora.cpp runs the penalty at 0.01).
struct ContinualPreset {
    std::string lora_modules;
    int lora_rank, epochs;
    float learning_rate;
    float nlora_lambda, amlora_lambda;
};
ContinualPreset continual_preset(bool synthetic);

// Runs every method in options.methods on the same tasks and base; prints each accuracy matrix and a comparison
// table; writes <out_dir>/<method>/{metrics.jsonl, predictions.jsonl, results.json, adapters_task<NN>.bin} and
// <out_dir>/comparison.json (predictions.jsonl: every generated answer; a single process only, since under data
// parallelism each rank decodes a share). Fails on an unknown method, missing data, a base that does not fit the
// tokenizer.
std::vector<MethodResult> run_continual(const ContinualOptions& options);

// The names `--method` accepts, and "baselines" / "all" expand to.
std::vector<std::string> known_methods();
std::vector<std::string> parse_methods(const std::string& list);
