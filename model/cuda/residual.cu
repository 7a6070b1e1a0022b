// The residual connection on the GPU, forward and backward, and the scaling of a gradient (x *= factor), which
// model/cpu/residual.h holds with it. One thread per element; every output element is written by one thread, so
// all are deterministic. Math as model/cpu/residual.h. Lab: dev/cuda/residual.cu.
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace {

constexpr int kThreads = 256;

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
