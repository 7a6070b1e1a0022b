// GELU (tanh form) on the GPU, forward and backward. One thread per element; every output element is written by
// one thread, so both are deterministic. Math as model/cpu/gelu.h (same constants, same rounding of them to float).
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

}  // namespace cuda
