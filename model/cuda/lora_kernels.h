// The multi-branch LoRA linear's adapter path on the GPU (model/cuda/lora_linear.cu), declared in plain C++
// (no CUDA types) like kernels.h; LoraShape (model/lora_shape.h) is shared with the CPU reference
// model/cpu/lora_linear.h.
// Every pointer is device memory; the math (lora/METHODS.md section 1) is written out line by line in
// the CPU reference, which each kernel is tested against (test/test_lora_linear.cpp).
#pragma once
#include "model/lora_shape.h"

namespace cuda {

// out (N,OC) += scale * (hidden .* w) Bt, with hidden (N,R) = (inp .* dropout_mask) A^T written (.* is the
// elementwise product; w holds one weight per row and branch, broadcast over the branch's rank columns).
// inp (N,C); A (R,C); Bt = B^T (R,OC); block_weights (N,branches) or null (all ones); dropout_mask (N,C) or null.
void lora_forward(float* out, float* hidden, const float* inp, const float* A, const float* Bt,
                  const float* block_weights, const float* dropout_mask, float scale, LoraShape shape);

// Accumulates dinp (N,C), the trainable rows of dA (R,C) and of dBt (R,OC), and
// d_block_weights (N,branches); each may be null (not wanted). hidden (N,R) is the forward's.
// Deterministic: cuBLAS products and fixed-order reductions, no atomics.
void lora_backward(float* dinp, float* dA, float* dBt, float* d_block_weights, const float* dout, const float* inp,
                   const float* hidden, const float* A, const float* Bt, const float* block_weights,
                   const float* dropout_mask, float scale, LoraShape shape);

// The same two products in halves (model/cpu/lora_linear.h): hidden (N,R) = (inp .* dropout_mask) A^T, written;
// then out (N,OC) += scale * (hidden .* w) Bt.
void lora_down_forward(float* hidden, const float* inp, const float* A, const float* dropout_mask, LoraShape shape);
void lora_up_forward(float* out, const float* hidden, const float* Bt, const float* block_weights, float scale,
                     LoraShape shape);

// The backward in halves: d_hidden (N,R) = (scale * dout Bt^T) .* w, written, accumulating dBt's trainable rows
// and d_block_weights (each may be null); then, from d_hidden, dinp and dA's trainable rows (each may be null).
void lora_up_backward(float* d_hidden, float* dBt, float* d_block_weights, const float* dout, const float* hidden,
                      const float* Bt, const float* block_weights, float scale, LoraShape shape);
void lora_down_backward(float* dinp, float* dA, const float* d_hidden, const float* inp, const float* A,
                        const float* dropout_mask, LoraShape shape);

}  // namespace cuda
