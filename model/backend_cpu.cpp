// The CPU backend's kernels (model/backend_cpu.h): each forwards to its Eigen reference in model/cpu/<family>.h (or
// model/cpu/lora_linear.h), with the threads a matrix product gets. They are compiled here once, for float and double,
// so a file that runs the model through the backend does not instantiate the kernels again.
#include "model/backend_cpu.h"

#include "model/cpu/lora_linear.h"
#include "model/cpu/adamw.h"
#include "model/cpu/argmax.h"
#include "model/cpu/attention.h"
#include "model/cpu/classifier.h"
#include "model/cpu/dropout.h"
#include "model/cpu/encoder.h"
#include "model/cpu/gelu.h"
#include "model/cpu/global_norm.h"
#include "model/cpu/kv_attention.h"
#include "model/cpu/layernorm.h"
#include "model/cpu/matmul.h"
#include "model/cpu/residual.h"
#include "model/cpu/threads.h"

template <typename Real>
void CpuBackend<Real>::encoder_forward(real* out, const int* inp, const real* wte, const real* wpe, int B, int T,
                                       int C) {
    cpu::encoder_forward(out, inp, wte, wpe, B, T, C);
}

template <typename Real>
void CpuBackend<Real>::encoder_backward(real* dwte, real* dwpe, const real* dout, const int* inp, int B, int T, int C) {
    cpu::encoder_backward(dwte, dwpe, dout, inp, B, T, C);
}

template <typename Real>
void CpuBackend<Real>::layernorm_forward(real* out, real* mean, real* rstd, const real* inp, const real* weight,
                                         const real* bias, int N, int C) {
    cpu::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
}

template <typename Real>
void CpuBackend<Real>::layernorm_backward(real* dinp, real* dweight, real* dbias, const real* dout, const real* inp,
                                          const real* weight, const real* mean, const real* rstd, int N, int C) {
    cpu::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

template <typename Real>
void CpuBackend<Real>::fused_residual_layernorm_forward(real* residual_out, real* out, real* mean, real* rstd,
                                                        const real* a, const real* b, const real* weight,
                                                        const real* bias, int N, int C) {
    cpu::fused_residual_layernorm_forward(residual_out, out, mean, rstd, a, b, weight, bias, N, C);
}

template <typename Real>
void CpuBackend<Real>::matmul_forward(real* out, const real* inp, const real* weight, const real* bias, int N, int C,
                                      int OC) {
    cpu::ThreadedProduct threads(double(N) * C * OC);
    cpu::matmul_forward(out, inp, weight, bias, N, C, OC);
}

template <typename Real>
void CpuBackend<Real>::matmul_backward(real* dinp, real* dweight, real* dbias, const real* dout, const real* inp,
                                       const real* weight, int N, int C, int OC) {
    cpu::ThreadedProduct threads(double(N) * C * OC);
    cpu::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

template <typename Real>
void CpuBackend<Real>::to_bf16(bf16_bits* out, const real* inp, size_t N) {
    for (size_t i = 0; i < N; i++) out[i] = float_to_bf16(float(inp[i]));
}

template <typename Real>
void CpuBackend<Real>::matmul_forward_bf16(real* out, const bf16_bits* inp, const bf16_bits* weight, const real* bias,
                                           int N, int C, int OC) {
    auto widen = [](const bf16_bits* x, size_t count) {
        std::vector<real> wide(count);
        for (size_t i = 0; i < count; i++) wide[i] = real(bf16_to_float(x[i]));
        return wide;
    };
    const std::vector<real> x = widen(inp, size_t(N) * C), w = widen(weight, size_t(OC) * C);
    cpu::matmul_forward(out, x.data(), w.data(), bias, N, C, OC);
}

template <typename Real>
void CpuBackend<Real>::attention_forward(real* out, real* att, const real* qkv, int B, int T, int C, int NH) {
    cpu::attention_forward(out, att, qkv, B, T, C, NH);
}

template <typename Real>
void CpuBackend<Real>::attention_backward(real* dqkv, const real* dout, const real* qkv, const real* /*out*/,
                                          const real* att, int B, int T, int C, int NH) {
    cpu::attention_backward(dqkv, dout, qkv, att, B, T, C, NH);
}

template <typename Real>
void CpuBackend<Real>::attention_step_forward(real* out, real* key_cache, real* value_cache, const real* qkv,
                                              int position, int B, int C, int NH, int max_T) {
    cpu::ThreadedProduct threads(double(B) * C * (position + 1) * 2);
    cpu::attention_step_forward(out, key_cache, value_cache, qkv, position, B, C, NH, max_T);
}

template <typename Real>
void CpuBackend<Real>::argmax_rows(int* out, const real* logits, int N, int V, int Vp) {
    cpu::argmax_rows(out, logits, N, V, Vp);
}

template <typename Real>
void CpuBackend<Real>::dropout_mask(real* mask, size_t count, uint64_t seed, float p, uint64_t first) {
    cpu::dropout_mask(mask, count, seed, p, first);
}

template <typename Real>
void CpuBackend<Real>::gelu_forward(real* out, const real* inp, size_t N) {
    cpu::gelu_forward(out, inp, N);
}

template <typename Real>
void CpuBackend<Real>::gelu_backward(real* dinp, const real* inp, const real* dout, size_t N) {
    cpu::gelu_backward(dinp, inp, dout, N);
}

template <typename Real>
void CpuBackend<Real>::residual_forward(real* out, const real* a, const real* b, size_t N) {
    cpu::residual_forward(out, a, b, N);
}

template <typename Real>
void CpuBackend<Real>::residual_backward(real* da, real* db, const real* dout, size_t N) {
    cpu::residual_backward(da, db, dout, N);
}

template <typename Real>
void CpuBackend<Real>::scale(real* x, double factor, size_t N) {
    cpu::scale(x, real(factor), N);
}

template <typename Real>
void CpuBackend<Real>::classifier_forward(real* losses, const real* logits, const int* targets, int N, int V, int Vp) {
    cpu::classifier_forward(losses, logits, targets, N, V, Vp);
}

template <typename Real>
void CpuBackend<Real>::classifier_backward(real* dlogits, const real* logits, const int* targets, const float* weights,
                                           double weight_sum, int N, int V, int Vp) {
    cpu::classifier_backward(dlogits, logits, targets, weights, real(weight_sum), N, V, Vp);
}

template <typename Real>
void CpuBackend<Real>::classifier_forward_backward(real* losses, real* dlogits, const real* logits, const int* targets,
                                                   const float* weights, double weight_sum, int N, int V, int Vp) {
    cpu::classifier_forward_backward(losses, dlogits, logits, targets, weights, real(weight_sum), N, V, Vp);
}

template <typename Real>
double CpuBackend<Real>::sum_of_squares(const real* x, size_t N) {
    return cpu::sum_of_squares(x, N);
}

template <typename Real>
void CpuBackend<Real>::adamw_update(real* params, const real* grads, real* m, real* v, size_t N, float lr, float beta1,
                                    float beta2, float eps, float weight_decay, int t, float grad_scale) {
    cpu::adamw_update(params, grads, m, v, N, lr, beta1, beta2, eps, weight_decay, t, grad_scale);
}

template <typename Real>
void CpuBackend<Real>::lora_forward(real* out, real* hidden, const real* inp, const real* A, const real* Bt,
                                    const real* block_weights, const real* dropout_mask, real scale, LoraShape shape) {
    cpu::ThreadedProduct threads(lora_work(shape));
    cpu::lora_forward(out, hidden, inp, A, Bt, block_weights, dropout_mask, scale, shape);
}

template <typename Real>
void CpuBackend<Real>::lora_down_forward(real* hidden, const real* inp, const real* A, const real* dropout_mask,
                                         LoraShape shape) {
    cpu::ThreadedProduct threads(lora_work(shape));
    cpu::lora_down_forward(hidden, inp, A, dropout_mask, shape);
}

template <typename Real>
void CpuBackend<Real>::lora_up_forward(real* out, const real* hidden, const real* Bt, const real* block_weights,
                                       real scale, LoraShape shape) {
    cpu::ThreadedProduct threads(lora_work(shape));
    cpu::lora_up_forward(out, hidden, Bt, block_weights, scale, shape);
}

template <typename Real>
void CpuBackend<Real>::lora_up_backward(real* d_hidden, real* dBt, real* d_block_weights, const real* dout,
                                        const real* hidden, const real* Bt, const real* block_weights, real scale,
                                        LoraShape shape) {
    cpu::ThreadedProduct threads(lora_work(shape));
    cpu::lora_up_backward(d_hidden, dBt, d_block_weights, dout, hidden, Bt, block_weights, scale, shape);
}

template <typename Real>
void CpuBackend<Real>::lora_down_backward(real* dinp, real* dA, const real* d_hidden, const real* inp, const real* A,
                                          const real* dropout_mask, LoraShape shape) {
    cpu::ThreadedProduct threads(lora_work(shape));
    cpu::lora_down_backward(dinp, dA, d_hidden, inp, A, dropout_mask, shape);
}

template <typename Real>
void CpuBackend<Real>::lora_backward(real* dinp, real* dA, real* dBt, real* d_block_weights, const real* dout,
                                     const real* inp, const real* hidden, const real* A, const real* Bt,
                                     const real* block_weights, const real* dropout_mask, real scale, LoraShape shape) {
    cpu::ThreadedProduct threads(lora_work(shape));
    cpu::lora_backward(dinp, dA, dBt, d_block_weights, dout, inp, hidden, A, Bt, block_weights, dropout_mask, scale,
                       shape);
}

template struct CpuBackend<float>;
template struct CpuBackend<double>;
