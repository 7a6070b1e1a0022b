// The one warp sum (and warp max) of every CUDA kernel, and order-fixed block sums in double for the deterministic
// reductions (no atomics). Every lane of a warp gets the same butterfly result (a + b == b + a exactly at each
// step, and max is symmetric), and a block sums its warps' totals in warp order. The same inputs on the same launch
// shape give bit-identical results run to run.
#pragma once

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
