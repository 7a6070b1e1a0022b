// clora's adapter file: every LoRA branch of a run, plus any named state a method keeps beside them (gates,
// bases, a slow adapter...), so a continual-learning run can stop at a task boundary and resume from it.
//   header (256 int32, data/llmc_header.h): [0] = 20261122 (magic), [1] = 1 (version), [2] = num_layers,
//   [3] = channels, [4] = rank, [5] = module mask (bit m: model/lora_config.h's LoraModule m), [6] = branches,
//   [7] = first trainable branch, [8] = alpha and [9] = dropout (fp32 bit patterns), [10] = number of tensors,
//   [11] = tasks completed; [254] checksum tag, [255] CRC-32C of the file.
//   Then each tensor: int32 name length, the name's bytes (printable ASCII), int64 element count, the fp32
//   values. The first is "lora": the adapters' parameters in model/lora_adapters.h's layout.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/lora_config.h"

constexpr int32_t ADAPTER_FILE_MAGIC = 20261122;
constexpr int32_t ADAPTER_FILE_VERSION = 1;

// The reader's bounds on the header's counts (far above any real run; they keep arithmetic in range).
constexpr int MAX_ADAPTER_LAYERS = 1024, MAX_ADAPTER_BRANCHES = 1 << 16, MAX_ADAPTER_TENSORS = 1 << 16,
              MAX_ADAPTER_TASKS = 1 << 16;

struct AdapterFile {
    std::string path;  // the file it was read from, for error messages ("" when built in memory)
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

// The number of adapter parameters for that model shape, configuration and branch count. Fails when a count is
// out of range or the product would overflow.
size_t lora_num_parameters(const LoraConfig& config, int num_layers, int channels, int branches);

// Writes atomically, sealed. Fails unless "lora" is present with lora_num_parameters(...) values.
void write_adapter_file(const std::string& path, const AdapterFile& file);
// Fails with "<path>: ..." on a wrong magic, a checksum mismatch, a wrong version, an invalid configuration or a
// header count out of range, a "lora" tensor of the wrong size, a bad name, NaN/Inf values, truncated or trailing
// data.
AdapterFile read_adapter_file(const std::string& path);

// For the methods' load_state (lora/methods/): what a method's resume may index with the file's counts.
// Fails naming the file unless it completed exactly `resumed_tasks` tasks (the task boundary the loop resumes
// at, from the file's name) and that many tasks exist in the run's order.
void expect_tasks_completed(const AdapterFile& file, int resumed_tasks, size_t tasks_in_order);
// Fails naming the file unless it holds `branches` branches, the first `first_trainable` of them frozen.
void expect_branches(const AdapterFile& file, int branches, int first_trainable);
