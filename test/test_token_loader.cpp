// The pretraining loader's two orders (data/token_loader.h): sequential windows (llm.c's order) and rows at seeded
// random offsets across every shard; the random stream's determinism, its resume position and its rank slices.
#include <set>

#include "data/token_loader.h"
#include "data/token_shard.h"
#include "model/pretrain.h"
#include "test/test_support.h"

namespace {
// Two shards whose tokens tell where they come from: shard s holds s * 1000 + i % 1000 at position i.
std::string two_shards(const std::string& name) {
    const std::string dir = make_temp_dir(name);
    for (int s = 0; s < 2; s++) {
        std::vector<uint16_t> tokens(3000 + 1000 * s);
        for (size_t i = 0; i < tokens.size(); i++) tokens[i] = uint16_t(s * 1000 + i % 1000);
        write_token_shard(dir + "/train_00" + std::to_string(s) + ".bin", tokens);
    }
    return dir + "/train_*.bin";
}
constexpr int VOCAB = 2000, B = 4, T = 8;
}  // namespace

TEST_CASE("token loader: sequential order reads consecutive windows (llm.c's order)") {
    TokenLoader loader(two_shards("loader_sequential"), B, T, VOCAB);
    loader.next_batch();
    for (int i = 0; i < B * T; i++) {
        CHECK(loader.inputs[i] == i);
        CHECK(loader.targets[i] == i + 1);
    }
    CHECK(loader.position == B * T);
}

TEST_CASE("token loader: random order mixes every shard, deterministically for a seed") {
    const std::string shards = two_shards("loader_random");
    TokenLoader a(shards, B, T, VOCAB), b(shards, B, T, VOCAB), other(shards, B, T, VOCAB);
    a.use_random_order(7), b.use_random_order(7), other.use_random_order(8);
    std::set<int> shards_seen, row_starts;
    bool differs = false;
    for (int batch = 0; batch < 20; batch++) {
        a.next_batch(), b.next_batch(), other.next_batch();
        CHECK(a.inputs == b.inputs);  // the same seed, the same rows
        differs = differs || a.inputs != other.inputs;
        for (int r = 0; r < B; r++) {
            const int* row = a.inputs.data() + r * T;
            for (int t = 0; t + 1 < T; t++) CHECK(row[t + 1] % 1000 == (row[t] + 1) % 1000);  // T + 1 contiguous tokens
            CHECK(a.targets[r * T + T - 1] % 1000 == (row[T - 1] + 1) % 1000);
            CHECK(row[0] / 1000 == row[T - 1] / 1000);  // a row never crosses from one shard into the next
            shards_seen.insert(row[0] / 1000);
            row_starts.insert(row[0]);
        }
    }
    CHECK(differs);                          // another seed, other rows
    CHECK(shards_seen == std::set<int>({0, 1}));
    CHECK(row_starts.size() > 60);           // 80 rows from ~2000 distinct starts: hardly any repeat
    // the rows of one batch are not one window cut in B pieces (the sequential order's rows)
    TokenLoader c(shards, B, T, VOCAB);
    c.use_random_order(7);
    c.next_batch();
    bool consecutive = true;
    for (int r = 0; r + 1 < B; r++) consecutive = consecutive && c.inputs[(r + 1) * T] == c.inputs[r * T] + T;
    CHECK_FALSE(consecutive);
    CHECK(c.batches_drawn == 1);
}

TEST_CASE("token loader: a random stream resumed at batch k continues with batch k + 1") {
    const std::string shards = two_shards("loader_resume");
    TokenLoader straight(shards, B, T, VOCAB), resumed(shards, B, T, VOCAB);
    straight.use_random_order(3), resumed.use_random_order(3);
    for (int batch = 0; batch < 5; batch++) straight.next_batch();
    resumed.seek_batch(4);
    resumed.next_batch();
    CHECK(resumed.inputs == straight.inputs);
    CHECK(resumed.batches_drawn == 5);
    resumed.reset();
    CHECK(resumed.batches_drawn == 0);
    CHECK_THROWS_WITH(resumed.seek_batch(-1), Catch::Contains("negative"));
}

TEST_CASE("token loader: in random order the ranks' rows are disjoint slices of the global batch") {
    const std::string shards = two_shards("loader_ranks");
    TokenLoader whole(shards, B, T, VOCAB), first(shards, B, T, VOCAB), second(shards, B, T, VOCAB);
    for (TokenLoader* loader : {&whole, &first, &second}) loader->use_random_order(11);
    first.keep_rank_rows(0, 2);
    second.keep_rank_rows(1, 2);
    for (int batch = 0; batch < 3; batch++) {
        whole.next_batch(), first.next_batch(), second.next_batch();
        std::vector<int> joined = first.inputs;
        joined.insert(joined.end(), second.inputs.begin(), second.inputs.end());
        CHECK(joined == whole.inputs);
        CHECK(first.inputs != second.inputs);
    }
}

TEST_CASE("pretrain: the data order is part of the run and of its state") {
    const std::string dir = make_temp_dir("pretrain_data_order");
    const std::string shards = two_shards("pretrain_data_order_shards");
    PretrainOptions o;
    o.train_pattern = shards;
    o.model_config = "1:16:2:2000:8";
    o.out_dir = dir + "/out";
    o.device = "cpu";
    o.batch_size = B, o.seq_len = T;
    o.steps = 4;
    o.checkpoint_every = 2;
    o.val_every = 0;
    o.quiet = true;
    PretrainResult random = run_pretrain(o);
    PretrainOptions sequential = o;
    sequential.out_dir = dir + "/sequential";
    sequential.data_order = DataOrder::sequential;
    PretrainResult in_order = run_pretrain(sequential);
    CHECK(random.train_losses != in_order.train_losses);  // other rows, other losses

    // a run cannot resume in the other order: its run.json names the difference
    std::remove(checkpoint_path(o.out_dir, 4).c_str());
    std::remove(training_state_path(o.out_dir, 4).c_str());
    PretrainOptions switched = sequential;
    switched.out_dir = o.out_dir;
    switched.start = StartMode::resume;
    CHECK_THROWS_WITH(run_pretrain(switched), Catch::Contains("data-order"));
    PretrainOptions resumed = o;
    resumed.start = StartMode::resume;
    CHECK(run_pretrain(resumed).final_parameters == random.final_parameters);
}
