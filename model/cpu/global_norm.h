// Global gradient norm, for clipping: sqrt of the sum of squares over every trained tensor.
#pragma once
#include <cstddef>

namespace cpu {

// Returns sum_i x_i^2 in double, in a fixed order (deterministic).
template <typename T>
double sum_of_squares(const T* x, size_t N) {
    double total = 0;
    for (size_t i = 0; i < N; i++) total += double(x[i]) * double(x[i]);
    return total;
}

}  // namespace cpu
