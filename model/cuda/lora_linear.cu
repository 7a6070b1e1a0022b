// The multi-branch LoRA linear's adapter path on the GPU, the CUDA version of model/cpu/lora_linear.h (the math,
// line by line, is there and in lora/METHODS.md section 1). R = branches * rank; .* = elementwise.
//   forward:  down: h~ = inp .* mask (scratch); hidden = h~ A^T (cuBLAS)
//             up:   weighted = hidden .* w (scratch); out += scale * weighted Bt (cuBLAS)
//   backward: up:   g = scale * dout Bt^T (cuBLAS, into d_hidden); dBt[trainable, :] += scale *
//                   weighted[:, trainable]^T dout (cuBLAS); d_block_weights += per-branch row sums of g .* hidden
//                   and g .*= w, in one kernel
//             down: dA[trainable, :] += g[:, trainable]^T h~ (cuBLAS); dinp += (g A) .* mask (cuBLAS, then a kernel)
// cuBLAS is column-major: a row-major (r, c) matrix with leading dimension ld is, to cuBLAS, its (c, r) transpose
// with the same leading dimension, so a row-major product X = Y Z is computed as the column-major X^T = Z^T Y^T.
// Each call below is written with the row-major product it computes. The trainable columns of a row-major (., R)
// matrix are a window starting `frozen` elements in with leading dimension R; the trainable rows of A (R,C) and
// Bt (R,OC) start frozen * C and frozen * OC elements in. Every product goes through cuda::gemm (matmul_precision.h): true fp32 or bf16 FAST_16BF math. No atomics: deterministic.
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/matmul_precision.h"
#include "model/cuda/scratch.h"
#include "model/cuda/lora_kernels.h"

namespace {

DeviceScratch<float> input_scratch;     // h~ (N,C); in the backward, then gw A (N,C)
DeviceScratch<float> weighted_scratch;  // weighted = hidden .* w (N,R)
DeviceScratch<float> gradient_scratch;  // lora_backward's d_hidden: g, then gw = g .* w (N,R)

constexpr int THREADS = 256;

// out (count) = a .* b
__global__ void multiply_kernel(float* __restrict__ out, const float* __restrict__ a, const float* __restrict__ b,
                                size_t count) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) out[index] = a[index] * b[index];
}

// out (count) += a .* b
__global__ void multiply_add_kernel(float* __restrict__ out, const float* __restrict__ a,
                                    const float* __restrict__ b, size_t count) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) out[index] += a[index] * b[index];
}

// weighted (N,R) = hidden (N,R) .* w (N,branches), w[n,b] broadcast over columns b*rank .. b*rank+rank-1
__global__ void block_weights_forward_kernel(float* __restrict__ weighted, const float* __restrict__ hidden,
                                             const float* __restrict__ block_weights, int N, int branches,
                                             int rank) {
    const int R = branches * rank;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(N) * R) return;
    size_t row = index / R;
    int branch = int(index % R) / rank;
    weighted[index] = hidden[index] * block_weights[row * branches + branch];
}

// One thread per (row n, branch b), over that branch's rank columns of g and hidden (N,R), in order:
//   d_block_weights[n,b] += sum_k g[n,k] hidden[n,k]     (when d_block_weights is not null)
//   g[n,k] *= w[n,b]                                     (when block_weights is not null: g becomes gw)
__global__ void block_weights_backward_kernel(float* __restrict__ d_block_weights, float* __restrict__ g,
                                              const float* __restrict__ hidden,
                                              const float* __restrict__ block_weights, int N, int branches,
                                              int rank) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // n * branches + b
    if (index >= size_t(N) * branches) return;
    size_t first = index * rank;  // = n * R + b * rank: the branch's columns are contiguous in the row
    if (d_block_weights) {
        float sum = 0.0f;
        for (int k = 0; k < rank; k++) sum += g[first + k] * hidden[first + k];
        d_block_weights[index] += sum;
    }
    if (block_weights) {
        float w = block_weights[index];
        for (int k = 0; k < rank; k++) g[first + k] *= w;
    }
}

// h~ (N,C): inp itself without dropout, else inp .* mask in input_scratch
const float* dropped_input(const float* inp, const float* dropout_mask, size_t count) {
    if (!dropout_mask) return inp;
    float* dropped = input_scratch.get(count);
    multiply_kernel<<<ceil_div(count, THREADS), THREADS>>>(dropped, inp, dropout_mask, count);
    CUDA_CHECK_LAUNCH();
    return dropped;
}

// weighted (N,R) = hidden .* w in weighted_scratch, or hidden itself when there are no block weights
const float* weighted_hidden(const float* hidden, const float* block_weights, const LoraShape& s) {
    if (!block_weights) return hidden;
    size_t count = size_t(s.N) * s.branches * s.rank;
    float* weighted = weighted_scratch.get(count);
    block_weights_forward_kernel<<<ceil_div(count, THREADS), THREADS>>>(weighted, hidden, block_weights, s.N,
                                                                        s.branches, s.rank);
    CUDA_CHECK_LAUNCH();
    return weighted;
}

}  // namespace

namespace cuda {

void lora_down_forward(float* hidden, const float* inp, const float* A, const float* dropout_mask, LoraShape s) {
    const int R = s.branches * s.rank;
    const float one = 1.0f, zero = 0.0f;
    const float* dropped = dropped_input(inp, dropout_mask, size_t(s.N) * s.C);
    // hidden (N,R) = h~ (N,C) A^T (C,R): column-major hidden^T (R,N) = A_cm^T (R,C) h~_cm (C,N)
    gemm(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, R, s.N, s.C, &one, A, s.C, dropped, s.C,
                             &zero, hidden, R);
}

void lora_up_forward(float* out, const float* hidden, const float* Bt, const float* block_weights, float scale,
                     LoraShape s) {
    const int R = s.branches * s.rank;
    const float one = 1.0f;
    const float* weighted = weighted_hidden(hidden, block_weights, s);
    // out (N,OC) += scale * weighted (N,R) Bt (R,OC): column-major out^T (OC,N) += scale Bt_cm (OC,R) weighted_cm
    gemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, s.OC, s.N, R, &scale, Bt, s.OC, weighted, R,
                             &one, out, s.OC);
}

void lora_forward(float* out, float* hidden, const float* inp, const float* A, const float* Bt,
                  const float* block_weights, const float* dropout_mask, float scale, LoraShape s) {
    lora_down_forward(hidden, inp, A, dropout_mask, s);
    lora_up_forward(out, hidden, Bt, block_weights, scale, s);
}

void lora_up_backward(float* d_hidden, float* dBt, float* d_block_weights, const float* dout, const float* hidden,
                      const float* Bt, const float* block_weights, float scale, LoraShape s) {
    const int R = s.branches * s.rank;
    const int frozen = s.first_trainable_branch * s.rank;  // frozen columns of hidden / rows of Bt
    const int trainable = R - frozen;
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t handle = cublas_handle();

    // g (N,R) = scale * dout (N,OC) Bt^T (OC,R): column-major g^T (R,N) = scale Bt_cm^T (R,OC) dout_cm (OC,N)
    float* g = d_hidden;
    gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, R, s.N, s.OC, &scale, Bt, s.OC, dout, s.OC, &zero, g,
                             R);

    // dBt[trainable, :] (R_t,OC) += scale * weighted[:, trainable]^T (R_t,N) dout (N,OC):
    // column-major dBt_t^T (OC,R_t) += scale dout_cm (OC,N) weighted_t_cm^T (N,R_t)
    if (dBt && trainable > 0) {
        const float* weighted = weighted_hidden(hidden, block_weights, s);
        gemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.OC, trainable, s.N, &scale, dout, s.OC,
                                 weighted + frozen, R, &one, dBt + size_t(frozen) * s.OC, s.OC);
    }

    // d_block_weights (N,branches) += per-branch row sums of g .* hidden; then g .*= w (d_hidden)
    if (d_block_weights || block_weights) {
        size_t count = size_t(s.N) * s.branches;
        block_weights_backward_kernel<<<ceil_div(count, THREADS), THREADS>>>(d_block_weights, g, hidden,
                                                                             block_weights, s.N, s.branches, s.rank);
        CUDA_CHECK_LAUNCH();
    }
}

void lora_down_backward(float* dinp, float* dA, const float* d_hidden, const float* inp, const float* A,
                        const float* dropout_mask, LoraShape s) {
    const int R = s.branches * s.rank;
    const int frozen = s.first_trainable_branch * s.rank;
    const int trainable = R - frozen;
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t handle = cublas_handle();
    const float* gw = d_hidden;

    // dA[trainable, :] (R_t,C) += gw[:, trainable]^T (R_t,N) h~ (N,C):
    // column-major dA_t^T (C,R_t) += h~_cm (C,N) gw_t_cm^T (N,R_t)
    if (dA && trainable > 0) {
        const float* dropped = dropped_input(inp, dropout_mask, size_t(s.N) * s.C);
        gemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.C, trainable, s.N, &one, dropped, s.C,
                                 gw + frozen, R, &one, dA + size_t(frozen) * s.C, s.C);
    }

    // dinp (N,C) += (gw (N,R) A (R,C)) .* mask: column-major (gw A)^T (C,N) = A_cm (C,R) gw_cm (R,N), straight into
    // dinp without dropout, else into input_scratch (h~ is no longer needed) and then multiplied into dinp
    if (dinp) {
        if (!dropout_mask) {
            gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.C, s.N, R, &one, A, s.C, gw, R, &one, dinp,
                                     s.C);
        } else {
            size_t count = size_t(s.N) * s.C;
            float* product = input_scratch.get(count);
            gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.C, s.N, R, &one, A, s.C, gw, R, &zero,
                                     product, s.C);
            multiply_add_kernel<<<ceil_div(count, THREADS), THREADS>>>(dinp, product, dropout_mask, count);
            CUDA_CHECK_LAUNCH();
        }
    }
}

void lora_backward(float* dinp, float* dA, float* dBt, float* d_block_weights, const float* dout, const float* inp,
                   const float* hidden, const float* A, const float* Bt, const float* block_weights,
                   const float* dropout_mask, float scale, LoraShape s) {
    float* d_hidden = gradient_scratch.get(size_t(s.N) * s.branches * s.rank);
    lora_up_backward(d_hidden, dBt, d_block_weights, dout, hidden, Bt, block_weights, scale, s);
    lora_down_backward(dinp, dA, d_hidden, inp, A, dropout_mask, s);
}

}  // namespace cuda
