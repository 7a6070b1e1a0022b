// The adapter regularisers on the CPU backend (lora/regularizer_backend.h): the reference of lora/cpu/regularizers.h,
// compiled here once for float and double.
#include "lora/cpu/regularizers.h"

#include "lora/regularizer_backend.h"

template <typename Real>
double RegularizerKernels<CpuBackend<Real>>::orthogonality_loss(const real* A_old, const real* A_t, real* dA_t, int k,
                                                                int r, int in, float weight, bool squared) {
    return cpu::orthogonality_loss<real>(A_old, A_t, dA_t, k, r, in, real(weight), squared);
}

template <typename Real>
double RegularizerKernels<CpuBackend<Real>>::l2_norm_loss(const real* A_t, const real* Bt_t, real* dA_t, real* dBt_t,
                                                          int r, int in, int out, float weight) {
    return cpu::l2_norm_loss<real>(A_t, Bt_t, dA_t, dBt_t, r, in, out, real(weight));
}

template <typename Real>
double RegularizerKernels<CpuBackend<Real>>::l1_update_loss(const real* A_t, const real* Bt_t, real* dA_t,
                                                            real* dBt_t, int r, int in, int out, float weight,
                                                            bool rr) {
    return cpu::l1_update_loss<real>(A_t, Bt_t, dA_t, dBt_t, r, in, out, real(weight), rr);
}

template struct RegularizerKernels<CpuBackend<float>>;
template struct RegularizerKernels<CpuBackend<double>>;
