// Greedy decoding's choice on the GPU, the CUDA version of model/cpu/argmax.h: out (N) = the index of the largest
// of the first V logits of each row of logits (N,Vp), ties to the lowest index, padded columns ignored.
// One block per row: each thread scans its columns v = thread, thread + THREADS, ... keeping the first largest
// (strictly larger replaces), then the (value, index) pairs are merged across the block in a fixed order (warp
// shuffles, then one warp over the warps' results), the larger value winning and, on equal values, the lower
// index. Deterministic. (NaN logits: which index comes back is unspecified.)
#include <climits>
#include <cmath>
#include <string>

#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace {

constexpr int THREADS = 1024;

struct Best {
    float value;
    int index;
};

// The better of a and b: the larger value; on a tie, the lower index. An empty pair is (-inf, INT_MAX): any
// column beats or ties it with a lower index.
__device__ Best better(Best a, Best b) {
    return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

// out (N); logits (N,Vp). grid N, THREADS threads.
__global__ void __launch_bounds__(THREADS)
    argmax_kernel(int* __restrict__ out, const float* __restrict__ logits, int V, int Vp) {
    const float* z = logits + size_t(blockIdx.x) * Vp;
    Best best{-INFINITY, INT_MAX};
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = z[v];
        if (x > best.value || best.index == INT_MAX) best = Best{x, v};  // the first column always counts
    }
    best = block_reduce(best, Best{-INFINITY, INT_MAX}, better);
    if (threadIdx.x == 0) out[blockIdx.x] = best.index;
}

}  // namespace

namespace cuda {

void argmax_rows(int* out, const float* logits, int N, int V, int Vp) {
    if (N < 0 || V < 1 || V > Vp)
        fail("argmax: bad shape N=" + std::to_string(N) + " V=" + std::to_string(V) + " Vp=" + std::to_string(Vp));
    if (N == 0) return;
    argmax_kernel<<<N, THREADS>>>(out, logits, V, Vp);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
