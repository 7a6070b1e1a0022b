// The walkthrough programs' inputs: count deterministic values in [-1, 1) from a seed (a linear congruential
// generator), the same on every machine, so each program checks the same numbers every run.
#pragma once
#include <vector>

inline std::vector<double> values(size_t count, unsigned seed) {
    std::vector<double> v(count);
    unsigned state = seed * 2654435761u + 1;
    for (double& x : v) {
        state = state * 1664525u + 1013904223u;
        x = double(state >> 8) / double(1u << 23) - 1.0;
    }
    return v;
}
