// GainLoRA's gate on the GPU (lora/cuda/gate.cu), declared in plain C++ (no CUDA types) like kernels.h. The math,
// line by line, is in the CPU reference lora/cpu/gate.h (lora/METHODS.md section 7), which every kernel
// is tested against (test/test_gainlora.cpp, "cuda kernels: gate ..."). Every pointer is device memory; shapes are
// the reference's: S sequences, C channels, gate hidden size m, G gates. Deterministic: cuBLAS products and
// fixed-order reductions, no atomics. "Accumulates" means += into the output.
#pragma once
#include <cstddef>

namespace cuda {

// p0 (S,C) = the mean of wte (Vp,C) rows over tokens[offsets[s]] .. tokens[offsets[s+1]-1]; offsets (S+1).
void gate_prompt_mean(float* p0, const float* wte, const int* tokens, const int* offsets, int S, int C);

// g (S) = |tanh(2 cos(SiLU(SiLU(p0 W1^T) W2^T), k))|, with the activations z1, p1 (S,m), z2, p2 (S,C) written.
void gate_forward(float* g, float* z1, float* p1, float* z2, float* p2, const float* p0, const float* W1,
                  const float* W2, const float* k, int S, int C, int m);

// Accumulates dW1 (m,C), dW2 (C,m), dk (C) from dg (S); each may be null.
void gate_backward(float* dW1, float* dW2, float* dk, const float* dg, const float* p0, const float* z1,
                   const float* p1, const float* z2, const float* p2, const float* W2, const float* k, int S, int C,
                   int m);

// block_weights (S*T, G): row s*T + t gets gates (G,S) column s.
void gate_expand_rows(float* block_weights, const float* gates, int S, int T, int G);
// dg (S) = sum over the T rows of sequence s of d_block_weights (S*T, G) column `branch`; overwrites.
void gate_rows_backward(float* dg, const float* d_block_weights, int S, int T, int G, int branch);

// W (rows,D) <- W - (W - W_old) Mt^T Mt, Mt (k,D); then, with restore_norm, each row back to its norm before.
void gate_project_update(float* W, const float* W_old, const float* Mt, int rows, int D, int k, bool restore_norm);

// destination (count) = source (count), device to device.
void gate_copy(float* destination, const float* source, size_t count);

}  // namespace cuda
