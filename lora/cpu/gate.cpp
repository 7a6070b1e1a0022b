// GainLoRA's gate kernels on the CPU backend (lora/gainlora_gates.h): the reference of lora/cpu/gate.h, compiled here
// once for float and double.
#include "lora/cpu/gate.h"

#include "lora/gainlora_gates.h"

template <typename Real>
void GateKernels<CpuBackend<Real>>::prompt_mean(real* p0, const real* wte, const int* tokens, const int* offsets,
                                                int S, int C) {
    cpu::gate_prompt_mean(p0, wte, tokens, offsets, S, C);
}

template <typename Real>
void GateKernels<CpuBackend<Real>>::forward(real* g, real* z1, real* p1, real* z2, real* p2, const real* p0,
                                            const real* W1, const real* W2, const real* k, int S, int C, int m) {
    cpu::gate_forward(g, z1, p1, z2, p2, p0, W1, W2, k, S, C, m);
}

template <typename Real>
void GateKernels<CpuBackend<Real>>::backward(real* dW1, real* dW2, real* dk, const real* dg, const real* p0,
                                             const real* z1, const real* p1, const real* z2, const real* p2,
                                             const real* W2, const real* k, int S, int C, int m) {
    cpu::gate_backward(dW1, dW2, dk, dg, p0, z1, p1, z2, p2, W2, k, S, C, m);
}

template <typename Real>
void GateKernels<CpuBackend<Real>>::expand_rows(real* block_weights, const real* gates, int S, int T, int G) {
    cpu::gate_expand_rows(block_weights, gates, S, T, G);
}

template <typename Real>
void GateKernels<CpuBackend<Real>>::rows_backward(real* dg, const real* d_block_weights, int S, int T, int G,
                                                  int branch) {
    cpu::gate_rows_backward(dg, d_block_weights, S, T, G, branch);
}

template <typename Real>
void GateKernels<CpuBackend<Real>>::project_update(real* W, const real* W_old, const real* Mt, int rows, int D, int k,
                                                   bool restore) {
    cpu::gate_project_update(W, W_old, Mt, rows, D, k, restore);
}

template struct GateKernels<CpuBackend<float>>;
template struct GateKernels<CpuBackend<double>>;
