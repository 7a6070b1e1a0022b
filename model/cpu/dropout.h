// Inverted dropout's mask: mask[i] = 1/(1-p) where element i is kept, 0 where it is dropped, so that
// inp .* mask has the expectation of inp. Whether element i is kept is a counter-based hash of (seed, i)
// (model/dropout_hash.h), shared with the CUDA kernel (model/cuda/dropout.cu): for T = float both give
// bit-identical masks.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/file_io.h"
#include "model/dropout_hash.h"

namespace cpu {

// p outside [0, 1) (or NaN) fails naming it.
inline void check_dropout_probability(float p) {
    if (!(p >= 0.0f && p < 1.0f)) fail("dropout: probability " + std::to_string(p) + " is outside [0, 1)");
}

// mask (count): 1/(1-p) (computed in T) where u(seed, first + i) >= p, else 0. p = 0: all ones. first: the
// mask's offset in a larger one (a data-parallel rank's rows of the global batch's mask).
template <typename T>
void dropout_mask(T* mask, size_t count, uint64_t seed, float p, uint64_t first = 0) {
    check_dropout_probability(p);
    const T keep_value = T(1) / (T(1) - T(p));
    for (size_t i = 0; i < count; i++) mask[i] = dropout_keep(seed, first + i, p) ? keep_value : T(0);
}

}  // namespace cpu
