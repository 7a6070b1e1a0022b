// The CUDA backend's kernels, declared in plain C++ (no CUDA types) so that the model orchestration,
// compiled by the host compiler, can call them. Every pointer is device memory; shapes and math are those
// of the CPU reference in model/cpu/<family>.h, which each kernel is tested against (test/test_cuda_kernels.cpp).
// Every launch and library call is checked; a failure throws Error naming the call, file and line.
// "Accumulates" means += into the output, as in the CPU reference; gradients of frozen tensors are null.
#pragma once
#include <cstddef>
#include <cstdint>

#include "model/bf16.h"

namespace cuda {

// model/cuda/encoder.cu. encoder_backward is deterministic: no atomics on wte (the positions are bucketed
// by token on the host, then one thread block per distinct token adds its positions' rows in order).
void encoder_forward(float* out, const int* inp, const float* wte, const float* wpe, int B, int T, int C);
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T, int C);

// model/cuda/layernorm.cu. The backward is deterministic (per-block partial sums of dweight/dbias reduced
// in a fixed order).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C);
// residual_out = a + b, then out = layernorm(residual_out), in one kernel.
void fused_residual_layernorm_forward(float* residual_out, float* out, float* mean, float* rstd, const float* a,
                                      const float* b, const float* weight, const float* bias, int N, int C);

// model/cuda/gelu.cu
void gelu_forward(float* out, const float* inp, size_t N);
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t N);
// model/cuda/residual.cu
void residual_forward(float* out, const float* a, const float* b, size_t N);
void residual_backward(float* da, float* db, const float* dout, size_t N);
void scale(float* x, float factor, size_t N);  // x (N) *= factor

// model/cuda/matmul.cu (cuBLAS): out (N,OC) = inp (N,C) W^T + bias; the backward accumulates.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC);
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);
// The frozen base's products on operands stored in bf16 (model/bf16.h; GPT2::bf16_base): out (count) = inp
// rounded to nearest even (bit-identical to float_to_bf16), and matmul_forward on bf16 inp (N,C) and weight (OC,C),
// accumulated in fp32 into the fp32 out (N,OC), whatever the process-wide precision.
void to_bf16(bf16_bits* out, const float* inp, size_t count);
void matmul_forward_bf16(float* out, const bf16_bits* inp, const bf16_bits* weight, const float* bias, int N, int C,
                         int OC);

// model/cuda/attention.cu: fused causal multi-head attention on packed qkv (B,T,3C) (online softmax, no (T,T)
// matrix): out (B,T,C) and lse (B,NH,T), the log-sum-exp of each row of scores, kept for the backward, which
// recomputes the probabilities from it and takes D = rowsum(dout .* out) from the forward's out. The backward
// accumulates into dqkv. Head size C/NH up to 128.
void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int NH);
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse, int B,
                        int T, int C, int NH);

// model/cuda/classifier.cu: softmax + cross-entropy + dlogits fused in one pass over each row of logits;
// probabilities are never stored. losses (N) written when not null; dlogits (N,Vp) written when not null,
// with row i scaled by weights[i] / weight_sum, padded columns zero. dlogits may be logits (in place).
void fused_classifier(float* losses, float* dlogits, const float* logits, const int* targets, const float* weights,
                      double weight_sum, int N, int V, int Vp);

// Greedy decoding (model/generate.h) and LoRA dropout.
// model/cuda/kv_attention.cu: one step of causal attention with a KV cache (model/cpu/kv_attention.h). qkv (B,3C)
// is the packed row of the token at `position` of each sequence; its k and v are written into row `position` of
// key_cache, value_cache (B,max_T,C), then out (B,C) = its attention over positions 0..position. One block per
// (head, sequence); deterministic. Fails unless 0 <= position < max_T.
void attention_step_forward(float* out, float* key_cache, float* value_cache, const float* qkv, int position, int B,
                            int C, int NH, int max_T);
// model/cuda/argmax.cu: out (N, device ints) = the index of the largest of the first V logits of each row of
// logits (N,Vp), ties to the lowest index (model/cpu/argmax.h). One block per row; deterministic.
void argmax_rows(int* out, const float* logits, int N, int V, int Vp);
// model/cuda/dropout.cu: mask (count) = 1/(1-p) where element i is kept, else 0, from a counter-based hash of
// (seed, first + i) (model/dropout_hash.h): bit-identical to model/cpu/dropout.h. Fails unless 0 <= p < 1.
void dropout_mask(float* mask, size_t count, uint64_t seed, float p, uint64_t first = 0);

// model/cuda/global_norm.cu: sum of squares of x (N), deterministic (fixed two-stage reduction), returned to the
// host.
double sum_of_squares(const float* x, size_t N);
// The same file's second stage, for any two-stage sum: the sum of count device doubles (stage-1 partial sums, launched
// with 256 threads a block), in a fixed order, returned to the host.
double sum_partials(const double* partials, int count);
// model/cuda/adamw.cu
void adamw_update(float* params, const float* grads, float* m, float* v, size_t N, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t, float grad_scale);

// model/cuda/memory.cu: device memory and copies.
void* device_allocate(size_t bytes);  // zero-initialised
void device_free(void* memory);
void device_zero(void* memory, size_t bytes);
void copy_to_device(void* destination, const void* source, size_t bytes);
void copy_to_host(void* destination, const void* source, size_t bytes);
void synchronize();

}  // namespace cuda
