#include "data/replay_buffer.h"

#include <algorithm>
#include <numeric>

ReplayBuffer::ReplayBuffer(size_t capacity, uint64_t seed) : capacity_(capacity), random_(seed) {
    items_.reserve(std::min<size_t>(capacity, 1 << 16));
}

void ReplayBuffer::offer(const EncodedExample& example) {
    const uint64_t i = seen_++;
    if (i < capacity_) {
        items_.push_back(example);
        return;
    }
    // j uniform in 0..i; 53 random bits are plenty for any stream length we will see.
    const uint64_t j = std::min<uint64_t>(uint64_t(random_.uniform() * double(i + 1)), i);
    if (j < capacity_) items_[j] = example;
}

std::vector<const EncodedExample*> ReplayBuffer::sample(int count, Random& random) const {
    std::vector<const EncodedExample*> drawn;
    if (count <= 0 || items_.empty()) return drawn;
    drawn.reserve(size_t(count));
    std::vector<size_t> slots(items_.size());
    while (drawn.size() < size_t(count)) {
        // A partial Fisher-Yates shuffle: the first `take` entries become a uniform random subset in random order.
        std::iota(slots.begin(), slots.end(), size_t(0));
        const size_t take = std::min(slots.size(), size_t(count) - drawn.size());
        for (size_t k = 0; k < take; k++) {
            std::swap(slots[k], slots[k + random.below(uint32_t(slots.size() - k))]);
            drawn.push_back(&items_[slots[k]]);
        }
    }
    return drawn;
}
