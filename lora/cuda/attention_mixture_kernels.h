// AM-LoRA's attention over the branches of one adapted linear on the GPU (lora/cuda/attention_mixture.cu),
// declared in plain C++ (no CUDA types) like kernels.h. The math, line by line, is in the CPU reference
// lora/cpu/attention_mixture.h (lora/METHODS.md section 9), which every kernel is tested against
// (test/test_amlora.cpp, "cuda kernels: attention mixture ..."). Every pointer is device memory; shapes are the
// reference's (MixtureShape). Deterministic: cuBLAS products and fixed-order reductions, no atomics.
#pragma once
#include "lora/mixture_shape.h"

namespace cuda {

// P (branches*r, d_a): P_i = scale Bt_i D_i^T.
void mixture_project(float* P, const float* Bt, const float* D, float scale, MixtureShape shape);
// w (N,branches), z (N,branches*d_a) from hidden (N,branches*r), P, v (branches*d_a).
void mixture_forward(float* w, float* z, const float* hidden, const float* P, const float* v, MixtureShape shape);
// Returns lambda * sum_n row_weights[n] (sum_i w  |  entropy of w) and accumulates its gradient into dw (N,branches).
double mixture_penalty(float* dw, const float* w, const float* row_weights, float lambda, MixtureShape shape);
// From dw: accumulates d_hidden (N,branches*r) and the trainable branches' dv; writes their rows of dP.
void mixture_backward(float* d_hidden, float* dP, float* dv, const float* dw, const float* w, const float* z,
                      const float* hidden, const float* P, const float* v, MixtureShape shape);
// Trainable branches: dBt_i += scale dP_i D_i, dD_i += scale dP_i^T Bt_i (either may be null).
void mixture_project_backward(float* dBt, float* dD, const float* dP, const float* Bt, const float* D, float scale,
                              MixtureShape shape);

}  // namespace cuda
