// The reservoir replay buffer of Replay and I-LoRA (data/replay_buffer.h): its sizes, determinism, sampling without
// replacement and, statistically, algorithm R's uniform retention.
#include <cmath>
#include <map>
#include <set>

#include "data/replay_buffer.h"
#include "test/test_support.h"

namespace {

// A one-token example whose prompt names it: item i's prompt is {i}.
EncodedExample item(int i) {
    EncodedExample e;
    e.prompt = {i};
    e.answer = {256};
    return e;
}

}  // namespace

TEST_CASE("replay buffer: the reservoir holds min(seen, capacity) examples and samples without replacement",
          "[cl_data]") {
    ReplayBuffer buffer(10, 3);
    CHECK(buffer.capacity() == 10);
    for (int i = 0; i < 7; i++) buffer.offer(item(i));
    CHECK(buffer.size() == 7);
    CHECK(buffer.seen() == 7);
    for (int i = 0; i < 7; i++) CHECK(buffer.items()[size_t(i)].prompt[0] == i);  // the first capacity fill in order
    for (int i = 7; i < 100; i++) buffer.offer(item(i));
    CHECK(buffer.size() == 10);
    CHECK(buffer.seen() == 100);
    std::set<int> held;
    for (const EncodedExample& e : buffer.items()) held.insert(e.prompt[0]);
    CHECK(held.size() == 10);

    // Deterministic given the seed and the offers.
    ReplayBuffer same(10, 3);
    for (int i = 0; i < 100; i++) same.offer(item(i));
    for (size_t k = 0; k < 10; k++) CHECK(same.items()[k].prompt == buffer.items()[k].prompt);

    // Without replacement: a sample of size() is a permutation of the buffer; larger samples cycle through it.
    Random random(5);
    std::vector<const EncodedExample*> all = buffer.sample(10, random);
    REQUIRE(all.size() == 10);
    CHECK(std::set<const EncodedExample*>(all.begin(), all.end()).size() == 10);
    std::vector<const EncodedExample*> four = buffer.sample(4, random);
    CHECK(std::set<const EncodedExample*>(four.begin(), four.end()).size() == 4);
    std::vector<const EncodedExample*> many = buffer.sample(25, random);
    REQUIRE(many.size() == 25);
    std::map<const EncodedExample*, int> counts;
    for (const EncodedExample* e : many) counts[e]++;
    CHECK(counts.size() == 10);
    for (auto [e, count] : counts) CHECK((count == 2 || count == 3));
    CHECK(buffer.sample(0, random).empty());
    CHECK(ReplayBuffer(10, 1).sample(4, random).empty());

    ReplayBuffer none(0, 1);
    none.offer(item(1));
    CHECK(none.size() == 0);
    CHECK(none.seen() == 1);
}

TEST_CASE("replay buffer: the reservoir keeps every example of the stream with probability capacity / N",
          "[cl_data]") {
    // 2000 trials of a stream of N = 50 into a buffer of 10: each item's frequency is 0.2 with a standard deviation
    // of 0.009; 0.04 is 4.5 of those (a fixed seed makes the outcome reproducible in any case).
    const int trials = 2000, N = 50, capacity = 10;
    std::vector<int> kept(N, 0);
    for (int trial = 0; trial < trials; trial++) {
        ReplayBuffer buffer(capacity, uint64_t(trial) + 1000);
        for (int i = 0; i < N; i++) buffer.offer(item(i));
        REQUIRE(buffer.size() == size_t(capacity));
        for (const EncodedExample& e : buffer.items()) kept[size_t(e.prompt[0])]++;
    }
    for (int i = 0; i < N; i++) {
        INFO("item " << i << " kept in " << kept[size_t(i)] << " of " << trials << " trials");
        CHECK(std::abs(double(kept[size_t(i)]) / trials - 0.2) < 0.04);
    }
}
