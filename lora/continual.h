// `train cl`: LoRA fine-tuning of a frozen GPT-2 over a sequence of tasks with one or more continual-learning
// methods, evaluation after every task, the accuracy matrix with AA / BWT / FT, adapters saved at every task
// boundary and resumable from there. With no data given it runs the built-in synthetic benchmark
// (data/synthetic_tasks.h) on a small random base, on the CPU in about a minute.
//
// Evaluation, two modes, both computed at every evaluation:
//   generate  every task: greedy decoding after the prompt (model/generate.h, greedy_generate), exact match
//   rank      every closed-label task (its training answers take at most 64 distinct values, data/cl_batches.h
//             closed_label_set; the labels in order of first appearance): each label scored after the test
//             prompt by the summed log-probability of its answer tokens, <|endoftext|> included (model/generate.h,
//             label_scores), the highest chosen (ties: the first), then exact match of that label
// --eval picks the primary mode, whose matrix is printed, compared and kept in results.json's top-level keys:
// rank when every task of the run is closed-label (auto, the default; rank fails on an open task), else generate.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/cl_batches.h"
#include "model/lora_config.h"
#include "lora/method_info.h"
#include "lora/metrics.h"
#include "model/gpt2.h"
#include "model/run_directory.h"

struct ContinualOptions {
    std::vector<std::string> methods = baseline_methods();  // lora/method_info.h
    // data: a task order ("1".."6", "trace" or a list of task names / directories) in benchmark_root; empty =
    // synthetic
    std::string order;
    // "Task:<TYPE>\nDataset:<name>\n" before every prompt (data/task_data.h): on, off, or auto: on for the Long
    // Sequence orders 4, 5 and 6 (as O-LoRA's scripts run them), off for every other order
    std::string task_prefix = "auto";
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
    std::string eval = "auto";  // the primary mode: auto (rank if every task is closed-label), rank or generate
    bool eval_all = false;  // evaluate every task after each one (default: the tasks seen so far)
    int max_new_tokens = 50;
    int eval_batch_size = 32;  // prompts decoded together; (prompt, label) rows per forward when ranking
    // run
    std::string out_dir = "out/cl";
    StartMode start = StartMode::fresh;  // resume: continue the run in out_dir, each method from its latest task
    bool overwrite = false;              // a fresh start may replace the run in out_dir
    int stop_after = 0;  // end each method after this many tasks in all (a stage of a longer run); 0 = all
    uint64_t seed = 1337;
    int log_every = 50;  // steps between log lines; 0 = none
    bool quiet = false;  // no log lines at all (tests)
};

// One evaluation mode's accuracy matrix and its metrics.
struct EvaluationResult {
    std::vector<std::vector<double>> accuracy;  // a[j][i], score x100 on task i after task j
    ContinualMetrics metrics;
};

struct MethodResult {
    std::string method;
    std::vector<std::string> task_names;
    std::vector<std::string> task_metrics;      // how each task's generated answers are scored (metric_name)
    std::string eval;                           // the primary evaluation mode: "rank" or "generate"
    std::vector<std::vector<double>> accuracy;  // the primary mode's a[j][i], score x100 on task i after task j
    ContinualMetrics metrics;                   // and its metrics
    // every mode: "generate" always, "rank" when every task is closed-label (the primary one is also above)
    std::map<std::string, EvaluationResult> modes;
    std::vector<double> seconds_per_task;  // training and evaluation of each task run (kept in the adapter files across a resume)
    std::vector<float> final_adapters;     // the adapters' parameters at the end (host fp32)
};

// The defaults that differ between the built-in synthetic benchmark and real tasks. Real tasks take
// METHODS.md's LoRA defaults (qkv, r = 8) and every method option's default. The synthetic benchmark's random base is
// no language model, so its adapters need every linear and more steps to learn the tasks within seconds; and some
// method options need another value there: each such preset is declared with its option, in the method's file
// (MethodOption::synthetic, lora/method_info.h: N-LoRA's lambda 0.04, AM-LoRA's lambda_sp 1e-4).
struct ContinualPreset {
    std::string lora_modules;
    int lora_rank = 0, epochs = 0;
    float learning_rate = 0;
    MethodOptions method;  // every method option, with the data's presets (method_presets)
    // method.nlora_lambda and method.amlora_lambda again, for the tests that still read them
    // (test/cl_test_support.h; to go once it copies `method`)
    float nlora_lambda = 0, amlora_lambda = 0;
};
ContinualPreset continual_preset(bool synthetic);

// Runs every method in options.methods on the same tasks and base; prints each accuracy matrix and a comparison
// table; writes <out_dir>/<method>/{metrics.jsonl, predictions.jsonl, results.json, adapters_task<NN>.bin} and
// <out_dir>/comparison.json (predictions.jsonl: every generated answer, and the ranked label of a closed-label
// task; a single process only, since under data parallelism each rank decodes a share). Fails on an unknown
// method, missing data, a base that does not fit the tokenizer, an unknown --eval or --eval rank with an open task.
std::vector<MethodResult> run_continual(const ContinualOptions& options);
