// The files' safety: every file is written atomically, sealed with a CRC-32C that catches any change (llm.c's
// unsealed files still load), carries its run stamp, and has every header field bounded before any arithmetic
// uses it; the token loader checks every shard before the first batch.
#include "test/format_fixtures.h"

using Catch::Contains;

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
