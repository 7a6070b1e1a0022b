// clora's resume state for `train pretrain --resume`: the optimizer moments and the position in the data.
//   header (256 int32): [0] = 20261121 (magic), [1] = 1 (version); int64 values in two slots (low, high):
//   [2,3] = P, the number of parameters, [4,5] = step, [6,7] = shard_index, [8,9] = shard_position,
//   [10,11] = rng_state (uint64), [12] = the data order (0 sequential: [6..9] are the shard and the token offset
//   of the next window; 1 random: [8,9] is the number of batches drawn, [6,7] is 0); [248,249] run id (uint64) and [250,251] step (int64) of the run stamp (0, 0:
//   none), [254] checksum tag, [255] CRC-32C of the file (data/llmc_header.h).
//   Then adam_m (P,) fp32, adam_v (P,) fp32, in checkpoint layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/llmc_header.h"

constexpr int32_t TRAINING_STATE_MAGIC = 20261121;
constexpr int32_t TRAINING_STATE_VERSION = 1;

struct TrainingState {
    int64_t step = 0;            // optimizer steps completed
    int64_t shard_index = 0;     // data position of the next batch: shard, and token offset within it
    int64_t shard_position = 0;  // (random order: the batches drawn)
    uint64_t rng_state = 0;
    int32_t data_order = 0;      // 0 sequential, 1 random (data/token_loader.h)
    std::vector<float> adam_m, adam_v;  // (P,) each
    RunStamp stamp;  // the run and step that wrote it ({0, -1}: none; else stamp.step == step), to match its
                     // checkpoint; written as it is
};

// Fails with "<path>: ..." on a wrong magic, a checksum mismatch, a wrong version, a parameter count other than
// expected_num_parameters, a negative step or position, a bad run stamp, non-finite or negative moments
// (adam_v >= 0), truncated or trailing data.
TrainingState read_training_state(const std::string& path, size_t expected_num_parameters);

// Writes atomically, sealed; P is adam_m.size(), and adam_v must have as many values.
void write_training_state(const std::string& path, const TrainingState& state);
