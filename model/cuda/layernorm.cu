// Layer normalisation on the GPU: forward (one warp per row), the fused residual + layernorm forward, and a
// deterministic backward. Math and shapes as model/cpu/layernorm.h:
//   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + 1e-5);
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * w,  xhat = (x - mean) * rstd.
// Determinism: warp sums use an xor butterfly (model/cuda/block_reduce.cuh: every lane gets the same, order-fixed
// sum), and dweight/dbias are reduced in two fixed-order stages without atomics. Lab: dev/cuda/layernorm.cu.
#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int kWarpSize = 32;
constexpr int kThreads = 256;                        // 8 warps per block
constexpr int kWarpsPerBlock = kThreads / kWarpSize;
constexpr int kBackwardRowsPerBlock = 32;            // rows each backward block owns (and sums dweight over)
constexpr float kEpsilon = 1e-5f;

// One warp per row of x (N,C): x = a, or x = a + b (written to residual_out) when kResidual.
// out (N,C); mean, rstd (N); weight, bias (C). Two passes for the variance, as the CPU reference; the row is
// re-read (from L1/L2) rather than cached, so any C works. With kResidual, x is recomputed as a + b on each
// pass (bit-identical every time) so the kernel never reads back what it wrote.
template <bool kResidual>
__global__ void layernorm_forward_kernel(float* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                                         float* __restrict__ residual_out, const float* __restrict__ a,
                                         const float* __restrict__ b, const float* __restrict__ weight,
                                         const float* __restrict__ bias, int N, int C) {
    int row = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarpSize;
    int lane = threadIdx.x % kWarpSize;
    if (row >= N) return;
    size_t offset = size_t(row) * C;
    const float* a_row = a + offset;
    const float* b_row = kResidual ? b + offset : nullptr;
    auto x = [&](int c) { return kResidual ? a_row[c] + b_row[c] : a_row[c]; };

    float sum = 0.0f;
    for (int c = lane; c < C; c += kWarpSize) {
        float value = x(c);
        if constexpr (kResidual) residual_out[offset + c] = value;
        sum += value;
    }
    const float m = warp_sum(sum) / float(C);

    float squares = 0.0f;
    for (int c = lane; c < C; c += kWarpSize) {
        float d = x(c) - m;
        squares += d * d;
    }
    const float variance = warp_sum(squares) / float(C);
    const float s = 1.0f / sqrtf(variance + kEpsilon);

    float* y = out + offset;
    for (int c = lane; c < C; c += kWarpSize) y[c] = (x(c) - m) * s * weight[c] + bias[c];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// Backward, stage 1. Block k owns rows [k * R, min(N, (k+1) * R)), R = kBackwardRowsPerBlock.
//  - dinp: one warp per row (rows warp, warp + 8, ...): the two row means by warp sums, then dx += ...
//  - dweight/dbias partials: thread i owns channels i, i + 256, ... and sums dy * xhat and dy over the block's
//    rows in increasing order; the block's sums go to partial_dweight[k, :], partial_dbias[k, :] (num_blocks, C).
// The two parts read the same rows (the second mostly from cache) and are independent of each other.
__global__ void layernorm_backward_kernel(float* __restrict__ dinp, float* __restrict__ partial_dweight,
                                          float* __restrict__ partial_dbias, const float* __restrict__ dout,
                                          const float* __restrict__ inp, const float* __restrict__ weight,
                                          const float* __restrict__ mean, const float* __restrict__ rstd, int N,
                                          int C) {
    __shared__ float block_mean[kBackwardRowsPerBlock], block_rstd[kBackwardRowsPerBlock];
    const int first_row = blockIdx.x * kBackwardRowsPerBlock;
    const int rows = min(kBackwardRowsPerBlock, N - first_row);
    if (threadIdx.x < rows) {
        block_mean[threadIdx.x] = mean[first_row + threadIdx.x];
        block_rstd[threadIdx.x] = rstd[first_row + threadIdx.x];
    }
    __syncthreads();

    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    for (int r = warp; r < rows; r += kWarpsPerBlock) {
        size_t offset = size_t(first_row + r) * C;
        const float* x = inp + offset;
        const float* dy = dout + offset;
        const float m = block_mean[r], s = block_rstd[r];
        float g_sum = 0.0f, g_xhat_sum = 0.0f;
        for (int c = lane; c < C; c += kWarpSize) {
            float xhat = (x[c] - m) * s;
            float g = dy[c] * weight[c];
            g_sum += g;
            g_xhat_sum += g * xhat;
        }
        const float g_mean = warp_sum(g_sum) / float(C);
        const float g_xhat_mean = warp_sum(g_xhat_sum) / float(C);
        float* dx = dinp + offset;
        for (int c = lane; c < C; c += kWarpSize) {
            float xhat = (x[c] - m) * s;
            float g = dy[c] * weight[c];
            dx[c] += s * (g - g_mean - xhat * g_xhat_mean);
        }
    }

    if (!partial_dweight) return;  // neither dweight nor dbias wanted
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float dweight_sum = 0.0f, dbias_sum = 0.0f;
        for (int r = 0; r < rows; r++) {
            size_t index = size_t(first_row + r) * C + c;
            float xhat = (inp[index] - block_mean[r]) * block_rstd[r];
            dweight_sum += dout[index] * xhat;
            dbias_sum += dout[index];
        }
        partial_dweight[size_t(blockIdx.x) * C + c] = dweight_sum;
        partial_dbias[size_t(blockIdx.x) * C + c] = dbias_sum;
    }
}

// Backward, stage 2: one thread per channel adds the num_blocks partial sums in block order, then adds the
// total into dweight / dbias (C), each skipped when null.
__global__ void layernorm_weight_reduce_kernel(float* __restrict__ dweight, float* __restrict__ dbias,
                                               const float* __restrict__ partial_dweight,
                                               const float* __restrict__ partial_dbias, int num_blocks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float dweight_sum = 0.0f, dbias_sum = 0.0f;
    for (int k = 0; k < num_blocks; k++) {
        dweight_sum += partial_dweight[size_t(k) * C + c];
        dbias_sum += partial_dbias[size_t(k) * C + c];
    }
    if (dweight) dweight[c] += dweight_sum;
    if (dbias) dbias[c] += dbias_sum;
}

DeviceScratch<float> partial_scratch;  // the backward's per-block partial sums of dweight and dbias

}  // namespace

namespace cuda {

// out (N,C); mean, rstd (N); inp (N,C); weight, bias (C)
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C) {
    if (N == 0) return;
    layernorm_forward_kernel<false><<<ceil_div(N, kWarpsPerBlock), kThreads>>>(out, mean, rstd, nullptr, inp, nullptr,
                                                                              weight, bias, N, C);
    CUDA_CHECK_LAUNCH();
}

// residual_out, out (N,C) = a + b, layernorm(a + b); mean, rstd (N); a, b (N,C); weight, bias (C)
void fused_residual_layernorm_forward(float* residual_out, float* out, float* mean, float* rstd, const float* a,
                                      const float* b, const float* weight, const float* bias, int N, int C) {
    if (N == 0) return;
    layernorm_forward_kernel<true><<<ceil_div(N, kWarpsPerBlock), kThreads>>>(out, mean, rstd, residual_out, a, b,
                                                                             weight, bias, N, C);
    CUDA_CHECK_LAUNCH();
}

// Accumulates dinp (N,C), dweight and dbias (C; either may be null). dout, inp (N,C); weight (C); mean, rstd (N)
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
    if (N == 0 || C == 0) return;
    const int num_blocks = ceil_div(N, kBackwardRowsPerBlock);
    const bool weights_wanted = dweight || dbias;
    float* partials = weights_wanted ? partial_scratch.get(2 * size_t(num_blocks) * C) : nullptr;
    float* partial_dweight = partials;
    float* partial_dbias = weights_wanted ? partials + size_t(num_blocks) * C : nullptr;
    layernorm_backward_kernel<<<num_blocks, kThreads>>>(dinp, partial_dweight, partial_dbias, dout, inp, weight, mean,
                                                        rstd, N, C);
    CUDA_CHECK_LAUNCH();
    if (weights_wanted) {
        layernorm_weight_reduce_kernel<<<ceil_div(C, kThreads), kThreads>>>(dweight, dbias, partial_dweight,
                                                                            partial_dbias, num_blocks, C);
        CUDA_CHECK_LAUNCH();
    }
}

}  // namespace cuda
