// Shared by the tests that run the continual-learning loop (lora/continual.h).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "lora/continual.h"
#include "test/test_support.h"

// The synthetic benchmark's preset (as `train cl` with no data), two tasks, quiet, on the CPU, writing to a fresh
// temporary directory named `name`.
inline ContinualOptions synthetic_options(const std::string& name, std::vector<std::string> methods) {
    ContinualOptions o;
    const ContinualPreset preset = continual_preset(true);
    o.methods = std::move(methods);
    o.synthetic_tasks = 2;
    o.lora.modules = parse_lora_modules(preset.lora_modules);
    o.lora.rank = preset.lora_rank;
    o.epochs = preset.epochs;
    o.optimizer.learning_rate = preset.learning_rate;
    o.method.nlora_lambda = preset.nlora_lambda;
    o.method.amlora_lambda = preset.amlora_lambda;
    o.device = "cpu";
    o.out_dir = make_temp_dir(name);
    o.quiet = true;
    return o;
}
