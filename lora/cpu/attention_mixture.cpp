// AM-LoRA's attention mixture kernels on the CPU backend (lora/attention_mixture.h): the reference of
// lora/cpu/attention_mixture.h, compiled here once for float and double.
#include "lora/cpu/attention_mixture.h"

#include "lora/attention_mixture.h"

template <typename Real>
void MixtureKernels<CpuBackend<Real>>::project(real* P, const real* Bt, const real* D, real scale, MixtureShape s) {
    cpu::mixture_project(P, Bt, D, scale, s);
}

template <typename Real>
void MixtureKernels<CpuBackend<Real>>::forward(real* w, real* z, const real* hidden, const real* P, const real* v,
                                               MixtureShape s) {
    cpu::mixture_forward(w, z, hidden, P, v, s);
}

template <typename Real>
double MixtureKernels<CpuBackend<Real>>::penalty(real* dw, const real* w, const real* row_weights, float lambda,
                                                 MixtureShape s) {
    return cpu::mixture_penalty(dw, w, row_weights, real(lambda), s);
}

template <typename Real>
void MixtureKernels<CpuBackend<Real>>::backward(real* d_hidden, real* dP, real* dv, const real* dw, const real* w,
                                                const real* z, const real* hidden, const real* P, const real* v,
                                                MixtureShape s) {
    cpu::mixture_backward(d_hidden, dP, dv, dw, w, z, hidden, P, v, s);
}

template <typename Real>
void MixtureKernels<CpuBackend<Real>>::project_backward(real* dBt, real* dD, const real* dP, const real* Bt,
                                                        const real* D, real scale, MixtureShape s) {
    cpu::mixture_project_backward(dBt, dD, dP, Bt, D, scale, s);
}

template struct MixtureKernels<CpuBackend<float>>;
template struct MixtureKernels<CpuBackend<double>>;
