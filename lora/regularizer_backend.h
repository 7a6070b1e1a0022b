// The adapter regularisers (lora/cpu/regularizers.h, model/cuda/lora_regularizers.cu) for a backend chosen at
// compile time, as the model calls its kernels through model/backend_*.h: the same names and arguments, pointers in
// the backend's memory (the adapters' parameters and gradients). Shapes and math: lora/cpu/regularizers.h.
#pragma once
#include <type_traits>

#include "lora/cpu/regularizers.h"
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "model/cuda/lora_regularizer_kernels.h"

namespace regularizers {

// weight * sum |A_old A_t^T| (squared: of squares); dA_t (r,in) += its gradient. A_old (k,in), A_t (r,in).
template <class Backend, typename real = typename Backend::real>
double orthogonality_loss(const real* A_old, const real* A_t, real* dA_t, int k, int r, int in, float weight,
                          bool squared) {
    if constexpr (std::is_same_v<Backend, CudaBackend>)
        return cuda::orthogonality_loss(A_old, A_t, dA_t, k, r, in, weight, squared);
    else
        return cpu::orthogonality_loss<real>(A_old, A_t, dA_t, k, r, in, real(weight), squared);
}

// weight * (||A_t||_F + ||Bt_t||_F); dA_t (r,in), dBt_t (r,out) += its gradient.
template <class Backend, typename real = typename Backend::real>
double l2_norm_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t, int r, int in, int out,
                    float weight) {
    if constexpr (std::is_same_v<Backend, CudaBackend>)
        return cuda::l2_norm_loss(A_t, Bt_t, dA_t, dBt_t, r, in, out, weight);
    else
        return cpu::l2_norm_loss<real>(A_t, Bt_t, dA_t, dBt_t, r, in, out, real(weight));
}

// weight * ||B_t A_t||_1 (rr: weight * ||A_t B_t||_1, square modules only); dA_t, dBt_t += its gradient.
template <class Backend, typename real = typename Backend::real>
double l1_update_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t, int r, int in, int out,
                      float weight, bool rr) {
    if constexpr (std::is_same_v<Backend, CudaBackend>)
        return cuda::l1_update_loss(A_t, Bt_t, dA_t, dBt_t, r, in, out, weight, rr);
    else
        return cpu::l1_update_loss<real>(A_t, Bt_t, dA_t, dBt_t, r, in, out, real(weight), rr);
}

}  // namespace regularizers
