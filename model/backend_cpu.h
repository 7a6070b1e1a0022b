// The CPU backend: the Eigen reference every CUDA kernel is checked against. A backend is a struct of
// static functions with the same names and arguments in every backend; the model orchestration
// (model/gpt2.h) is a template over it, so the choice is made once, at compile time, with no virtual
// call per kernel. Real is float for training and double for finite-difference gradient checks. The kernels are
// declared here and compiled once, for both, in model/backend_cpu.cpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "model/lora_shape.h"
#include "model/bf16.h"
#include "model/distributed.h"

template <typename Real>
struct CpuBackend {
    using real = Real;
    static const char* name() { return "cpu"; }
    // Threads (model/cpu/threads.h): the kernels split their own rows; a matrix product runs on every thread when it
    // is large (cpu::ThreadedProduct, given its multiply-adds), on one otherwise.
    // The multiply-adds of a LoRA linear's adapter products: (N, C) through (C, branches r) to (N, OC).
    static double lora_work(const LoraShape& s) { return double(s.N) * (s.C + s.OC) * s.branches * s.rank; }

    // memory: zero-initialised host arrays, 64-byte aligned. The alignment is part of determinism: Eigen's
    // vector kernels split work by the address's alignment, so a buffer that lands elsewhere would round
    // differently and a resumed run would drift from the uninterrupted one.
    template <typename U>
    static U* allocate(size_t count) {
        size_t bytes = (std::max<size_t>(count, 1) * sizeof(U) + 63) / 64 * 64;
        void* memory = std::aligned_alloc(64, bytes);
        if (!memory) throw std::bad_alloc();
        std::memset(memory, 0, bytes);
        return static_cast<U*>(memory);
    }
    template <typename U>
    static void release(U* memory) { std::free(memory); }
    template <typename U>
    static void zero(U* memory, size_t count) { std::fill(memory, memory + count, U(0)); }
    // host <-> backend copies, converting element types where they differ (float <-> double)
    template <typename Destination, typename Source>
    static void upload(Destination* destination, const Source* source, size_t count) {
        std::copy(source, source + count, destination);
    }
    template <typename Destination, typename Source>
    static void download(Destination* destination, const Source* source, size_t count) {
        std::copy(source, source + count, destination);
    }

    // kernels: see model/cpu/<family>.h for shapes and math
    static void encoder_forward(real* out, const int* inp, const real* wte, const real* wpe, int B, int T, int C);
    static void encoder_backward(real* dwte, real* dwpe, const real* dout, const int* inp, int B, int T, int C);
    static void layernorm_forward(real* out, real* mean, real* rstd, const real* inp, const real* weight,
                                  const real* bias, int N, int C);
    static void layernorm_backward(real* dinp, real* dweight, real* dbias, const real* dout, const real* inp,
                                   const real* weight, const real* mean, const real* rstd, int N, int C);
    static void fused_residual_layernorm_forward(real* residual_out, real* out, real* mean, real* rstd, const real* a,
                                                 const real* b, const real* weight, const real* bias, int N, int C);
    static void matmul_forward(real* out, const real* inp, const real* weight, const real* bias, int N, int C,
                               int OC);
    static void matmul_backward(real* dinp, real* dweight, real* dbias, const real* dout, const real* inp,
                                const real* weight, int N, int C, int OC);
    // A frozen base stored in bf16 (GPT2::bf16_base), emulated as the reference of the CUDA path: the operands are
    // rounded as CUDA rounds them (model/bf16.h), widened back exactly, and multiplied by the fp32 product above.
    // The training commands never ask for it here (the CPU computes in fp32); the tests set it themselves.
    static bool stores_frozen_base_in_bf16() { return false; }
    static void to_bf16(bf16_bits* out, const real* inp, size_t N);
    static void matmul_forward_bf16(real* out, const bf16_bits* inp, const bf16_bits* weight, const real* bias, int N,
                                    int C, int OC);
    // What the attention forward keeps for the backward, per layer: the probabilities att (B,NH,T,T).
    static size_t attention_state_size(int B, int NH, int T) { return size_t(B) * NH * T * T; }
    static void attention_forward(real* out, real* att, const real* qkv, int B, int T, int C, int NH);
    // out (the forward's output) is the CUDA backend's; the reference needs only the probabilities
    static void attention_backward(real* dqkv, const real* dout, const real* qkv, const real* /*out*/,
                                   const real* att, int B, int T, int C, int NH);
    // greedy decoding: one attention step against the KV caches, the argmax of each row of logits
    static void attention_step_forward(real* out, real* key_cache, real* value_cache, const real* qkv, int position,
                                       int B, int C, int NH, int max_T);
    static void argmax_rows(int* out, const real* logits, int N, int V, int Vp);
    // inverted dropout's mask (model/cpu/dropout.h): 1/(1-p) or 0, from a hash of (seed, index)
    static void dropout_mask(real* mask, size_t count, uint64_t seed, float p, uint64_t first = 0);
    static void gelu_forward(real* out, const real* inp, size_t N);
    static void gelu_backward(real* dinp, const real* inp, const real* dout, size_t N);
    static void residual_forward(real* out, const real* a, const real* b, size_t N);
    static void residual_backward(real* da, real* db, const real* dout, size_t N);
    static void scale(real* x, double factor, size_t N);
    static void classifier_forward(real* losses, const real* logits, const int* targets, int N, int V, int Vp);
    static void classifier_backward(real* dlogits, const real* logits, const int* targets, const float* weights,
                                    double weight_sum, int N, int V, int Vp);
    // both of the above; dlogits may be logits (in place)
    static void classifier_forward_backward(real* losses, real* dlogits, const real* logits, const int* targets,
                                            const float* weights, double weight_sum, int N, int V, int Vp);
    static double sum_of_squares(const real* x, size_t N);
    // data parallelism: x (N) = its sum over every rank, in place (MPI; a no-op without a launcher)
    static void all_reduce_sum(real* x, size_t N, const char* what) { all_reduce_sum_host(x, N, what); }
    static void adamw_update(real* params, const real* grads, real* m, real* v, size_t N, float lr, float beta1,
                             float beta2, float eps, float weight_decay, int t, float grad_scale);
    // the multi-branch LoRA linear's adapter path (model/cpu/lora_linear.h)
    static void lora_forward(real* out, real* hidden, const real* inp, const real* A, const real* Bt,
                             const real* block_weights, const real* dropout_mask, real scale, LoraShape shape);
    // the same in halves, for block weights computed from hidden (AM-LoRA): down, (weights), up; up, (dw), down
    static void lora_down_forward(real* hidden, const real* inp, const real* A, const real* dropout_mask,
                                  LoraShape shape);
    static void lora_up_forward(real* out, const real* hidden, const real* Bt, const real* block_weights, real scale,
                                LoraShape shape);
    static void lora_up_backward(real* d_hidden, real* dBt, real* d_block_weights, const real* dout,
                                 const real* hidden, const real* Bt, const real* block_weights, real scale,
                                 LoraShape shape);
    static void lora_down_backward(real* dinp, real* dA, const real* d_hidden, const real* inp, const real* A,
                                   const real* dropout_mask, LoraShape shape);
    static void lora_backward(real* dinp, real* dA, real* dBt, real* d_block_weights, const real* dout,
                              const real* inp, const real* hidden, const real* A, const real* Bt,
                              const real* block_weights, const real* dropout_mask, real scale, LoraShape shape);
};
