// The binary file formats: llm.c checkpoints (v3 fp32, v5 bf16), debug states, token shards and clora's training
// state round-trip exactly and reject corrupt files with messages that name the file and the problem (the reader's
// own checks, behind a re-sealed checksum). Their safety (sealing, atomic writes, run stamps, bounded headers):
// test_file_safety.cpp.
#include "test/format_fixtures.h"

using Catch::Contains;


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
