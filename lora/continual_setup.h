// `train cl`'s set-up (lora/continual.h): what every method of a run shares, made once: the tasks read and encoded,
// the base model, the tokenizer, each task's closed label set and the evaluation mode resolved.
#pragma once
#include <string>
#include <vector>

#include "data/text_codec.h"
#include "data/tokenizer.h"
#include "lora/continual.h"
#include "lora/method.h"
#include "model/gpt2_config.h"

struct ContinualSetup {
    GPT2Config config;
    std::vector<float> base_parameters;
    std::vector<EncodedTask> tasks;
    GPT2Tokenizer tokenizer;  // loaded for real data only
    TextCodec codec;
    std::vector<bool> stops;  // (V) tokens that end a generated answer
    // label ranking: each task's closed label set (data/cl_batches.h closed_label_set, from its training answers;
    // empty: an open task) and each label's text (its tokens without the eot, decoded) for exact match
    std::vector<std::vector<std::vector<int>>> labels;
    std::vector<std::vector<std::string>> label_texts;
    bool all_closed = false, any_closed = false;
    std::string eval;  // the primary evaluation mode, "rank" or "generate" (--eval resolved)
};

// Fills setup (in place: its codec refers to its tokenizer) from the options: the built-in synthetic benchmark or
// the order's tasks, a random base or the checkpoint. Fails on missing data, a base that does not fit the tokenizer,
// --eval rank with an open task.
void prepare_setup(ContinualSetup& setup, const ContinualOptions& options);

// --task-prefix resolved: auto is on for the Long Sequence orders 4, 5 and 6 (O-LoRA's scripts run them with
// --add_task_name and --add_dataset_name), off for every other order.
bool task_prefix_on(const ContinualOptions& options);
