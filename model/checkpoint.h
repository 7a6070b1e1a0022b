// llm.c GPT-2 model checkpoints: a 256-int32 header, then every parameter in checkpoint layout.
//   header[0] = 20240326 (magic), [1] = version (3: fp32 parameters, 5: bf16 parameters),
//   [2] = max_seq_len, [3] = vocab_size, [4] = num_layers, [5] = num_heads, [6] = channels,
//   [7] = padded_vocab_size (0 in old files: padded_vocab(vocab_size) is used).
//   Then (num_parameters(config),) values: the 16 tensors of model/parameters.h concatenated in file order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt2_config.h"

constexpr int32_t CHECKPOINT_MAGIC = 20240326;
constexpr int32_t CHECKPOINT_VERSION_FP32 = 3;
constexpr int32_t CHECKPOINT_VERSION_BF16 = 5;

struct Checkpoint {
    GPT2Config config;
    std::vector<float> parameters;  // (num_parameters(config),) fp32, checkpoint layout
};

// Reads version 3 or 5 (bf16 widened to fp32 exactly). Fails with "<path>: ..." on a wrong magic, an
// unsupported version, an invalid config, truncated or trailing data, or a NaN/Inf (naming the tensor).
Checkpoint read_checkpoint(const std::string& path);

// Writes version 3 (fp32), atomically. parameters: (num_parameters(config),).
void write_checkpoint(const std::string& path, const GPT2Config& config, const float* parameters);

// Writes version 5 (bf16, rounded to nearest even), atomically. parameters: (num_parameters(config),).
void write_checkpoint_bf16(const std::string& path, const GPT2Config& config, const float* parameters);

// bf16 is the upper 16 bits of an fp32: widening is exact, narrowing rounds to nearest even (NaN stays NaN).
float bf16_to_float(uint16_t value);
uint16_t float_to_bf16(float value);
