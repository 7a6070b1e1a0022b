// The optimizer's kernels on the GPU: the sum of squares behind the global gradient norm, and the AdamW
// update. Math as model/cpu/global_norm.h and model/cpu/adamw.h. Lab: dev/cuda/global_norm.cu, dev/cuda/adamw.cu.
#include <cmath>

#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int kThreads = 256;
// sum_of_squares always runs this many blocks, whatever N and whatever the GPU: each element goes to the
// same thread and the partial sums meet in the same order every time, so the result is bit-identical run to
// run (and across GPUs).
constexpr int kSumBlocks = 1024;

// Stage 1: partials (kSumBlocks) = per-block sums of x^2 over a grid-stride loop, in double
// (a float squared is exact in double).
__global__ void sum_of_squares_kernel(double* __restrict__ partials, const float* __restrict__ x, size_t N) {
    double sum = 0.0;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N; i += size_t(gridDim.x) * blockDim.x) {
        double value = x[i];
        sum += value * value;
    }
    double total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Stage 2, one block: result = sum of the count partials, thread i taking i, i + kThreads, ... in order.
__global__ void sum_partials_kernel(double* __restrict__ result, const double* __restrict__ partials, int count) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    double total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) *result = total;
}

// One thread per element: params, grads, m, v (N). bias_correction1 = 1 - beta1^t, bias_correction2 = 1 - beta2^t.
__global__ void adamw_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                             float* __restrict__ v, size_t N, float lr, float beta1, float beta2, float eps,
                             float weight_decay, float bias_correction1, float bias_correction2, float grad_scale) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float g = grads[i] * grad_scale;
    float m_i = beta1 * m[i] + (1.0f - beta1) * g;
    float v_i = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = m_i;
    v[i] = v_i;
    float m_hat = m_i / bias_correction1;
    float v_hat = v_i / bias_correction2;
    float p = params[i];
    params[i] = p - lr * (m_hat / (sqrtf(v_hat) + eps) + weight_decay * p);
}

DeviceScratch<double> sum_scratch;  // kSumBlocks partials, then the result

}  // namespace

namespace cuda {

// sum_i x_i^2 over x (N), in double, deterministic.
double sum_of_squares(const float* x, size_t N) {
    if (N == 0) return 0.0;
    double* partials = sum_scratch.get(kSumBlocks + 1);
    double* result = partials + kSumBlocks;
    sum_of_squares_kernel<<<kSumBlocks, kThreads>>>(partials, x, N);
    CUDA_CHECK_LAUNCH();
    sum_partials_kernel<<<1, kThreads>>>(result, partials, kSumBlocks);
    CUDA_CHECK_LAUNCH();
    double total = 0.0;
    CUDA_CHECK(cudaMemcpy(&total, result, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}

// params, grads, m, v (N); t is the 1-based step; grad_scale multiplies each gradient first.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t N, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t, float grad_scale) {
    if (N == 0) return;
    // computed on the host in float, as the CPU reference does
    const float bias_correction1 = 1.0f - std::pow(beta1, float(t));
    const float bias_correction2 = 1.0f - std::pow(beta2, float(t));
    adamw_kernel<<<ceil_div(N, kThreads), kThreads>>>(params, grads, m, v, N, lr, beta1, beta2, eps, weight_decay,
                                                      bias_correction1, bias_correction2, grad_scale);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
