// llm.c debug state: one batch with the reference logits, loss and gradients, the parity fixture for a model.
//   header (256 int32): [0] = 20240327 (magic), [1] = 2 (version), [2] = B, [3] = T.
//   Then inputs (B,T) int32, targets (B,T) int32, logits (B,T,V) fp32 (V = vocab_size, not padded),
//   loss (1,) fp32, grads (num_parameters(config),) fp32 in checkpoint layout (the wte grad has Vp rows).
//   Written by clora: [254] checksum tag, [255] CRC-32C of the file (data/llmc_header.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt2_config.h"

constexpr int32_t DEBUG_STATE_MAGIC = 20240327;
constexpr int32_t DEBUG_STATE_VERSION = 2;

struct DebugState {
    int batch_size = 0, seq_len = 0;  // B, T
    std::vector<int> inputs, targets;  // (B,T) token ids in [0, V)
    std::vector<float> logits;         // (B,T,V)
    float loss = 0;                    // mean cross-entropy over the batch
    std::vector<float> grads;          // (num_parameters(config),) checkpoint layout
};

// Reads the debug state of a model with this config. Fails with "<path>: ..." on a wrong magic, a checksum
// mismatch, a wrong version, B <= 0, T outside 1..max_seq_len, a token id outside [0, V) (naming the field, the
// index and the value), a NaN or Inf in the logits, loss or gradients, truncated or trailing data.
DebugState read_debug_state(const std::string& path, const GPT2Config& config);

// Writes atomically; fails if the vectors' sizes do not match B, T and the config.
void write_debug_state(const std::string& path, const GPT2Config& config, const DebugState& state);
