// The AdamW update on the GPU (decoupled weight decay, as torch.optim.AdamW). One thread per element.
// Math as model/cpu/adamw.h. Lab: dev/cuda/adamw.cu.
#include <cmath>

#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace {

constexpr int kThreads = 256;

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

}  // namespace

namespace cuda {

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
