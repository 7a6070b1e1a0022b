// The binary file formats: llm.c checkpoints (v3 fp32, v5 bf16), debug states, token shards, clora's training
// state and adapter file round-trip exactly (run stamps included), are sealed with a CRC-32C that catches any
// change, reject corrupt files with messages that name the file and the problem (the reader's own checks, behind
// a re-sealed checksum), and are written atomically.
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
#include "test/test_support.h"

using Catch::Contains;

namespace {
// A tiny model with odd sizes: V = 67 is padded to Vp = 128.
GPT2Config tiny_config() {
    GPT2Config config;
    config.max_seq_len = 16;
    config.vocab_size = 67;
    config.padded_vocab_size = padded_vocab(67);
    config.num_layers = 2;
    config.num_heads = 4;
    config.channels = 36;
    return config;
}

std::vector<uint8_t> file_bytes(const std::string& path) { return read_file_bytes(path); }

// Writes bytes as they are (no atomic rename), to plant corrupt files.
void put_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    FILE* file = std::fopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    if (!bytes.empty()) REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size());
    std::fclose(file);
}

// The edits below re-seal the file (data/llmc_header.h), so that what rejects it is the reader's own check and not
// the checksum; the checksum has tests of its own.
void put_sealed_bytes(const std::string& path, std::vector<uint8_t> bytes) {
    seal_llmc_checksum(bytes);
    put_file_bytes(path, bytes);
}

void set_header_slot(const std::string& path, int slot, int32_t value) {
    std::vector<uint8_t> bytes = file_bytes(path);
    std::memcpy(bytes.data() + slot * sizeof(int32_t), &value, sizeof(value));
    put_sealed_bytes(path, bytes);
}

void cut_last_bytes(const std::string& path, size_t count) {
    std::vector<uint8_t> bytes = file_bytes(path);
    REQUIRE(bytes.size() > count);
    bytes.resize(bytes.size() - count);
    put_sealed_bytes(path, bytes);
}

void append_bytes(const std::string& path, size_t count) {
    std::vector<uint8_t> bytes = file_bytes(path);
    bytes.insert(bytes.end(), count, uint8_t(0));
    put_sealed_bytes(path, bytes);
}

// Overwrites one value of the payload that starts after the header.
template <typename T>
void set_payload_value(const std::string& path, size_t index, T value) {
    std::vector<uint8_t> bytes = file_bytes(path);
    size_t offset = LLMC_HEADER_INTS * sizeof(int32_t) + index * sizeof(T);
    REQUIRE(offset + sizeof(T) <= bytes.size());
    std::memcpy(bytes.data() + offset, &value, sizeof(value));
    put_sealed_bytes(path, bytes);
}

int32_t header_slot_of(const std::string& path, int slot) {
    std::vector<uint8_t> bytes = file_bytes(path);
    int32_t value;
    std::memcpy(&value, bytes.data() + slot * sizeof(int32_t), sizeof(value));
    return value;
}

std::vector<std::string> directory_entries(const std::string& dir) {
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

bool has_temporary_file(const std::string& dir) {
    for (const std::string& name : directory_entries(dir))
        if (name.find(".tmp.") != std::string::npos) return true;
    return false;
}

DebugState random_debug_state(const GPT2Config& config, int B, int T, uint64_t seed) {
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

TrainingState random_training_state(size_t num_parameters, uint64_t seed) {
    TrainingState state;
    state.step = (int64_t(1) << 33) + 7;  // needs both halves of the int64 slots
    state.shard_index = 3;
    state.shard_position = (int64_t(5) << 32) + 123456;
    state.rng_state = 0xF123456789ABCDEFULL;  // high bit set
    state.adam_m = random_vector<float>(num_parameters, seed, -0.1, 0.1);
    state.adam_v = random_vector<float>(num_parameters, seed + 1, 0, 0.01);
    return state;
}
}  // namespace

// ---- checkpoints ----

TEST_CASE("formats: checkpoint v3 round trip is exact") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 11);
    std::string path = dir + "/model.bin";
    write_checkpoint(path, config, parameters.data());

    REQUIRE(file_bytes(path).size() == 1024 + parameters.size() * sizeof(float));
    Checkpoint checkpoint = read_checkpoint(path);
    CHECK(checkpoint.config.max_seq_len == 16);
    CHECK(checkpoint.config.vocab_size == 67);
    CHECK(checkpoint.config.padded_vocab_size == 128);
    CHECK(checkpoint.config.num_layers == 2);
    CHECK(checkpoint.config.num_heads == 4);
    CHECK(checkpoint.config.channels == 36);
    REQUIRE(checkpoint.parameters.size() == parameters.size());
    CHECK(std::memcmp(checkpoint.parameters.data(), parameters.data(), parameters.size() * sizeof(float)) == 0);
    CHECK_FALSE(has_temporary_file(dir));
}

TEST_CASE("formats: checkpoint v5 bf16 round trip rounds to nearest even") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    const size_t count = num_parameters(config);
    std::string path = dir + "/model_bf16.bin";

    SECTION("random values come back within bf16 rounding") {
        std::vector<float> parameters = random_vector<float>(count, 12, -3, 3);
        write_checkpoint_bf16(path, config, parameters.data());
        REQUIRE(file_bytes(path).size() == 1024 + count * sizeof(uint16_t));
        Checkpoint checkpoint = read_checkpoint(path);
        REQUIRE(checkpoint.parameters.size() == count);
        for (size_t i = 0; i < count; i++)  // bf16 keeps 8 significant bits: half an ulp is 2^-8 relative
            REQUIRE(std::abs(checkpoint.parameters[i] - parameters[i]) <= std::abs(parameters[i]) * 0x1p-8f);
    }
    SECTION("values representable in bf16 come back exactly") {
        std::vector<float> parameters = random_vector<float>(count, 13, -3, 3);
        for (float& value : parameters) value = bf16_to_float(float_to_bf16(value));
        write_checkpoint_bf16(path, config, parameters.data());
        Checkpoint checkpoint = read_checkpoint(path);
        CHECK(std::memcmp(checkpoint.parameters.data(), parameters.data(), count * sizeof(float)) == 0);
    }
    SECTION("ties round to even") {
        std::vector<float> parameters(count, 0.0f);
        auto from_bits = [](uint32_t bits) {
            float value;
            std::memcpy(&value, &bits, sizeof(value));
            return value;
        };
        parameters[0] = from_bits(0x3F808000);  // 1 + 2^-8: halfway between 0x3F80 and 0x3F81, even is 0x3F80
        parameters[1] = from_bits(0x3F818000);  // halfway between 0x3F81 and 0x3F82, even is 0x3F82
        parameters[2] = from_bits(0x3F808001);  // just above halfway: up to 0x3F81
        parameters[3] = from_bits(0xBF807FFF);  // just below halfway, negative: down to 0xBF80
        write_checkpoint_bf16(path, config, parameters.data());
        Checkpoint checkpoint = read_checkpoint(path);
        CHECK(checkpoint.parameters[0] == from_bits(0x3F800000));
        CHECK(checkpoint.parameters[1] == from_bits(0x3F820000));
        CHECK(checkpoint.parameters[2] == from_bits(0x3F810000));
        CHECK(checkpoint.parameters[3] == from_bits(0xBF800000));
    }
    CHECK_FALSE(has_temporary_file(dir));
}

TEST_CASE("formats: checkpoint with padded_vocab_size 0 pads the vocabulary itself") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 14);
    std::string path = dir + "/old.bin";
    write_checkpoint(path, config, parameters.data());
    set_header_slot(path, 7, 0);
    Checkpoint checkpoint = read_checkpoint(path);
    CHECK(checkpoint.config.padded_vocab_size == 128);
    CHECK(checkpoint.parameters == parameters);
}

TEST_CASE("formats: checkpoint rejects corrupt files") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 15);
    std::string path = dir + "/model.bin";
    write_checkpoint(path, config, parameters.data());

    SECTION("wrong magic") {
        set_header_slot(path, 0, 12345);
        REQUIRE_THROWS_WITH(read_checkpoint(path),
                            Contains(path) && Contains("not a GPT-2 checkpoint: magic 12345, expected 20240326"));
    }
    SECTION("a token shard is not a checkpoint") {
        write_token_shard(path, std::vector<uint16_t>(10, 1));
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("magic 20240520"));
    }
    SECTION("unsupported version") {
        set_header_slot(path, 1, 4);
        REQUIRE_THROWS_WITH(read_checkpoint(path),
                            Contains(path) && Contains("unsupported GPT-2 checkpoint version 4") && Contains("3, 5"));
    }
    SECTION("invalid config in the header") {
        set_header_slot(path, 6, 37);  // C = 37 is not divisible by NH = 4
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("invalid model config") &&
                                                       Contains("divisible by num_heads"));
    }
    SECTION("truncated parameters") {
        cut_last_bytes(path, 3);
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("truncated") && Contains("parameters"));
    }
    SECTION("truncated header") {
        std::vector<uint8_t> bytes = file_bytes(path);
        bytes.resize(100);
        put_file_bytes(path, bytes);
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("truncated: header"));
    }
    SECTION("empty file") {
        put_file_bytes(path, {});
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("truncated"));
    }
    SECTION("trailing bytes") {
        append_bytes(path, 4);
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("4 unexpected trailing bytes"));
    }
    SECTION("NaN in a parameter names the tensor") {
        std::array<size_t, NUM_PARAMETER_TENSORS> sizes = parameter_sizes(config);
        size_t qkvw_begin = sizes[0] + sizes[1] + sizes[2] + sizes[3];
        set_payload_value<float>(path, qkvw_begin + 5, std::numeric_limits<float>::quiet_NaN());
        REQUIRE_THROWS_WITH(read_checkpoint(path),
                            Contains(path) && Contains("qkvw") && Contains("non-finite") && Contains("element 5"));
    }
    SECTION("Inf in a bf16 checkpoint names the tensor") {
        parameters.back() = std::numeric_limits<float>::infinity();  // the last element of lnfb
        write_checkpoint_bf16(path, config, parameters.data());
        REQUIRE_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("lnfb") && Contains("non-finite"));
    }
    SECTION("missing file") {
        std::string missing = dir + "/no_such_model.bin";
        REQUIRE_THROWS_WITH(read_checkpoint(missing), Contains(missing) && Contains("cannot open"));
    }
    SECTION("a directory or a device is no checkpoint (/dev/zero would be read forever)") {
        REQUIRE_THROWS_WITH(read_checkpoint(dir), Contains(dir + ": not a regular file"));
        REQUIRE_THROWS_WITH(read_checkpoint("/dev/zero"), Contains("/dev/zero: not a regular file"));
    }
}

// ---- debug states ----

TEST_CASE("formats: debug state round trip is exact") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    DebugState state = random_debug_state(config, 3, 5, 21);
    std::string path = dir + "/state.bin";
    write_debug_state(path, config, state);

    DebugState read = read_debug_state(path, config);
    CHECK(read.batch_size == 3);
    CHECK(read.seq_len == 5);
    CHECK(read.inputs == state.inputs);
    CHECK(read.targets == state.targets);
    CHECK(read.logits == state.logits);
    CHECK(read.loss == state.loss);
    CHECK(read.grads == state.grads);
    CHECK_FALSE(has_temporary_file(dir));
}

TEST_CASE("formats: debug state rejects corrupt files") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    const int B = 2, T = 4;
    DebugState state = random_debug_state(config, B, T, 22);
    std::string path = dir + "/state.bin";
    write_debug_state(path, config, state);

    SECTION("wrong magic") {
        set_header_slot(path, 0, CHECKPOINT_MAGIC);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("not a llm.c debug state: magic 20240326, expected 20240327"));
    }
    SECTION("unsupported version") {
        set_header_slot(path, 1, 1);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("unsupported llm.c debug state version 1 (supported: 2)"));
    }
    SECTION("B must be positive") {
        set_header_slot(path, 2, 0);
        REQUIRE_THROWS_WITH(read_debug_state(path, config), Contains(path) && Contains("batch size B = 0"));
    }
    SECTION("T beyond max_seq_len") {
        set_header_slot(path, 3, 17);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("sequence length T = 17 must be in 1..16"));
    }
    SECTION("input token out of range") {
        set_payload_value<int32_t>(path, 6, 67);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("inputs[6] = 67 is out of range for vocabulary size 67"));
    }
    SECTION("negative target token") {
        set_payload_value<int32_t>(path, B * T + 3, -2);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("targets[3] = -2 is out of range for vocabulary size 67"));
    }
    SECTION("truncated") {
        cut_last_bytes(path, 1);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("truncated") && Contains("gradients"));
    }
    SECTION("trailing bytes") {
        append_bytes(path, 8);
        REQUIRE_THROWS_WITH(read_debug_state(path, config),
                            Contains(path) && Contains("8 unexpected trailing bytes"));
    }
    SECTION("a different model's config") {
        GPT2Config wider = config;
        wider.channels = 40;
        REQUIRE_THROWS_WITH(read_debug_state(path, wider), Contains(path) && Contains("truncated"));
    }
}

// ---- token shards ----

TEST_CASE("formats: token shard round trip is exact") {
    std::string dir = make_temp_dir("formats");
    std::vector<double> values = random_vector<double>(1001, 31, 0, 65536);
    std::vector<uint16_t> tokens;
    for (double value : values) tokens.push_back(uint16_t(value));
    std::string path = dir + "/shard_000.bin";
    write_token_shard(path, tokens);
    REQUIRE(file_bytes(path).size() == 1024 + tokens.size() * sizeof(uint16_t));
    CHECK(read_token_shard(path, 65536) == tokens);

    write_token_shard(path, {});  // an empty shard is valid
    CHECK(read_token_shard(path, 50257).empty());
    CHECK_FALSE(has_temporary_file(dir));
}

TEST_CASE("formats: token shard rejects corrupt files") {
    std::string dir = make_temp_dir("formats");
    std::vector<double> values = random_vector<double>(100, 32, 0, 67);
    std::vector<uint16_t> tokens;
    for (double value : values) tokens.push_back(uint16_t(value));
    std::string path = dir + "/shard_000.bin";
    write_token_shard(path, tokens);
    REQUIRE(read_token_shard(path, 67) == tokens);

    SECTION("token id out of range") {
        tokens[12] = 70;
        write_token_shard(path, tokens);
        REQUIRE_THROWS_WITH(read_token_shard(path, 67),
                            Contains(path) &&
                                Contains("token id 70 at position 12 is out of range for vocabulary size 67"));
    }
    SECTION("wrong magic") {
        set_header_slot(path, 0, 20240326);
        REQUIRE_THROWS_WITH(read_token_shard(path, 67),
                            Contains(path) && Contains("not a llm.c token shard: magic 20240326, expected 20240520"));
    }
    SECTION("unsupported version") {
        set_header_slot(path, 1, 2);
        REQUIRE_THROWS_WITH(read_token_shard(path, 67),
                            Contains(path) && Contains("unsupported llm.c token shard version 2 (supported: 1)"));
    }
    SECTION("truncated") {
        cut_last_bytes(path, 2);
        REQUIRE_THROWS_WITH(read_token_shard(path, 67),
                            Contains(path) && Contains("truncated: the header says 100 tokens (200 bytes), but 198"));
    }
    SECTION("trailing bytes") {
        append_bytes(path, 6);
        REQUIRE_THROWS_WITH(read_token_shard(path, 67), Contains(path) && Contains("trailing bytes") &&
                                                           Contains("100 tokens (200 bytes), but 206 bytes"));
    }
    SECTION("a count past the end of the file") {
        set_header_slot(path, 2, std::numeric_limits<int32_t>::max());
        REQUIRE_THROWS_WITH(read_token_shard(path, 67), Contains(path) && Contains("truncated"));
    }
    SECTION("negative count") {
        set_header_slot(path, 2, -1);
        REQUIRE_THROWS_WITH(read_token_shard(path, 67), Contains(path) && Contains("negative token count -1"));
    }
    SECTION("missing file") {
        std::string missing = dir + "/shard_999.bin";
        REQUIRE_THROWS_WITH(read_token_shard(missing, 67), Contains(missing) && Contains("cannot open"));
    }
}

// ---- training states ----

TEST_CASE("formats: training state round trip is exact") {
    std::string dir = make_temp_dir("formats");
    const size_t count = num_parameters(tiny_config());
    TrainingState state = random_training_state(count, 41);
    std::string path = dir + "/state_000010.bin";
    write_training_state(path, state);
    REQUIRE(file_bytes(path).size() == 1024 + 2 * count * sizeof(float));

    TrainingState read = read_training_state(path, count);
    CHECK(read.step == state.step);
    CHECK(read.shard_index == state.shard_index);
    CHECK(read.shard_position == state.shard_position);
    CHECK(read.rng_state == state.rng_state);
    CHECK(read.adam_m == state.adam_m);
    CHECK(read.adam_v == state.adam_v);
    CHECK_FALSE(has_temporary_file(dir));
}

TEST_CASE("formats: training state rejects corrupt files") {
    std::string dir = make_temp_dir("formats");
    const size_t count = num_parameters(tiny_config());
    std::string path = dir + "/state.bin";
    write_training_state(path, random_training_state(count, 42));

    SECTION("a different parameter count") {
        REQUIRE_THROWS_WITH(read_training_state(path, count + 1),
                            Contains(path) && Contains("written for a model with " + std::to_string(count) +
                                                       " parameters, this model has " + std::to_string(count + 1)));
    }
    SECTION("wrong magic") {
        set_header_slot(path, 0, 7);
        REQUIRE_THROWS_WITH(read_training_state(path, count),
                            Contains(path) && Contains("not a clora training state: magic 7, expected 20261121"));
    }
    SECTION("unsupported version") {
        set_header_slot(path, 1, 9);
        REQUIRE_THROWS_WITH(read_training_state(path, count),
                            Contains(path) && Contains("unsupported clora training state version 9 (supported: 1)"));
    }
    SECTION("negative step") {
        set_header_slot(path, 5, -1);  // the high half of step
        REQUIRE_THROWS_WITH(read_training_state(path, count), Contains(path) && Contains("negative step"));
    }
    SECTION("negative shard position") {
        set_header_slot(path, 9, int32_t(0x80000000u));
        REQUIRE_THROWS_WITH(read_training_state(path, count), Contains(path) && Contains("negative step or data"));
    }
    SECTION("truncated") {
        cut_last_bytes(path, 4);
        REQUIRE_THROWS_WITH(read_training_state(path, count),
                            Contains(path) && Contains("truncated: adam_v"));
    }
    SECTION("trailing bytes") {
        append_bytes(path, 1);
        REQUIRE_THROWS_WITH(read_training_state(path, count),
                            Contains(path) && Contains("1 unexpected trailing bytes"));
    }
    SECTION("missing file") {
        std::string missing = dir + "/state_missing.bin";
        REQUIRE_THROWS_WITH(read_training_state(missing, count), Contains(missing) && Contains("cannot open"));
    }
}

TEST_CASE("formats: header int64 slots hold the full range") {
    LlmcHeader header = make_llmc_header(1, 1);
    for (int64_t value : {int64_t(0), int64_t(-1), int64_t(1) << 40, std::numeric_limits<int64_t>::min(),
                          std::numeric_limits<int64_t>::max(), int64_t(0xFFFFFFFF)}) {
        set_header_int64(header, 2, value);
        CHECK(get_header_int64(header, 2) == value);
    }
}

// ---- atomic writes ----

TEST_CASE("formats: writes are atomic") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 51);

    SECTION("a missing directory fails clearly and leaves no temporary file") {
        std::string path = dir + "/missing_dir/model.bin";
        REQUIRE_THROWS_WITH(write_checkpoint(path, config, parameters.data()),
                            Contains(path) && Contains("cannot write") && Contains("No such file or directory"));
        REQUIRE_THROWS_WITH(write_token_shard(dir + "/missing_dir/shard.bin", {1, 2, 3}), Contains("missing_dir"));
        CHECK(directory_entries(dir).empty());
    }
    SECTION("every format leaves only its file") {
        write_checkpoint(dir + "/a.bin", config, parameters.data());
        write_checkpoint_bf16(dir + "/b.bin", config, parameters.data());
        write_debug_state(dir + "/c.bin", config, random_debug_state(config, 1, 2, 52));
        write_token_shard(dir + "/d.bin", {1, 2, 3});
        write_training_state(dir + "/e.bin", random_training_state(10, 53));
        CHECK(directory_entries(dir).size() == 5);
        CHECK_FALSE(has_temporary_file(dir));
    }
    SECTION("overwriting a checkpoint replaces it whole") {
        std::string path = dir + "/model.bin";
        write_checkpoint(path, config, parameters.data());
        GPT2Config smaller = config;
        smaller.num_layers = 1;
        smaller.max_seq_len = 8;
        std::vector<float> smaller_parameters = random_vector<float>(num_parameters(smaller), 54);
        write_checkpoint(path, smaller, smaller_parameters.data());

        CHECK(file_bytes(path).size() == 1024 + smaller_parameters.size() * sizeof(float));
        Checkpoint checkpoint = read_checkpoint(path);
        CHECK(checkpoint.config.num_layers == 1);
        CHECK(checkpoint.config.max_seq_len == 8);
        CHECK(checkpoint.parameters == smaller_parameters);
        CHECK(directory_entries(dir).size() == 1);
    }
}

// ---- the checksum seal ----

TEST_CASE("formats: CRC-32C gives the published check values, in hardware and by table") {
    CHECK(crc32c("123456789", 9) == 0xE3069283u);
    CHECK(crc32c_portable("123456789", 9) == 0xE3069283u);
    CHECK(crc32c("", 0) == 0u);
    // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, of ones, ascending and descending
    std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), ascending(32), descending(32);
    for (int i = 0; i < 32; i++) ascending[i] = uint8_t(i), descending[i] = uint8_t(31 - i);
    for (auto [bytes, expected] : {std::make_pair(&zeros, 0x8A9136AAu), std::make_pair(&ones, 0x62A8AB43u),
                                   std::make_pair(&ascending, 0x46DD794Eu), std::make_pair(&descending, 0x113FDB5Cu)}) {
        CHECK(crc32c(bytes->data(), 32) == expected);
        CHECK(crc32c_portable(bytes->data(), 32) == expected);
    }
    // every length and alignment, and continuing from a seed, agree with the table version
    std::vector<uint8_t> random_bytes;
    for (double x : random_vector<double>(300, 61, 0, 256)) random_bytes.push_back(uint8_t(x));
    for (size_t start = 0; start < 9; start++)
        for (size_t length = 0; start + length <= random_bytes.size(); length += 7) {
            const uint8_t* p = random_bytes.data() + start;
            const uint32_t whole = crc32c_portable(p, length);
            CHECK(crc32c(p, length) == whole);
            const size_t half = length / 2;
            CHECK(crc32c(p + half, length - half, crc32c(p, half)) == whole);
        }
}

TEST_CASE("formats: files are sealed with a checksum that catches any change; llm.c's unsealed files load") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 62);
    std::string path = dir + "/model.bin";
    write_checkpoint(path, config, parameters.data());
    std::vector<uint8_t> bytes = file_bytes(path);
    CHECK(header_slot_of(path, CHECKSUM_TAG_SLOT) == LLMC_CHECKSUM_TAG);
    CHECK(uint32_t(header_slot_of(path, CHECKSUM_SLOT)) == llmc_file_checksum(bytes.data(), bytes.size()));
    for (int slot = 8; slot < CHECKSUM_TAG_SLOT; slot++) CHECK(header_slot_of(path, slot) == 0);  // llm.c's view

    SECTION("one flipped bit anywhere past the magic: a checksum mismatch naming the file") {
        for (size_t bit : {size_t(5 * 8 + 1), size_t(1020 * 8), size_t(1024 * 8 + 5), bytes.size() * 8 - 1}) {
            std::vector<uint8_t> flipped = bytes;
            flipped[bit / 8] ^= uint8_t(1u << (bit % 8));
            put_file_bytes(path, flipped);
            INFO("bit " << bit);
            CHECK_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("checksum mismatch (stored 0x") &&
                                                         Contains("the file is corrupt"));
        }
    }
    SECTION("a damaged tag is no way around it") {
        bytes[CHECKSUM_TAG_SLOT * 4] ^= 0x10;
        put_file_bytes(path, bytes);
        CHECK_THROWS_WITH(read_checkpoint(path),
                          Contains(path) && Contains("neither clora's checksum seal") && Contains("corrupt"));
        std::memset(bytes.data() + CHECKSUM_TAG_SLOT * 4, 0, 4);  // no tag, but a CRC left in [255]
        put_file_bytes(path, bytes);
        CHECK_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("neither clora's checksum seal"));
    }
    SECTION("an unsealed file (llm.c's: [254], [255] = 0) loads unverified") {
        std::memset(bytes.data() + CHECKSUM_TAG_SLOT * 4, 0, 8);
        put_file_bytes(path, bytes);
        CHECK(read_checkpoint(path).parameters == parameters);
        Checkpoint fixture = read_checkpoint("test/fixtures/gpt2_tiny.bin");  // written by PyTorch, llm.c's way
        CHECK(fixture.config.channels == 36);
        CHECK_FALSE(fixture.stamp.stamped());
    }
    SECTION("every writer seals: checkpoints v3 and v5, debug states, shards, training states, adapter files") {
        write_checkpoint_bf16(dir + "/b.bin", config, parameters.data());
        write_debug_state(dir + "/c.bin", config, random_debug_state(config, 1, 2, 63));
        write_token_shard(dir + "/d.bin", {1, 2, 3});
        write_token_shard(dir + "/empty.bin", {});
        write_training_state(dir + "/e.bin", random_training_state(10, 64));
        AdapterFile adapters;
        adapters.num_layers = 1, adapters.channels = 4, adapters.branches = 1;
        adapters.set("lora", std::vector<float>(lora_num_parameters(adapters.config, 1, 4, 1), 0.5f));
        write_adapter_file(dir + "/f.bin", adapters);
        for (const char* name : {"b.bin", "c.bin", "d.bin", "empty.bin", "e.bin", "f.bin"}) {
            INFO(name);
            const std::vector<uint8_t> written = file_bytes(dir + "/" + name);
            CHECK(header_slot_of(dir + "/" + name, CHECKSUM_TAG_SLOT) == LLMC_CHECKSUM_TAG);
            CHECK(uint32_t(header_slot_of(dir + "/" + name, CHECKSUM_SLOT)) ==
                  llmc_file_checksum(written.data(), written.size()));
        }
        CHECK(read_token_shard(dir + "/empty.bin", 10).empty());
        CHECK(read_adapter_file(dir + "/f.bin").tensor("lora") == adapters.tensor("lora"));
    }
    SECTION("seal_llmc_checksum makes an edited buffer pass the checksum, and nothing else") {
        int32_t layers = 3;
        std::memcpy(bytes.data() + 4 * 4, &layers, 4);
        seal_llmc_checksum(bytes);
        put_file_bytes(path, bytes);
        CHECK_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains("truncated"));  // the size check's turn
        std::vector<uint8_t> tiny(10, 0);
        CHECK_THROWS_WITH(seal_llmc_checksum(tiny), Contains("fewer than an llm.c header"));
    }
}

// ---- run stamps ----

TEST_CASE("formats: checkpoints and training states carry the run stamp") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 65);
    const RunStamp stamp{0xF0E1D2C3B4A59687ULL, (int64_t(1) << 33) + 5};  // both halves of both slots

    write_checkpoint(dir + "/plain.bin", config, parameters.data());
    CHECK(read_checkpoint(dir + "/plain.bin").stamp == RunStamp{});
    CHECK(RunStamp{}.step == -1);
    write_checkpoint(dir + "/stamped.bin", config, parameters.data(), stamp);
    write_checkpoint_bf16(dir + "/stamped_bf16.bin", config, parameters.data(), stamp);
    for (const char* name : {"stamped.bin", "stamped_bf16.bin"}) {
        const Checkpoint checkpoint = read_checkpoint(dir + "/" + name);
        CHECK(checkpoint.stamp.stamped());
        CHECK(checkpoint.stamp.run_id == stamp.run_id);
        CHECK(checkpoint.stamp.step == stamp.step);
        CHECK(header_slot_of(dir + "/" + name, RUN_ID_SLOT) == int32_t(0xB4A59687u));
        CHECK(header_slot_of(dir + "/" + name, RUN_STEP_SLOT + 1) == 2);
    }
    CHECK_THROWS_WITH(write_checkpoint(dir + "/bad.bin", config, parameters.data(), RunStamp{7, -3}),
                      Contains(dir + "/bad.bin") && Contains("negative step -3"));

    const size_t count = num_parameters(config);
    TrainingState state = random_training_state(count, 66);
    write_training_state(dir + "/state_plain.bin", state);
    CHECK(read_training_state(dir + "/state_plain.bin", count).stamp == RunStamp{});
    state.stamp = RunStamp{stamp.run_id, state.step};
    write_training_state(dir + "/state.bin", state);
    CHECK(read_training_state(dir + "/state.bin", count).stamp == state.stamp);
    TrainingState mismatched = state;
    mismatched.stamp.step = state.step - 1;
    CHECK_THROWS_WITH(write_training_state(dir + "/state_bad.bin", mismatched), Contains("stamped with step"));

    SECTION("a stamp's step that is not the state's step") {
        set_header_slot(dir + "/state.bin", RUN_STEP_SLOT, 1);
        set_header_slot(dir + "/state.bin", RUN_STEP_SLOT + 1, 0);
        CHECK_THROWS_WITH(read_training_state(dir + "/state.bin", count),
                          Contains(dir + "/state.bin") && Contains("the run stamp's step 1 is not the state's step"));
    }
    SECTION("a stamped negative step, or a step without a run id") {
        set_header_slot(dir + "/stamped.bin", RUN_STEP_SLOT + 1, -1);
        CHECK_THROWS_WITH(read_checkpoint(dir + "/stamped.bin"), Contains("run stamp: negative step"));
        set_header_slot(dir + "/plain.bin", RUN_STEP_SLOT, 4);
        CHECK_THROWS_WITH(read_checkpoint(dir + "/plain.bin"), Contains("run stamp: step 4 without a run id"));
    }
}

// ---- every header field bounded ----

TEST_CASE("formats: header fields out of range are errors, before any arithmetic uses them") {
    std::string dir = make_temp_dir("formats");
    GPT2Config config = tiny_config();
    std::vector<float> parameters = random_vector<float>(num_parameters(config), 67);
    std::string path = dir + "/model.bin";
    struct Case {
        int slot;
        int32_t value;
        const char* message;
    } cases[] = {
        {3, std::numeric_limits<int32_t>::max(), "vocab_size = 2147483647 is outside 1..1048576"},
        {2, 0, "max_seq_len = 0 is outside"},          {4, -1, "num_layers = -1 is outside 1..1024"},
        {5, 0, "num_heads = 0"},                        {6, 1 << 30, "channels = 1073741824 is outside"},
        {7, -128, "padded_vocab_size = -128 is outside"}, {7, 64, "padded_vocab_size must be >= vocab_size"},
        {4, 1024, "truncated"},  // in range, but the file holds 2 layers
    };
    for (const Case& c : cases) {
        INFO("header[" << c.slot << "] = " << c.value);
        write_checkpoint(path, config, parameters.data());
        if (c.slot == 3) set_header_slot(path, 7, 0);  // padded_vocab(V) would be computed from V
        set_header_slot(path, c.slot, c.value);
        CHECK_THROWS_WITH(read_checkpoint(path), Contains(path) && Contains(c.message));
    }
    // debug states: NaN in the reference is no reference
    const std::string state_path = dir + "/state.bin";
    DebugState state = random_debug_state(config, 2, 3, 68);
    state.loss = std::numeric_limits<float>::quiet_NaN();
    write_debug_state(state_path, config, state);
    CHECK_THROWS_WITH(read_debug_state(state_path, config), Contains(state_path) && Contains("loss[0] = nan"));
    // training states: non-finite or negative moments
    const size_t count = num_parameters(config);
    TrainingState training = random_training_state(count, 69);
    training.adam_v[3] = -1.0f;
    write_training_state(dir + "/t.bin", training);
    CHECK_THROWS_WITH(read_training_state(dir + "/t.bin", count), Contains("adam_v[3] = -1") && Contains(">= 0"));
    training.adam_v[3] = 0.5f;
    training.adam_m[7] = std::numeric_limits<float>::infinity();
    write_training_state(dir + "/t.bin", training);
    CHECK_THROWS_WITH(read_training_state(dir + "/t.bin", count), Contains("adam_m[7] = inf is not finite"));
}

TEST_CASE("formats: adapter file header counts are bounded and every product checked") {
    std::string dir = make_temp_dir("formats");
    AdapterFile file;
    file.num_layers = 2, file.channels = 8, file.branches = 2, file.first_trainable = 1, file.tasks_completed = 2;
    file.config.rank = 2;
    file.config.modules = 0xF;
    file.set("lora", random_vector<float>(lora_num_parameters(file.config, 2, 8, 2), 71));
    file.set("accuracy/0", {100.0f});
    const std::string path = dir + "/adapters.bin";
    struct Case {
        int slot;
        int32_t value;
        const char* message;
    } cases[] = {
        {3, 1 << 30, "channels = 1073741824 is outside 1..65536"}, {3, -5, "channels = -5"},
        {2, std::numeric_limits<int32_t>::max(), "num_layers = 2147483647"},
        {4, std::numeric_limits<int32_t>::max(), "LoRA rank must be in 1..65536"},
        {6, 1 << 20, "branches = 1048576 is outside"},         {7, 3, "first trainable branch = 3 is outside 0..2"},
        {10, 0, "tensors = 0 is outside"},                      {10, 1 << 30, "tensors = 1073741824"},
        {11, -1, "tasks completed = -1"},                       {5, 0x10, "LoRA modules: invalid set 16"},
        {6, 3, "tensor 'lora' holds"},  // in range, but the tensor has 2 branches' values
    };
    for (const Case& c : cases) {
        INFO("header[" << c.slot << "] = " << c.value);
        write_adapter_file(path, file);
        set_header_slot(path, c.slot, c.value);
        CHECK_THROWS_WITH(read_adapter_file(path), Contains(path) && Contains(c.message));
    }
    // huge counts whose product would overflow a size_t
    LoraConfig huge = file.config;
    huge.rank = MAX_LORA_RANK;
    CHECK_THROWS_WITH(lora_num_parameters(huge, 1 << 30, 1 << 16, 1 << 30), Contains("overflows"));
    CHECK_THROWS_WITH(lora_num_parameters(huge, 1, 1 << 30, 1), Contains("channels"));
    // a tensor name that is not printable ASCII is escaped in the error
    write_adapter_file(path, file);
    std::vector<uint8_t> bytes = file_bytes(path);
    const size_t name = 1024 + 4;  // the first tensor's name, "lora"
    bytes[name] = 0x1B;
    put_sealed_bytes(path, bytes);
    CHECK_THROWS_WITH(read_adapter_file(path), Contains("'\\x1Bora' is not printable ASCII"));
    // the methods' resume checks
    write_adapter_file(path, file);
    AdapterFile read = read_adapter_file(path);
    CHECK(read.path == path);
    CHECK_NOTHROW(expect_tasks_completed(read, 2, 4));
    CHECK_THROWS_WITH(expect_tasks_completed(read, 1, 4), Contains(path) && Contains("2 tasks completed"));
    CHECK_THROWS_WITH(expect_tasks_completed(read, 2, 1), Contains(path));
    CHECK_NOTHROW(expect_branches(read, 2, 1));
    CHECK_THROWS_WITH(expect_branches(read, 1, 0), Contains(path) && Contains("2 branches"));
    CHECK_THROWS_WITH(read.tensor("accuracy/5"), Contains(path) && Contains("no tensor 'accuracy/5'"));
}

// ---- the token loader ----

TEST_CASE("formats: the token loader checks every shard before the first batch") {
    std::string dir = make_temp_dir("formats");
    write_token_shard(dir + "/train_000.bin", std::vector<uint16_t>(100, 3));
    std::vector<uint16_t> bad(100, 3);
    bad[77] = 50;
    write_token_shard(dir + "/train_001.bin", bad);
    CHECK_THROWS_WITH(TokenLoader(dir + "/train_*.bin", 2, 8, 50),
                      Contains(dir + "/train_001.bin") && Contains("token id 50 at position 77"));
    write_token_shard(dir + "/train_001.bin", std::vector<uint16_t>(10, 3));
    CHECK_THROWS_WITH(TokenLoader(dir + "/train_*.bin", 2, 8, 50),
                      Contains(dir + "/train_001.bin") && Contains("10 tokens, too few"));
    write_token_shard(dir + "/train_001.bin", {});
    CHECK_THROWS_WITH(TokenLoader(dir + "/train_*.bin", 2, 8, 50), Contains(dir + "/train_001.bin: no tokens"));
    CHECK_THROWS_WITH(TokenLoader(std::vector<uint16_t>{}, 2, 8, 50), Contains("token stream: no tokens"));
    write_token_shard(dir + "/train_001.bin", std::vector<uint16_t>(100, 4));
    TokenLoader loader(dir + "/train_*.bin", 2, 8, 50);
    loader.next_batch();
    CHECK(loader.inputs[0] == 3);  // the first shard stays loaded
}
