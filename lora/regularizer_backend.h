// The adapter regularisers (lora/cpu/regularizers.h, lora/cuda/regularizers.cu) of one backend, as the model's
// kernels come from model/backend_*.h: one specialisation per backend, the same names and arguments, pointers in the
// backend's memory (the adapters' parameters and gradients). Shapes and math: lora/cpu/regularizers.h.
#pragma once
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "lora/cuda/regularizer_kernels.h"

template <class Backend>
struct RegularizerKernels;

// the CPU reference (lora/cpu/regularizers.h), compiled once for float and double in lora/cpu/regularizers.cpp
template <typename Real>
struct RegularizerKernels<CpuBackend<Real>> {
    using real = Real;
    // weight * sum |A_old A_t^T| (squared: of squares); dA_t (r,in) += its gradient. A_old (k,in), A_t (r,in).
    static double orthogonality_loss(const real* A_old, const real* A_t, real* dA_t, int k, int r, int in,
                                     float weight, bool squared);
    // weight * (||A_t||_F + ||Bt_t||_F); dA_t (r,in), dBt_t (r,out) += its gradient.
    static double l2_norm_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t, int r, int in, int out,
                               float weight);
    // weight * ||B_t A_t||_1 (rr: weight * ||A_t B_t||_1, square modules only); dA_t, dBt_t += its gradient.
    static double l1_update_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t, int r, int in, int out,
                                 float weight, bool rr);
};

// the GPU kernels (lora/cuda/regularizers.cu)
template <>
struct RegularizerKernels<CudaBackend> {
    using real = float;
    static double orthogonality_loss(const real* A_old, const real* A_t, real* dA_t, int k, int r, int in,
                                     float weight, bool squared) {
        return cuda::orthogonality_loss(A_old, A_t, dA_t, k, r, in, weight, squared);
    }
    static double l2_norm_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t, int r, int in, int out,
                               float weight) {
        return cuda::l2_norm_loss(A_t, Bt_t, dA_t, dBt_t, r, in, out, weight);
    }
    static double l1_update_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t, int r, int in, int out,
                                 float weight, bool rr) {
        return cuda::l1_update_loss(A_t, Bt_t, dA_t, dBt_t, r, in, out, weight, rr);
    }
};
