// The file-format tests' fixtures (test_formats.cpp, test_file_safety.cpp): a tiny model, random debug and
// training states, and the means to plant corrupt files (raw bytes, re-sealed bytes, one header slot or payload
// value changed, bytes cut or appended).
#pragma once
#include <dirent.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "data/checksum.h"
#include "data/file_io.h"
#include "data/llmc_header.h"
#include "data/token_loader.h"
#include "data/token_shard.h"
#include "lora/adapter_file.h"
#include "model/bf16.h"
#include "model/checkpoint.h"
#include "model/debug_state.h"
#include "model/parameters.h"
#include "model/training_state.h"
#include "test/small_model.h"
#include "test/test_support.h"

// A tiny model with odd sizes: V = 67 is padded to Vp = 128.
inline GPT2Config tiny_config() { return test_config(2, 36, 4, 67, 16); }

inline std::vector<uint8_t> file_bytes(const std::string& path) { return read_file_bytes(path); }

// Writes bytes as they are (no atomic rename), to plant corrupt files.
inline void put_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    FILE* file = std::fopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    if (!bytes.empty()) REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size());
    std::fclose(file);
}

// The edits below re-seal the file (data/llmc_header.h), so that what rejects it is the reader's own check and not
// the checksum; the checksum has tests of its own.
inline void put_sealed_bytes(const std::string& path, std::vector<uint8_t> bytes) {
    seal_llmc_checksum(bytes);
    put_file_bytes(path, bytes);
}

inline void set_header_slot(const std::string& path, int slot, int32_t value) {
    std::vector<uint8_t> bytes = file_bytes(path);
    std::memcpy(bytes.data() + slot * sizeof(int32_t), &value, sizeof(value));
    put_sealed_bytes(path, bytes);
}

inline void cut_last_bytes(const std::string& path, size_t count) {
    std::vector<uint8_t> bytes = file_bytes(path);
    REQUIRE(bytes.size() > count);
    bytes.resize(bytes.size() - count);
    put_sealed_bytes(path, bytes);
}

inline void append_bytes(const std::string& path, size_t count) {
    std::vector<uint8_t> bytes = file_bytes(path);
    bytes.insert(bytes.end(), count, uint8_t(0));
    put_sealed_bytes(path, bytes);
}

// Overwrites one value of the payload that starts after the header.
template <typename T>
inline void set_payload_value(const std::string& path, size_t index, T value) {
    std::vector<uint8_t> bytes = file_bytes(path);
    size_t offset = LLMC_HEADER_INTS * sizeof(int32_t) + index * sizeof(T);
    REQUIRE(offset + sizeof(T) <= bytes.size());
    std::memcpy(bytes.data() + offset, &value, sizeof(value));
    put_sealed_bytes(path, bytes);
}

inline int32_t header_slot_of(const std::string& path, int slot) {
    std::vector<uint8_t> bytes = file_bytes(path);
    int32_t value;
    std::memcpy(&value, bytes.data() + slot * sizeof(int32_t), sizeof(value));
    return value;
}

inline std::vector<std::string> directory_entries(const std::string& dir) {
    std::vector<std::string> names;
    DIR* handle = opendir(dir.c_str());
    REQUIRE(handle != nullptr);
    while (dirent* entry = readdir(handle)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    closedir(handle);
    return names;
}

inline bool has_temporary_file(const std::string& dir) {
    for (const std::string& name : directory_entries(dir))
        if (name.find(".tmp.") != std::string::npos) return true;
    return false;
}

inline DebugState random_debug_state(const GPT2Config& config, int B, int T, uint64_t seed) {
    DebugState state;
    state.batch_size = B;
    state.seq_len = T;
    std::vector<double> inputs = random_vector<double>(size_t(B) * T, seed, 0, config.vocab_size);
    std::vector<double> targets = random_vector<double>(size_t(B) * T, seed + 1, 0, config.vocab_size);
    for (double value : inputs) state.inputs.push_back(int(value));
    for (double value : targets) state.targets.push_back(int(value));
    state.logits = random_vector<float>(size_t(B) * T * config.vocab_size, seed + 2, -5, 5);
    state.loss = 4.1875f;
    state.grads = random_vector<float>(num_parameters(config), seed + 3, -0.01, 0.01);
    return state;
}

inline TrainingState random_training_state(size_t num_parameters, uint64_t seed) {
    TrainingState state;
    state.step = (int64_t(1) << 33) + 7;  // needs both halves of the int64 slots
    state.shard_index = 3;
    state.shard_position = (int64_t(5) << 32) + 123456;
    state.rng_state = 0xF123456789ABCDEFULL;  // high bit set
    state.adam_m = random_vector<float>(num_parameters, seed, -0.1, 0.1);
    state.adam_v = random_vector<float>(num_parameters, seed + 1, 0, 0.01);
    return state;
}
