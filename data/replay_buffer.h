// The replay buffer of experience replay (lora/METHODS.md section 4): a reservoir over the whole stream
// of training examples (Vitter's algorithm R), so that after any number of examples every one of them is in the
// buffer with the same probability, capacity / seen, whichever task it came from.
//
// Algorithm R: the i-th example offered (0-based) fills slot i while i < capacity; after that it replaces slot
// j = uniform(0..i) when j < capacity and is dropped otherwise. The buffer holds copies of the examples. Its
// decisions depend only on its seed and the sequence of offers, so offering the same examples again to a buffer
// made with the same seed rebuilds it exactly (which is how a resumed run restores it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/cl_batches.h"
#include "data/random.h"

class ReplayBuffer {
public:
    explicit ReplayBuffer(size_t capacity = 500, uint64_t seed = 0);

    void offer(const EncodedExample& example);

    // count examples drawn uniformly without replacement (a random subset in random order); when count exceeds
    // size(), whole shuffled passes over the buffer follow one another, so every example appears count / size()
    // times, rounded down or up. Empty when the buffer is. The pointers stay valid until the next offer().
    std::vector<const EncodedExample*> sample(int count, Random& random) const;

    size_t size() const { return items_.size(); }  // min(seen, capacity)
    size_t capacity() const { return capacity_; }
    uint64_t seen() const { return seen_; }        // examples offered so far
    const std::vector<EncodedExample>& items() const { return items_; }  // the slots, in slot order

private:
    size_t capacity_;
    uint64_t seen_ = 0;
    Random random_;
    std::vector<EncodedExample> items_;
};
