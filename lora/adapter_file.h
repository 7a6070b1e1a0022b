// clora's adapter file: every LoRA branch of a run, plus any named state a method keeps beside them (gates,
// bases, a slow adapter...), so a continual-learning run can stop at a task boundary and resume from it.
//   header (256 int32, data/llmc_header.h): [0] = 20261122 (magic), [1] = 1 (version), [2] = num_layers,
//   [3] = channels, [4] = rank, [5] = module mask (bit m: lora/lora_config.h's LoraModule m), [6] = branches,
//   [7] = first trainable branch, [8] = alpha and [9] = dropout (fp32 bit patterns), [10] = number of tensors,
//   [11] = tasks completed.
//   Then each tensor: int32 name length, the name's bytes, int64 element count, the fp32 values. The first is
//   "lora": the adapters' parameters in lora/adapters.h's layout.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lora/lora_config.h"

constexpr int32_t ADAPTER_FILE_MAGIC = 20261122;
constexpr int32_t ADAPTER_FILE_VERSION = 1;

struct AdapterFile {
    int num_layers = 0, channels = 0;
    LoraConfig config;
    int branches = 0, first_trainable = 0;
    int tasks_completed = 0;
    std::vector<std::pair<std::string, std::vector<float>>> tensors;  // "lora" first, then method state

    // The tensor of that name; fails naming the file's missing tensor.
    const std::vector<float>& tensor(const std::string& name) const;
    bool has(const std::string& name) const;
    void set(const std::string& name, std::vector<float> values);  // replaces or appends
};

// The number of adapter parameters for that model shape, configuration and branch count.
size_t lora_num_parameters(const LoraConfig& config, int num_layers, int channels, int branches);

// Writes atomically. Fails unless "lora" is present with lora_num_parameters(...) values.
void write_adapter_file(const std::string& path, const AdapterFile& file);
// Fails with "<path>: ..." on a wrong magic or version, an invalid configuration, a "lora" tensor of the wrong
// size, a bad name, NaN/Inf values, truncated or trailing data.
AdapterFile read_adapter_file(const std::string& path);
