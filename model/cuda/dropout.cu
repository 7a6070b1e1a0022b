// Inverted dropout's mask on the GPU, the CUDA version of model/cpu/dropout.h: mask[i] = 1/(1-p) where
// u(seed, i) >= p, else 0, with u the counter-based hash of model/dropout_hash.h (shared with the CPU reference,
// so the masks are bit-identical; 1/(1-p) is computed on the host, in float, as the CPU's T = float does).
// One thread per element; deterministic by construction.
#include <string>

#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/dropout_hash.h"

namespace {

constexpr int THREADS = 256;

// mask (count)
__global__ void dropout_mask_kernel(float* __restrict__ mask, size_t count, uint64_t seed, float p,
                                    float keep_value, uint64_t first) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) mask[i] = dropout_keep(seed, first + i, p) ? keep_value : 0.0f;
}

}  // namespace

namespace cuda {

void dropout_mask(float* mask, size_t count, uint64_t seed, float p, uint64_t first) {
    if (!(p >= 0.0f && p < 1.0f)) fail("dropout: probability " + std::to_string(p) + " is outside [0, 1)");
    if (count == 0) return;
    const float keep_value = 1.0f / (1.0f - p);
    dropout_mask_kernel<<<ceil_div(count, THREADS), THREADS>>>(mask, count, seed, p, keep_value, first);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
