// I-LoRA's elementwise kernels on the GPU (lora/METHODS.md section 8): the consistency loss between the
// fast and slow models' final hidden states, and the EMA of the slow adapter. Math as lora/cpu/consistency.h.
// Lab: dev/cuda/consistency.cu.
#include "lora/cuda/consistency_kernels.h"
#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"

namespace {

constexpr int kThreads = 256;          // elementwise kernels: one thread per element
constexpr int kRowThreads = 256;       // consistency: one block of 8 warps per row

// Block n handles row n: thread k visits channels c = k, k + 256, ...;
//   d = h_fast[n,c] - h_slow[n,c];  dh[n,c] = 2 w[n] d;  partial += d^2
// then row_losses[n] = w[n] * (the block's sum of the partials: warp shuffles, then warp 0 over the 8 warp sums).
__global__ void consistency_loss_kernel(float* __restrict__ dh, float* __restrict__ row_losses,
                                        const float* __restrict__ h_fast, const float* __restrict__ h_slow,
                                        const float* __restrict__ row_weights, int C) {
    __shared__ float warp_sums[kRowThreads / 32];
    const size_t row = size_t(blockIdx.x) * C;
    const float w = row_weights[blockIdx.x];
    const float two_w = 2.0f * w;
    float partial = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float d = h_fast[row + c] - h_slow[row + c];
        dh[row + c] = two_w * d;
        partial += d * d;
    }
    partial = warp_sum(partial);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warp_sums[warp] = partial;
    __syncthreads();
    if (warp == 0) {
        float total = lane < kRowThreads / 32 ? warp_sums[lane] : 0.0f;
        total = warp_sum(total);
        if (lane == 0) row_losses[blockIdx.x] = w * total;
    }
}

// slow[i] = lambda * slow[i] + (1 - lambda) * fast[i]
__global__ void ema_update_kernel(float* __restrict__ slow, const float* __restrict__ fast, size_t count, float keep,
                                  float take) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) slow[i] = keep * slow[i] + take * fast[i];
}

}  // namespace

namespace cuda {

void consistency_loss(float* dh, float* row_losses, const float* h_fast, const float* h_slow,
                      const float* row_weights, int N, int C) {
    if (N <= 0) return;
    consistency_loss_kernel<<<N, kRowThreads>>>(dh, row_losses, h_fast, h_slow, row_weights, C);
    CUDA_CHECK_LAUNCH();
}

void ema_update(float* slow, const float* fast, size_t count, float lambda) {
    if (count == 0) return;
    ema_update_kernel<<<ceil_div(count, kThreads), kThreads>>>(slow, fast, count, lambda, 1.0f - lambda);
    CUDA_CHECK_LAUNCH();
}

void copy_on_device(float* destination, const float* source, size_t count) {
    if (count == 0) return;
    CUDA_CHECK(cudaMemcpy(destination, source, count * sizeof(float), cudaMemcpyDeviceToDevice));
}

}  // namespace cuda
