// Fused classifier: softmax + cross-entropy + dlogits over each row of logits, the CUDA version of
// model/cpu/classifier.h. The probabilities are never stored: one block per row i of logits (N,Vp)
//   pass 1: each thread keeps a running (max, sum of exp) over its columns v < V (online softmax); the pairs are
//           merged across the block in a fixed order (warp shuffles, then one warp over the warps' results);
//           losses[i] = log(sum) + max - z[target];
//   pass 2 (when dlogits is not null): dlogits[i, v] = (exp(z[v] - max) / sum - [v == target]) * weights[i] /
//           weight_sum for v < V, 0 for the padded columns V <= v < Vp.
// dlogits may be logits itself (the model overwrites the logits with their gradient): every read of pass 1 and the
// target's logit come before block_reduce synchronises the block, and pass 2 reads each element before the same
// thread writes it.
// Rows are read as float4 when Vp % 4 == 0 and the buffers are 16-byte aligned (Vp is a multiple of 128 in
// practice), else one float at a time. Deterministic: no atomics, fixed reduction order.
// This is version 2 of dev/cuda/classifier.cu.
#include <algorithm>
#include <cstdint>

#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace {

constexpr int MAX_THREADS = 1024;

// A running softmax normaliser: sum of exp(x - max) over the values seen so far.
struct MaxSum {
    float max;
    float sum;
};

__device__ void accumulate(MaxSum& a, float x) {
    if (x > a.max) {
        a.sum = a.sum * expf(a.max - x) + 1.0f;  // expf(-inf) = 0 when nothing was seen yet
        a.max = x;
    } else {
        a.sum += expf(x - a.max);
    }
}

__device__ MaxSum merge(MaxSum a, MaxSum b) {
    MaxSum merged;
    merged.max = fmaxf(a.max, b.max);
    // an empty pair (sum 0, max -inf) contributes nothing; testing the sum avoids expf(-inf - -inf) = NaN
    merged.sum = (a.sum > 0.0f ? a.sum * expf(a.max - merged.max) : 0.0f) +
                 (b.sum > 0.0f ? b.sum * expf(b.max - merged.max) : 0.0f);
    return merged;
}

// One block per row. VECTOR: Vp % 4 == 0 and logits, dlogits 16-byte aligned.
// losses (N) or null; dlogits (N,Vp) or null, possibly logits; logits (N,Vp); targets (N); weights (N).
template <bool VECTOR>
__global__ void __launch_bounds__(MAX_THREADS)
    fused_classifier_kernel(float* __restrict__ losses, float* dlogits, const float* logits,
                            const int* __restrict__ targets, const float* __restrict__ weights, double weight_sum,
                            int V, int Vp) {
    const int row = blockIdx.x;
    const float* z = logits + size_t(row) * Vp;
    const int target = targets[row];
    const float target_logit = threadIdx.x == 0 ? z[target] : 0.0f;  // before any thread writes the row

    // pass 1: max and sum of exp over the real vocabulary
    MaxSum thread_pair{-INFINITY, 0.0f};
    int scalar_start = 0;
    if (VECTOR) {
        const float4* z4 = reinterpret_cast<const float4*>(z);
        const int full = V / 4;  // float4s entirely inside [0, V)
        for (int i = threadIdx.x; i < full; i += blockDim.x) {
            float4 x = z4[i];
            accumulate(thread_pair, x.x);
            accumulate(thread_pair, x.y);
            accumulate(thread_pair, x.z);
            accumulate(thread_pair, x.w);
        }
        scalar_start = full * 4;
    }
    for (int v = scalar_start + threadIdx.x; v < V; v += blockDim.x) accumulate(thread_pair, z[v]);
    const MaxSum row_pair = block_reduce(thread_pair, MaxSum{-INFINITY, 0.0f}, merge);

    if (losses && threadIdx.x == 0) losses[row] = logf(row_pair.sum) + row_pair.max - target_logit;
    if (!dlogits) return;

    // pass 2: dlogits = (softmax - onehot(target)) * weights[row] / weight_sum, padded columns 0
    const float scale = weight_sum > 0.0 ? float(double(weights[row]) / weight_sum) : 0.0f;
    const float inverse_sum = 1.0f / row_pair.sum;
    float* dz = dlogits + size_t(row) * Vp;
    auto gradient = [&](float x, int v) {
        return v < V ? (expf(x - row_pair.max) * inverse_sum - (v == target ? 1.0f : 0.0f)) * scale : 0.0f;
    };
    if (VECTOR) {
        const float4* z4 = reinterpret_cast<const float4*>(z);
        float4* dz4 = reinterpret_cast<float4*>(dz);
        for (int i = threadIdx.x; i < Vp / 4; i += blockDim.x) {
            float4 x = __ldcs(z4 + i);  // the last read of this row: stream it
            const int v = 4 * i;
            float4 d = make_float4(gradient(x.x, v), gradient(x.y, v + 1), gradient(x.z, v + 2), gradient(x.w, v + 3));
            __stcs(dz4 + i, d);
        }
    } else {
        for (int v = threadIdx.x; v < Vp; v += blockDim.x) dz[v] = gradient(__ldcs(z + v), v);
    }
}

}  // namespace

namespace cuda {

void fused_classifier(float* losses, float* dlogits, const float* logits, const int* targets, const float* weights,
                      double weight_sum, int N, int V, int Vp) {
    if (N <= 0 || (!losses && !dlogits)) return;
    auto aligned = [](const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; };
    const bool vector = Vp % 4 == 0 && aligned(logits) && (!dlogits || aligned(dlogits));
    // enough threads for one pass over a row (a whole number of warps), at most MAX_THREADS
    const int per_thread = vector ? 4 : 1;
    const int threads = std::min(MAX_THREADS, std::max(32, ceil_div(ceil_div(Vp, per_thread), 32) * 32));
    if (vector)
        fused_classifier_kernel<true><<<N, threads>>>(losses, dlogits, logits, targets, weights, weight_sum, V, Vp);
    else
        fused_classifier_kernel<false><<<N, threads>>>(losses, dlogits, logits, targets, weights, weight_sum, V, Vp);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
