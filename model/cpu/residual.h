// Residual connection: out = a + b; and x *= factor, for rescaling a gradient.
#pragma once
#include <cstddef>

namespace cpu {

template <typename T>
void residual_forward(T* out, const T* a, const T* b, size_t N) {
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

template <typename T>
void scale(T* x, T factor, size_t N) {
    for (size_t i = 0; i < N; i++) x[i] *= factor;
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
