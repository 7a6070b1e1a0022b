// A learnable random token stream, for the built-in default run and the tests: a random bigram chain
// where each token is followed by its own fixed successor with probability 0.75, else by a uniform token.
// A model's loss starts near ln(V) and falls towards the chain's entropy (about 0.6 + 0.25 ln V nats).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

std::vector<uint16_t> synthetic_token_stream(size_t count, int vocab_size, uint64_t seed);
