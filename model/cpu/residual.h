// Residual connection: out = a + b; and x *= factor, for rescaling a gradient.
#pragma once
#include <cstddef>

#include "model/cpu/threads.h"

namespace cpu {

template <typename T>
void residual_forward(T* out, const T* a, const T* b, size_t N) {
    parallel_chunks(N, 64, [&](size_t first, size_t count) {
        for (size_t i = first; i < first + count; i++) out[i] = a[i] + b[i];
    });
}

template <typename T>
void scale(T* x, T factor, size_t N) {
    parallel_chunks(N, 64, [&](size_t first, size_t count) {
        for (size_t i = first; i < first + count; i++) x[i] *= factor;
    });
}

// Accumulates the same gradient into both inputs.
template <typename T>
void residual_backward(T* da, T* db, const T* dout, size_t N) {
    parallel_chunks(N, 64, [&](size_t first, size_t count) {
        for (size_t i = first; i < first + count; i++) {
            da[i] += dout[i];
            db[i] += dout[i];
        }
    });
}

}  // namespace cpu
