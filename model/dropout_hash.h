// The dropout mask's random numbers, shared by the CPU reference (model/cpu/dropout.h) and the CUDA kernel
// (model/cuda/dropout.cu) so that both give bit-identical masks. Counter-based: element i's number depends only
// on (seed, i), so any element can be computed by any thread, in any order, and the mask of a given seed is the
// same whatever the launch shape or backend.
//   u(seed, i) = top 24 bits of splitmix64(seed ^ splitmix64(i)), / 2^24: a float in [0, 1), exactly representable,
//   so the comparison u >= p is the same on host and device.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define DROPOUT_HOST_DEVICE __host__ __device__
#else
#define DROPOUT_HOST_DEVICE
#endif

// splitmix64's output function (the finaliser of data/random.h's Random::next, including its increment).
DROPOUT_HOST_DEVICE inline uint64_t dropout_splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// u(seed, i) in [0, 1): a multiple of 2^-24.
DROPOUT_HOST_DEVICE inline float dropout_uniform(uint64_t seed, uint64_t i) {
    return float(uint32_t(dropout_splitmix64(seed ^ dropout_splitmix64(i)) >> 40)) * (1.0f / 16777216.0f);
}

// Element i is kept (scaled by 1/(1-p)) iff u(seed, i) >= p; dropped (0) otherwise. p = 0 keeps everything.
DROPOUT_HOST_DEVICE inline bool dropout_keep(uint64_t seed, uint64_t i, float p) {
    return dropout_uniform(seed, i) >= p;
}

#undef DROPOUT_HOST_DEVICE
