#include "data/synthetic_tokens.h"

#include <algorithm>
#include <numeric>

#include "data/random.h"

std::vector<uint16_t> synthetic_token_stream(size_t count, int vocab_size, uint64_t seed) {
    Random random(seed);
    std::vector<uint16_t> successor(vocab_size);
    std::iota(successor.begin(), successor.end(), 0);
    for (int i = vocab_size - 1; i > 0; i--) std::swap(successor[i], successor[random.below(i + 1)]);
    std::vector<uint16_t> tokens(count);
    uint16_t token = 0;
    for (size_t i = 0; i < count; i++) {
        token = random.uniform() < 0.75 ? successor[token] : uint16_t(random.below(vocab_size));
        tokens[i] = token;
    }
    return tokens;
}
