// GPT-2's initialisation for training from scratch.
#pragma once
#include <cstdint>
#include <vector>

#include "model/gpt2_config.h"

// Host fp32 parameters in checkpoint layout: weights and embeddings N(0, 0.02), the two residual
// projections (attprojw, fcprojw) N(0, 0.02 / sqrt(2L)), biases 0, layernorm weights 1, padded vocabulary
// rows of wte 0.
std::vector<float> gpt2_random_parameters(const GPT2Config& config, uint64_t seed);
