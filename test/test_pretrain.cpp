// The pretraining loop: the loss falls on a random-token shard; a resumed run continues bit-identically.
#include <cstdio>

#include "data/synthetic_tokens.h"
#include "data/token_shard.h"
#include "model/pretrain.h"
#include "test/test_support.h"

namespace {
PretrainOptions tiny_run(const std::string& dir) {
    std::vector<uint16_t> tokens = synthetic_token_stream(20000, 64, 5);
    write_token_shard(dir + "/train_000.bin", std::vector<uint16_t>(tokens.begin(), tokens.begin() + 18000));
    write_token_shard(dir + "/val_000.bin", std::vector<uint16_t>(tokens.begin() + 18000, tokens.end()));
    PretrainOptions o;
    o.train_pattern = dir + "/train_*.bin";
    o.val_pattern = dir + "/val_*.bin";
    o.model_config = "2:32:4:64:32";
    o.out_dir = dir + "/out";
    o.device = "cpu";
    o.batch_size = 4, o.seq_len = 16;
    o.schedule.max_lr = 3e-3f;
    o.schedule.kind = "cosine";
    o.schedule.warmup_steps = 2;
    o.optimizer.weight_decay = 0.1f;
    o.val_batches = 2;
    o.quiet = true;
    return o;
}

double mean(const std::vector<float>& values, size_t begin, size_t end) {
    double total = 0;
    for (size_t i = begin; i < end; i++) total += values[i];
    return total / (end - begin);
}
}  // namespace

TEST_CASE("pretrain: the loss falls on a random-token shard") {
    PretrainOptions o = tiny_run(make_temp_dir("pretrain_falls"));
    o.steps = 80;
    o.val_every = 40;
    PretrainResult result = run_pretrain(o);
    REQUIRE(result.train_losses.size() == 80);
    double start = mean(result.train_losses, 0, 5), end = mean(result.train_losses, 75, 80);
    INFO("first 5 steps " << start << ", last 5 steps " << end);
    CHECK(start > 3.9);        // about ln(64) = 4.16 at the random init
    CHECK(end < start - 1.0);  // the chain's successor structure has been learned
    REQUIRE(result.val_losses.size() == 2);
    CHECK(result.val_losses[1].second < result.val_losses[0].second);
    CHECK(result.val_losses[1].second < 3.0);
    CHECK(file_exists(checkpoint_path(o.out_dir, 80)));
    CHECK(file_exists(training_state_path(o.out_dir, 80)));
}

TEST_CASE("pretrain: a resumed run continues bit-identically") {
    const DataOrder order = GENERATE(DataOrder::random, DataOrder::sequential);
    PretrainOptions o = tiny_run(make_temp_dir(std::string("pretrain_resume_") + data_order_name(order)));
    o.data_order = order;
    o.steps = 12;
    o.checkpoint_every = 6;
    o.val_every = 0;
    PretrainResult straight = run_pretrain(o);
    REQUIRE(latest_checkpoint_step(o.out_dir) == 12);

    // forget the end of the run and continue from the checkpoint at step 6
    std::remove(checkpoint_path(o.out_dir, 12).c_str());
    std::remove(training_state_path(o.out_dir, 12).c_str());
    REQUIRE(latest_checkpoint_step(o.out_dir) == 6);
    o.start = StartMode::resume;
    PretrainResult resumed = run_pretrain(o);
    REQUIRE(resumed.first_step == 7);
    REQUIRE(resumed.train_losses.size() == 6);
    for (int i = 0; i < 6; i++) {
        INFO("step " << 7 + i);
        CHECK(resumed.train_losses[i] == straight.train_losses[6 + i]);  // bit-identical, not approximately
    }
    CHECK(resumed.final_parameters == straight.final_parameters);
}

TEST_CASE("pretrain: bad input fails with a clear error") {
    std::string dir = make_temp_dir("pretrain_errors");
    PretrainOptions o = tiny_run(dir);
    o.steps = 2;

    PretrainOptions no_checkpoint = o;
    no_checkpoint.start = StartMode::resume;
    CHECK_THROWS_WITH(run_pretrain(no_checkpoint), Catch::Contains("holds no run to resume"));

    PretrainOptions too_long = o;
    too_long.seq_len = 33;
    CHECK_THROWS_WITH(run_pretrain(too_long), Catch::Contains("exceeds the model's max_seq_len 32"));

    PretrainOptions no_files = o;
    no_files.train_pattern = dir + "/nothing_*.bin";
    CHECK_THROWS_WITH(run_pretrain(no_files), Catch::Contains("no file matches"));

    // a shard with a token outside the model's vocabulary (64) is refused before any training
    write_token_shard(dir + "/bad_000.bin", std::vector<uint16_t>(200, 64));
    PretrainOptions bad_tokens = o;
    bad_tokens.train_pattern = dir + "/bad_*.bin";
    CHECK_THROWS_WITH(run_pretrain(bad_tokens), Catch::Contains("bad_000.bin") && Catch::Contains("token id 64"));
}

TEST_CASE("pretrain: learning-rate schedules") {
    LearningRateSchedule s;
    s.kind = "cosine", s.max_lr = 1.0f, s.warmup_steps = 10, s.total_steps = 110, s.final_fraction = 0.1f;
    CHECK(s.at(1) == Approx(0.1));
    CHECK(s.at(10) == Approx(1.0));
    CHECK(s.at(60) == Approx(0.55));  // halfway through the decay: (1 + 0.1) / 2
    CHECK(s.at(110) == Approx(0.1));
    s.kind = "constant";
    CHECK(s.at(77) == 1.0f);
    s.kind = "linear";
    CHECK_THROWS_WITH(s.validate(), Catch::Contains("expected constant or cosine"));
}
