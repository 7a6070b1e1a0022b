// Elementwise kernels on the GPU: GELU (tanh form) forward and backward, residual forward and backward, scaling.
// One thread per element; every output element is written by one thread, so all are deterministic.
// Math as model/cpu/gelu.h and model/cpu/residual.h (same constants, same rounding of them to float).
// Lab: dev/cuda/gelu.cu.
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace {

constexpr int kThreads = 256;
constexpr float kGeluScale = float(0.7978845608028654);  // sqrt(2 / pi), as the CPU reference rounds it
constexpr float kGeluCubic = float(0.044715);
constexpr float kGeluCubic3 = float(3 * 0.044715);

// out (N) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
__global__ void gelu_forward_kernel(float* __restrict__ out, const float* __restrict__ inp, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + kGeluCubic * x * x * x)));
}

// dinp (N) += dout * gelu'(x), gelu'(x) = 0.5 (1 + th) + 0.5 x (1 - th^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
__global__ void gelu_backward_kernel(float* __restrict__ dinp, const float* __restrict__ inp,
                                     const float* __restrict__ dout, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float x = inp[i];
    float u = kGeluScale * (x + kGeluCubic * x * x * x);
    float th = tanhf(u);
    float sech2 = 1.0f - th * th;
    float du_dx = kGeluScale * (1.0f + kGeluCubic3 * x * x);
    dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * sech2 * du_dx);
}

// out (N) = a + b
__global__ void residual_forward_kernel(float* __restrict__ out, const float* __restrict__ a,
                                        const float* __restrict__ b, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < N) out[i] = a[i] + b[i];
}

// x (N) *= factor
__global__ void scale_kernel(float* __restrict__ x, float factor, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < N) x[i] *= factor;
}

// da (N) += dout; db (N) += dout
__global__ void residual_backward_kernel(float* __restrict__ da, float* __restrict__ db,
                                         const float* __restrict__ dout, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float d = dout[i];
    da[i] += d;
    db[i] += d;
}

}  // namespace

namespace cuda {

void gelu_forward(float* out, const float* inp, size_t N) {
    if (N == 0) return;
    gelu_forward_kernel<<<ceil_div(N, kThreads), kThreads>>>(out, inp, N);
    CUDA_CHECK_LAUNCH();
}

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t N) {
    if (N == 0) return;
    gelu_backward_kernel<<<ceil_div(N, kThreads), kThreads>>>(dinp, inp, dout, N);
    CUDA_CHECK_LAUNCH();
}

void residual_forward(float* out, const float* a, const float* b, size_t N) {
    if (N == 0) return;
    residual_forward_kernel<<<ceil_div(N, kThreads), kThreads>>>(out, a, b, N);
    CUDA_CHECK_LAUNCH();
}

void residual_backward(float* da, float* db, const float* dout, size_t N) {
    if (N == 0) return;
    residual_backward_kernel<<<ceil_div(N, kThreads), kThreads>>>(da, db, dout, N);
    CUDA_CHECK_LAUNCH();
}

void scale(float* x, float factor, size_t N) {
    if (N == 0) return;
    scale_kernel<<<ceil_div(N, kThreads), kThreads>>>(x, factor, N);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
