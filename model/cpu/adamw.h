// AdamW (decoupled weight decay), as torch.optim.AdamW:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  mhat = m / (1 - b1^t);  vhat = v / (1 - b2^t)
//   p = p - lr (mhat / (sqrt(vhat) + eps) + wd p)
#pragma once
#include <cmath>
#include <cstddef>

#include "model/cpu/threads.h"

namespace cpu {

// params, grads, m, v (N). t is the 1-based step count; grad_scale multiplies g first (gradient
// clipping folds in here).
template <typename T>
void adamw_update(T* params, const T* grads, T* m, T* v, size_t N, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int t, float grad_scale) {
    const T bias_correction1 = T(1) - std::pow(T(beta1), T(t));
    const T bias_correction2 = T(1) - std::pow(T(beta2), T(t));
    parallel_chunks(N, 64, [&](size_t first, size_t count) {
        for (size_t i = first; i < first + count; i++) {
            T g = grads[i] * T(grad_scale);
            m[i] = T(beta1) * m[i] + (T(1) - T(beta1)) * g;
            v[i] = T(beta2) * v[i] + (T(1) - T(beta2)) * g * g;
            T m_hat = m[i] / bias_correction1;
            T v_hat = v[i] / bias_correction2;
            params[i] -= T(lr) * (m_hat / (std::sqrt(v_hat) + T(eps)) + T(weight_decay) * params[i]);
        }
    });
}

}  // namespace cpu
