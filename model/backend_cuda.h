// The CUDA backend: the same static functions as CpuBackend (model/backend_cpu.h), over device memory,
// calling the kernels of model/cuda/. fp32 storage (plus the bf16 copy of a frozen base, GPT2::bf16_base); the
// matrix products run in the precision of model/precision.h.
#pragma once
#include <type_traits>
#include <vector>

#include "model/cuda/kernels.h"
#include "model/cuda/lora_kernels.h"
#include "model/cuda/nccl.h"
#include "model/precision.h"

struct CudaBackend {
    using real = float;
    static const char* name() { return "cuda"; }

    template <typename U>
    static U* allocate(size_t count) { return static_cast<U*>(cuda::device_allocate(count * sizeof(U))); }
    template <typename U>
    static void release(U* memory) { cuda::device_free(memory); }
    template <typename U>
    static void zero(U* memory, size_t count) { cuda::device_zero(memory, count * sizeof(U)); }
    // host -> device, converting on the host first when the element types differ
    template <typename Destination, typename Source>
    static void upload(Destination* destination, const Source* source, size_t count) {
        if constexpr (std::is_same_v<Destination, Source>) {
            cuda::copy_to_device(destination, source, count * sizeof(Source));
        } else {
            std::vector<Destination> converted(source, source + count);
            cuda::copy_to_device(destination, converted.data(), count * sizeof(Destination));
        }
    }
    // device -> host, converting on the host after the copy when the element types differ
    template <typename Destination, typename Source>
    static void download(Destination* destination, const Source* source, size_t count) {
        if constexpr (std::is_same_v<Destination, Source>) {
            cuda::copy_to_host(destination, source, count * sizeof(Source));
        } else {
            std::vector<Source> raw(count);
            cuda::copy_to_host(raw.data(), source, count * sizeof(Source));
            std::copy(raw.begin(), raw.end(), destination);
        }
    }

    static void encoder_forward(real* out, const int* inp, const real* wte, const real* wpe, int B, int T, int C) {
        cuda::encoder_forward(out, inp, wte, wpe, B, T, C);
    }
    static void encoder_backward(real* dwte, real* dwpe, const real* dout, const int* inp, int B, int T, int C) {
        cuda::encoder_backward(dwte, dwpe, dout, inp, B, T, C);
    }
    static void layernorm_forward(real* out, real* mean, real* rstd, const real* inp, const real* weight,
                                  const real* bias, int N, int C) {
        cuda::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    }
    static void layernorm_backward(real* dinp, real* dweight, real* dbias, const real* dout, const real* inp,
                                   const real* weight, const real* mean, const real* rstd, int N, int C) {
        cuda::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    }
    static void fused_residual_layernorm_forward(real* residual_out, real* out, real* mean, real* rstd, const real* a,
                                                 const real* b, const real* weight, const real* bias, int N, int C) {
        cuda::fused_residual_layernorm_forward(residual_out, out, mean, rstd, a, b, weight, bias, N, C);
    }
    static void matmul_forward(real* out, const real* inp, const real* weight, const real* bias, int N, int C,
                               int OC) {
        cuda::matmul_forward(out, inp, weight, bias, N, C, OC);
    }
    static void matmul_backward(real* dinp, real* dweight, real* dbias, const real* dout, const real* inp,
                                const real* weight, int N, int C, int OC) {
        cuda::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    }
    // a frozen base stored in bf16 (GPT2::bf16_base): native bf16 products, fp32 accumulation and output; what the
    // training commands ask for with mixed precision (model/precision.h)
    static bool stores_frozen_base_in_bf16() { return cuda::matmul_precision() == MatmulPrecision::bf16; }
    static void to_bf16(bf16_bits* out, const real* inp, size_t N) { cuda::to_bf16(out, inp, N); }
    static void matmul_forward_bf16(real* out, const bf16_bits* inp, const bf16_bits* weight, const real* bias, int N,
                                    int C, int OC) {
        cuda::matmul_forward_bf16(out, inp, weight, bias, N, C, OC);
    }
    // What the fused attention forward keeps for the backward, per layer: the log-sum-exp of each row of scores
    // (B,NH,T), from which the backward recomputes the probabilities (no (B,NH,T,T) matrix).
    static size_t attention_state_size(int B, int NH, int T) { return size_t(B) * NH * T; }
    static void attention_forward(real* out, real* lse, const real* qkv, int B, int T, int C, int NH) {
        cuda::attention_forward(out, lse, qkv, B, T, C, NH);
    }
    static void attention_backward(real* dqkv, const real* dout, const real* qkv, const real* out, const real* lse,
                                   int B, int T, int C, int NH) {
        cuda::attention_backward(dqkv, dout, qkv, out, lse, B, T, C, NH);
    }
    // greedy decoding: one attention step against the KV caches, the argmax of each row of logits (out: device)
    static void attention_step_forward(real* out, real* key_cache, real* value_cache, const real* qkv, int position,
                                       int B, int C, int NH, int max_T) {
        cuda::attention_step_forward(out, key_cache, value_cache, qkv, position, B, C, NH, max_T);
    }
    static void argmax_rows(int* out, const real* logits, int N, int V, int Vp) {
        cuda::argmax_rows(out, logits, N, V, Vp);
    }
    // inverted dropout's mask, bit-identical to CpuBackend<float>'s
    static void dropout_mask(real* mask, size_t count, uint64_t seed, float p, uint64_t first = 0) {
        cuda::dropout_mask(mask, count, seed, p, first);
    }
    static void gelu_forward(real* out, const real* inp, size_t N) { cuda::gelu_forward(out, inp, N); }
    static void gelu_backward(real* dinp, const real* inp, const real* dout, size_t N) {
        cuda::gelu_backward(dinp, inp, dout, N);
    }
    static void residual_forward(real* out, const real* a, const real* b, size_t N) {
        cuda::residual_forward(out, a, b, N);
    }
    static void residual_backward(real* da, real* db, const real* dout, size_t N) {
        cuda::residual_backward(da, db, dout, N);
    }
    static void scale(real* x, double factor, size_t N) { cuda::scale(x, float(factor), N); }
    // The fused kernel computes losses and dlogits in one pass; the forward asks for the losses only.
    static void classifier_forward(real* losses, const real* logits, const int* targets, int N, int V, int Vp) {
        cuda::fused_classifier(losses, nullptr, logits, targets, nullptr, 0.0, N, V, Vp);
    }
    static void classifier_backward(real* dlogits, const real* logits, const int* targets, const float* weights,
                                    double weight_sum, int N, int V, int Vp) {
        cuda::fused_classifier(nullptr, dlogits, logits, targets, weights, weight_sum, N, V, Vp);
    }
    // both of the above in one pass; dlogits may be logits (in place)
    static void classifier_forward_backward(real* losses, real* dlogits, const real* logits, const int* targets,
                                            const float* weights, double weight_sum, int N, int V, int Vp) {
        cuda::fused_classifier(losses, dlogits, logits, targets, weights, weight_sum, N, V, Vp);
    }
    static double sum_of_squares(const real* x, size_t N) { return cuda::sum_of_squares(x, N); }
    // data parallelism: x (N) = its sum over every rank, in place (NCCL; a no-op without a launcher)
    static void all_reduce_sum(real* x, size_t N, const char*) { cuda::all_reduce_sum(x, N); }
    static void adamw_update(real* params, const real* grads, real* m, real* v, size_t N, float lr, float beta1,
                             float beta2, float eps, float weight_decay, int t, float grad_scale) {
        cuda::adamw_update(params, grads, m, v, N, lr, beta1, beta2, eps, weight_decay, t, grad_scale);
    }
    // the multi-branch LoRA linear's adapter path (model/cuda/lora_linear.cu)
    static void lora_forward(real* out, real* hidden, const real* inp, const real* A, const real* Bt,
                             const real* block_weights, const real* dropout_mask, real scale, LoraShape shape) {
        cuda::lora_forward(out, hidden, inp, A, Bt, block_weights, dropout_mask, scale, shape);
    }
    // the same in halves, for block weights computed from hidden (AM-LoRA): down, (weights), up; up, (dw), down
    static void lora_down_forward(real* hidden, const real* inp, const real* A, const real* dropout_mask,
                                  LoraShape shape) {
        cuda::lora_down_forward(hidden, inp, A, dropout_mask, shape);
    }
    static void lora_up_forward(real* out, const real* hidden, const real* Bt, const real* block_weights, real scale,
                                LoraShape shape) {
        cuda::lora_up_forward(out, hidden, Bt, block_weights, scale, shape);
    }
    static void lora_up_backward(real* d_hidden, real* dBt, real* d_block_weights, const real* dout,
                                 const real* hidden, const real* Bt, const real* block_weights, real scale,
                                 LoraShape shape) {
        cuda::lora_up_backward(d_hidden, dBt, d_block_weights, dout, hidden, Bt, block_weights, scale, shape);
    }
    static void lora_down_backward(real* dinp, real* dA, const real* d_hidden, const real* inp, const real* A,
                                   const real* dropout_mask, LoraShape shape) {
        cuda::lora_down_backward(dinp, dA, d_hidden, inp, A, dropout_mask, shape);
    }
    static void lora_backward(real* dinp, real* dA, real* dBt, real* d_block_weights, const real* dout,
                              const real* inp, const real* hidden, const real* A, const real* Bt,
                              const real* block_weights, const real* dropout_mask, real scale, LoraShape shape) {
        cuda::lora_backward(dinp, dA, dBt, d_block_weights, dout, inp, hidden, A, Bt, block_weights, dropout_mask,
                            scale, shape);
    }
};
