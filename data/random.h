// A small, portable random number generator (splitmix64): the same stream on every compiler and machine,
// and a state of one integer that checkpoints can save.
#pragma once
#include <cmath>
#include <cstdint>

struct Random {
    uint64_t state;
    explicit Random(uint64_t seed) : state(seed) {}

    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    uint32_t below(uint32_t n) { return uint32_t(uniform() * n); }                  // [0, n)
    double normal() {  // Box-Muller, one value per call
        double u1 = 1.0 - uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    }
};
