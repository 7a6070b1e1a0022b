// `train pretrain`: train GPT-2 on token shards (or, with none given, on a built-in synthetic stream),
// log every step, evaluate the validation loss, write checkpoints, and resume exactly from the latest.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/token_loader.h"
#include "model/gpt2.h"
#include "model/lr_schedule.h"
#include "model/run_directory.h"

struct PretrainOptions {
    std::string train_pattern;  // glob of token shards; empty: the built-in synthetic stream
    std::string val_pattern;    // glob of token shards; empty: no validation (synthetic: a held-out stream)
    std::string init_checkpoint;  // start from this model; empty: random init of model_config
    std::string model_config;     // "L:C:NH:V:maxT" or d12/d24/...; empty: d12 (synthetic: 2:64:4:256:64)
    std::string out_dir = "out/pretrain";
    std::string device = "auto";
    std::string precision = "fp32";  // of the CUDA matrix products: fp32, bf16 or auto (model/precision.h)
    int batch_size = 4, seq_len = 64;
    // the order of the training rows (data/token_loader.h): random (each row at a seeded random offset of the whole
    // data) or sequential (llm.c's consecutive windows); validation reads the same fixed rows at every evaluation
    DataOrder data_order = DataOrder::random;
    int steps = 500;
    LearningRateSchedule schedule;
    AdamWSettings optimizer;
    int val_every = 50, val_batches = 4;
    int checkpoint_every = 0;  // 0: only at the end
    StartMode start = StartMode::fresh;  // resume: continue the run in out_dir from its latest checkpoint
    bool overwrite = false;              // a fresh start may replace the run in out_dir
    uint64_t seed = 1337;
    int log_every = 1;         // steps between log lines (and the last step); 0: none
    bool quiet = false;        // no per-step lines (tests)
};

struct PretrainResult {
    int first_step = 1;                          // 1-based step the run started at (> 1 when resumed)
    std::vector<float> train_losses;             // one per step run
    std::vector<std::pair<int, float>> val_losses;  // (step, loss)
    std::vector<float> final_parameters;
};

PretrainResult run_pretrain(const PretrainOptions& options);

// "<dir>/model_00000100.bin" and "<dir>/state_00000100.bin"
std::string checkpoint_path(const std::string& dir, int step);
std::string training_state_path(const std::string& dir, int step);
// The step of the latest complete checkpoint in dir (state file present), or 0.
int latest_checkpoint_step(const std::string& dir);
