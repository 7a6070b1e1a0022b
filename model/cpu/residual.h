// Residual connection: out = a + b.
#pragma once
#include <cstddef>

namespace cpu {

template <typename T>
void residual_forward(T* out, const T* a, const T* b, size_t N) {
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

// Accumulates the same gradient into both inputs.
template <typename T>
void residual_backward(T* da, T* db, const T* dout, size_t N) {
    for (size_t i = 0; i < N; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

}  // namespace cpu
