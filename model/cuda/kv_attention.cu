// One step of causal multi-head attention with a KV cache (greedy decoding), the CUDA version of
// model/cpu/kv_attention.h: the token at `position` of each of B sequences arrives as its packed qkv row (B,3C);
// its key and value are written into row `position` of the caches (B,max_T,C), and its query attends over the
// cached positions 0..position.
// One block per (head h, sequence b), THREADS threads; dynamic shared memory holds q (hs), the scores
// (position + 1) and the partial outputs (groups x hs):
//   1. q -> shared; k, v -> cache row `position` (this head's hs channels);
//   2. scores s_j = q . k_j / sqrt(hs): one warp per position j (lanes over the channels, shuffle sum);
//   3. softmax: block max, s_j <- exp(s_j - max) in place, block sum;
//   4. out = sum_j s_j v_j / sum: the threads form `groups` groups of hs lanes (one channel each), group g
//      summing the positions j = g, g + groups, ...; the groups' partials are then added in order.
// Positions are limited only by shared memory (4 bytes a position: 48 KiB by default, more opted in on demand).
// Deterministic: no atomics, every reduction in a fixed order. Lab: dev/cuda/kv_attention.cu.
#include <algorithm>
#include <cmath>
#include <string>

#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace {

constexpr int THREADS = 256;  // a multiple of 32

// The block's max (MAX) or sum of value, returned to every thread. Each warp reduces the warps' results itself, in
// the same order, so no broadcast is needed. Starts with a barrier: the partials of a previous call may still be
// being read.
template <bool MAX>
__device__ float block_reduce(float value) {
    __shared__ float partials[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    value = MAX ? warp_max(value) : warp_sum(value);
    __syncthreads();
    if (lane == 0) partials[warp] = value;
    __syncthreads();
    value = lane < warps ? partials[lane] : (MAX ? -INFINITY : 0.0f);
    return MAX ? warp_max(value) : warp_sum(value);
}

// The threads' layout for the weighted sum of values: `groups` groups of `lanes` threads, lane d covering the
// channels d, d + lanes, ... (lanes = hs when hs <= THREADS).
struct ValueLayout {
    int lanes, groups;
    __host__ __device__ ValueLayout(int hs) : lanes(hs < THREADS ? hs : THREADS), groups(THREADS / lanes) {}
};

// grid (NH, B), THREADS threads. out (B,C); key_cache, value_cache (B,max_T,C); qkv (B,3C).
// The caches are written and read in the same kernel, so they are neither const nor __restrict__ (no read
// through the non-coherent cache); __syncthreads makes the block's own global writes visible to it.
__global__ void __launch_bounds__(THREADS)
    attention_step_kernel(float* __restrict__ out, float* key_cache, float* value_cache, const float* __restrict__ qkv,
                          int position, int C, int NH, int max_T, float scale) {
    extern __shared__ float shared[];
    const int h = blockIdx.x, b = blockIdx.y, hs = C / NH, length = position + 1;
    const ValueLayout layout(hs);
    float* q = shared;                // (hs)
    float* scores = q + hs;           // (length)
    float* partial = scores + length; // (groups, hs)
    const float* row = qkv + size_t(b) * 3 * C + h * hs;
    float* keys = key_cache + size_t(b) * max_T * C + h * hs;  // row j at keys + j * C
    float* values = value_cache + size_t(b) * max_T * C + h * hs;

    // 1. the query to shared memory, the new key and value into the caches
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        q[d] = row[d];
        keys[size_t(position) * C + d] = row[C + d];
        values[size_t(position) * C + d] = row[2 * C + d];
    }
    __syncthreads();

    // 2. the scaled scores, one warp per position
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int j = warp; j < length; j += warps) {
        const float* k = keys + size_t(j) * C;
        float dot = 0.0f;
        for (int d = lane; d < hs; d += 32) dot += q[d] * k[d];
        dot = warp_sum(dot);
        if (lane == 0) scores[j] = dot * scale;
    }
    __syncthreads();

    // 3. softmax numerators in place, and their sum (block_reduce's barriers order the writes before the reads)
    float max_score = -INFINITY;
    for (int j = threadIdx.x; j < length; j += blockDim.x) max_score = fmaxf(max_score, scores[j]);
    max_score = block_reduce<true>(max_score);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < length; j += blockDim.x) {
        const float e = expf(scores[j] - max_score);
        scores[j] = e;
        sum += e;
    }
    sum = block_reduce<false>(sum);

    // 4. the weighted sum of the values: per group over its positions, then over the groups in order
    const int group = threadIdx.x / layout.lanes;
    if (group < layout.groups)
        for (int d = threadIdx.x % layout.lanes; d < hs; d += layout.lanes) {
            float acc = 0.0f;
            for (int j = group; j < length; j += layout.groups) acc += scores[j] * values[size_t(j) * C + d];
            partial[group * hs + d] = acc;
        }
    __syncthreads();
    const float inverse_sum = 1.0f / sum;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int g = 0; g < layout.groups; g++) acc += partial[g * hs + d];
        out[size_t(b) * C + h * hs + d] = acc * inverse_sum;
    }
}

}  // namespace

namespace cuda {

void attention_step_forward(float* out, float* key_cache, float* value_cache, const float* qkv, int position, int B,
                            int C, int NH, int max_T) {
    if (position < 0 || position >= max_T)
        fail("attention step: position " + std::to_string(position) + " is outside the cache of " +
             std::to_string(max_T) + " positions");
    if (B == 0) return;
    const int hs = C / NH;
    const ValueLayout layout(hs);
    const size_t shared_bytes = (size_t(hs) + size_t(position) + 1 + size_t(layout.groups) * hs) * sizeof(float);
    if (shared_bytes > 48 * 1024)  // beyond the default limit: opt in (fails, checked, past the device's maximum)
        CUDA_CHECK(cudaFuncSetAttribute(attention_step_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(shared_bytes)));
    attention_step_kernel<<<dim3(NH, B), THREADS, shared_bytes>>>(out, key_cache, value_cache, qkv, position, C, NH,
                                                                  max_T, 1.0f / std::sqrt(float(hs)));
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
