// The one warp sum (and warp max) of every CUDA kernel, the warp and block reductions of small structs (a (max, sum)
// pair, a (value, index) pair), and order-fixed block sums in double for the deterministic reductions (no atomics).
// Every lane of a warp gets the same butterfly result (a + b == b + a exactly at each step, and max is symmetric),
// and a block reduces its warps' results in warp order. The same inputs on the same launch shape give bit-identical
// results run to run.
#pragma once

#include <cstring>

constexpr int kReduceWarpSize = 32;

// Sum over the 32 lanes of a full warp, in float or double; every lane ends with the same value.
template <typename T>
__device__ inline T warp_sum(T value) {
    for (int offset = kReduceWarpSize / 2; offset > 0; offset >>= 1)
        value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

// Max over the 32 lanes of a full warp; every lane ends with the same value.
__device__ inline float warp_max(float value) {
    for (int offset = kReduceWarpSize / 2; offset > 0; offset >>= 1)
        value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
    return value;
}

// Sum over a block of Threads threads (a multiple of 32, at most 1024): warp sums, then warp 0 sums the warp
// totals. The result is valid in thread 0.
template <int Threads>
__device__ inline double block_sum(double value) {
    static_assert(Threads % kReduceWarpSize == 0 && Threads <= 1024, "block_sum: whole warps, at most 1024 threads");
    __shared__ double warp_totals[Threads / kReduceWarpSize];
    const int warp = threadIdx.x / kReduceWarpSize, lane = threadIdx.x % kReduceWarpSize;
    value = warp_sum(value);
    if (lane == 0) warp_totals[warp] = value;
    __syncthreads();
    double total = 0.0;
    if (warp == 0) total = warp_sum(lane < Threads / kReduceWarpSize ? warp_totals[lane] : 0.0);
    return total;
}

// Another lane's copy of a plain struct of 32-bit words (lane ^ offset's): __shfl_xor_sync word by word.
template <typename T>
__device__ inline T shuffle_xor(T value, int offset) {
    static_assert(sizeof(T) % sizeof(int) == 0, "shuffle_xor: a struct of 32-bit words");
    int words[sizeof(T) / sizeof(int)];
    memcpy(words, &value, sizeof(T));
    for (int& word : words) word = __shfl_xor_sync(0xffffffffu, word, offset);
    memcpy(&value, words, sizeof(T));
    return value;
}

// combine over the 32 lanes of a full warp, for a symmetric combine (combine(a, b) == combine(b, a) exactly); every
// lane ends with the same value.
template <typename T, typename Combine>
__device__ inline T warp_reduce(T value, Combine combine) {
    for (int offset = kReduceWarpSize / 2; offset > 0; offset >>= 1) value = combine(value, shuffle_xor(value, offset));
    return value;
}

// combine over a block (blockDim.x a multiple of 32, at most 1024): warp reductions, then warp 0 reduces the warps'
// results in warp order (identity pads its extra lanes: combine(x, identity) == x). Every thread gets the result.
template <typename T, typename Combine>
__device__ inline T block_reduce(T value, T identity, Combine combine) {
    __shared__ T warp_results[32];
    __shared__ T result;
    const int warp = threadIdx.x / kReduceWarpSize, lane = threadIdx.x % kReduceWarpSize;
    value = warp_reduce(value, combine);
    if (lane == 0) warp_results[warp] = value;
    __syncthreads();
    if (warp == 0) {
        value = warp_reduce(lane < int(blockDim.x) / kReduceWarpSize ? warp_results[lane] : identity, combine);
        if (lane == 0) result = value;
    }
    __syncthreads();
    return result;
}
