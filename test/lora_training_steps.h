// Shared by the tests that train adapters on a frozen base on either backend and compare the runs
// (test_cuda_lora_model.cpp: the GPU against the CPU; test_bf16_base.cpp: a base stored in bf16 against fp32).
#pragma once
#include <utility>
#include <vector>

#include "model/lora_adapters.h"
#include "model/gpt2.h"
#include "test/small_model.h"
#include "test/test_support.h"

inline GPT2Config lora_test_config() { return test_config(2, 36, 4, 67, 24); }

// Five AdamW steps of the newest of two branches on every module (dropout on), the base frozen and, with
// bf16_base, stored in bf16 (GPT2::bf16_base); returns the losses and the final adapters.
template <class Backend>
std::pair<std::vector<float>, std::vector<float>> train_adapters(const GPT2Config& config,
                                                                 const std::vector<float>& base,
                                                                 bool bf16_base = false) {
    GPT2<Backend> model(config, base.data());
    LoraConfig lora;
    lora.modules = parse_lora_modules("all");
    lora.rank = 4;
    LoraAdapters<Backend> adapters(config, lora);
    lora_add_branch(adapters, 1);
    lora_add_branch(adapters, 2);  // branch 0 frozen
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 3, -0.2, 0.2));
    model.lora = &adapters;
    model.frozen_base = true;
    model.bf16_base = bf16_base;
    const int B = 3, T = 20;
    std::vector<int> inputs(B * T), targets(B * T);
    for (int i = 0; i < B * T; i++) inputs[i] = (i * 29 + 3) % 67, targets[i] = (i * 31 + 5) % 67;
    std::vector<float> weights(B * T, 1.0f);
    for (int t = 0; t < 6; t++) weights[t] = 0.0f;
    AdamWSettings settings;
    settings.learning_rate = 1e-2f;
    std::vector<float> losses;
    for (int step = 1; step <= 5; step++) {
        adapters.training = true;
        adapters.dropout_seed = 100 + step;
        gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
        losses.push_back(model.mean_loss);
        lora_zero_grad(adapters);
        gpt2_backward(model);
        lora_update(adapters, settings, step, 1.0f);
    }
    return {losses, adapters.parameters_to_host()};
}
