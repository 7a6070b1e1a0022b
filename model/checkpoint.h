// llm.c GPT-2 model checkpoints: a 256-int32 header, then every parameter in checkpoint layout.
//   header[0] = 20240326 (magic), [1] = version (3: fp32 parameters, 5: bf16 parameters),
//   [2] = max_seq_len, [3] = vocab_size, [4] = num_layers, [5] = num_heads, [6] = channels,
//   [7] = padded_vocab_size (0 in old files: padded_vocab(vocab_size) is used).
//   clora's slots (data/llmc_header.h), which llm.c never reads: [248,249] run id (uint64) and [250,251] step
//   (int64) of the run stamp (0, 0: none), [254] checksum tag, [255] CRC-32C of the file.
//   Then (num_parameters(config),) values: the 16 tensors of model/parameters.h concatenated in file order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/llmc_header.h"
#include "model/gpt2_config.h"

constexpr int32_t CHECKPOINT_MAGIC = 20240326;
constexpr int32_t CHECKPOINT_VERSION_FP32 = 3;
constexpr int32_t CHECKPOINT_VERSION_BF16 = 5;

struct Checkpoint {
    GPT2Config config;
    std::vector<float> parameters;  // (num_parameters(config),) fp32, checkpoint layout
    RunStamp stamp;                 // the run and step that wrote it; {0, -1} when not stamped (llm.c's files)
};

// Reads version 3 or 5 (bf16 widened to fp32 exactly). Fails with "<path>: ..." on a wrong magic, a checksum
// mismatch, an unsupported version, a header field out of range or an inconsistent config, truncated or
// trailing data, or a NaN/Inf (naming the tensor).
Checkpoint read_checkpoint(const std::string& path);

// Writes version 3 (fp32), atomically, sealed, with the run stamp (none by default).
// parameters: (num_parameters(config),).
void write_checkpoint(const std::string& path, const GPT2Config& config, const float* parameters,
                      const RunStamp& stamp = {});

// Writes version 5 (bf16, rounded to nearest even), atomically, sealed, with the run stamp (none by default).
// parameters: (num_parameters(config),).
void write_checkpoint_bf16(const std::string& path, const GPT2Config& config, const float* parameters,
                           const RunStamp& stamp = {});

