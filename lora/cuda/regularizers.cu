// The adapter regularisers of O-LoRA and N-LoRA on the GPU, the CUDA version of lora/cpu/regularizers.h (the math,
// line by line, is there and in lora/METHODS.md sections 5 and 6). For one adapted linear:
//   orthogonality: M = A_old A_t^T (cuBLAS, scratch); G = sign(M) or 2 M and the partial sums of |M| or M^2 (one
//                  kernel); the partials summed in a fixed order (cuda::sum_partials, one block);
//                  dA_t += weight * G^T A_old (cuBLAS)
//   L2 norms:      ||A_t||, ||Bt_t|| by cuda::sum_of_squares (model/cuda/global_norm.cu); dX += weight / ||X|| * X
//                  (a kernel)
//   L1 of update:  P = B_t A_t (or A_t B_t, rr) (cuBLAS, scratch); S = sign(P) in place with the partial sums of
//                  |P| (the same kernel as above); dBt_t, dA_t += products with S (cuBLAS)
// cuBLAS is column-major: a row-major (r, c) matrix with leading dimension ld is, to cuBLAS, its (c, r) transpose
// with the same leading dimension, so a row-major product X = Y Z is computed as the column-major X^T = Z^T Y^T.
// Each call below is written with the row-major product it computes (as in model/cuda/lora_linear.cu).
// Reductions: a block count that depends only on the element count, a fixed thread-to-element assignment and
// fixed-order sums in double, no atomics: the same inputs give bit-identical losses and gradients.
#include <algorithm>
#include <cmath>
#include <string>

#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "lora/cuda/regularizer_kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 256;  // partial sums of stage 1, at most

DeviceScratch<float> product_scratch;   // M (k,r), P (out,in) or Q (r,r); then their sign / 2 M
DeviceScratch<double> partial_scratch;  // the stage-1 partial sums

__device__ inline float sign(float x) { return float((x > 0.0f) - (x < 0.0f)); }

// Stage 1, over a grid-stride loop: for every element x of values (count),
//   squared = false: values[i] = sign(x), partial sum of |x|
//   squared = true:  values[i] = 2 x,     partial sum of x^2
// partials[block] = the block's sum, in double.
__global__ void gradient_and_partial_sums_kernel(double* __restrict__ partials, float* __restrict__ values,
                                                 size_t count, bool squared) {
    double sum = 0.0;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
        const float x = values[i];
        const double value = x;
        if (squared) {
            sum += value * value;
            values[i] = 2.0f * x;
        } else {
            sum += fabs(value);
            values[i] = sign(x);
        }
    }
    const double total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// out (count) += factor * x
__global__ void scaled_add_kernel(float* __restrict__ out, const float* __restrict__ x, float factor, size_t count) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) out[i] += factor * x[i];
}

// values (count) becomes sign(values) (or 2 * values when squared); returns sum |values| (or sum values^2) of the
// values before, in double, on the host.
double gradient_and_sum(float* values, size_t count, bool squared) {
    if (count == 0) return 0.0;
    const int blocks = std::min<int>(kMaxBlocks, ceil_div(count, kThreads));
    double* partials = partial_scratch.get(kMaxBlocks);
    gradient_and_partial_sums_kernel<<<blocks, kThreads>>>(partials, values, count, squared);
    CUDA_CHECK_LAUNCH();
    return cuda::sum_partials(partials, blocks);
}

}  // namespace

namespace cuda {

double orthogonality_loss(const float* A_old, const float* A_t, float* dA_t, int k, int r, int in, float weight,
                          bool squared) {
    if (k == 0 || r == 0) return 0.0;
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t handle = cublas_handle();
    // M (k,r) = A_old (k,in) A_t^T (in,r): column-major M^T (r,k) = A_t_cm^T (r,in) A_old_cm (in,k)
    float* M = product_scratch.get(size_t(k) * r);
    CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, r, k, in, &one, A_t, in, A_old, in, &zero, M, r));
    // G (k,r) = sign(M) or 2 M, in place; the sum of |M| or M^2
    const double loss = double(weight) * gradient_and_sum(M, size_t(k) * r, squared);
    // dA_t (r,in) += weight * G^T (r,k) A_old (k,in): column-major dA_t^T (in,r) += A_old_cm (in,k) G_cm^T (k,r)
    if (dA_t)
        CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, in, r, k, &weight, A_old, in, M, r, &one, dA_t, in));
    return loss;
}

double l2_norm_loss(const float* A_t, const float* Bt_t, float* dA_t, float* dBt_t, int r, int in, int out,
                    float weight) {
    const size_t a_count = size_t(r) * in, b_count = size_t(r) * out;
    const double a_norm = std::sqrt(sum_of_squares(A_t, a_count)), b_norm = std::sqrt(sum_of_squares(Bt_t, b_count));
    // dX += weight / ||X|| * X, nothing for a norm of 0
    if (dA_t && a_norm > 0) {
        scaled_add_kernel<<<ceil_div(a_count, kThreads), kThreads>>>(dA_t, A_t, float(double(weight) / a_norm),
                                                                      a_count);
        CUDA_CHECK_LAUNCH();
    }
    if (dBt_t && b_norm > 0) {
        scaled_add_kernel<<<ceil_div(b_count, kThreads), kThreads>>>(dBt_t, Bt_t, float(double(weight) / b_norm),
                                                                      b_count);
        CUDA_CHECK_LAUNCH();
    }
    return double(weight) * (a_norm + b_norm);
}

double l1_update_loss(const float* A_t, const float* Bt_t, float* dA_t, float* dBt_t, int r, int in, int out,
                      float weight, bool rr) {
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t handle = cublas_handle();
    if (rr) {
        if (in != out)
            fail("N-LoRA's rr form penalises A_t B_t, which needs a square module: this one is " + std::to_string(in) +
                 " -> " + std::to_string(out));
        const int c = in;
        // Q (r,r) = A_t (r,c) Bt_t^T (c,r): column-major Q^T (r,r) = Bt_t_cm^T (r,c) A_t_cm (c,r)
        float* Q = product_scratch.get(size_t(r) * r);
        CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, r, r, c, &one, Bt_t, c, A_t, c, &zero, Q, r));
        // S (r,r) = sign(Q), in place; the sum of |Q|
        const double loss = double(weight) * gradient_and_sum(Q, size_t(r) * r, false);
        // dA_t (r,c) += weight * S (r,r) Bt_t (r,c): column-major dA_t^T (c,r) += Bt_t_cm (c,r) S_cm (r,r)
        if (dA_t)
            CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, c, r, r, &weight, Bt_t, c, Q, r, &one, dA_t, c));
        // dBt_t (r,c) += weight * S^T (r,r) A_t (r,c): column-major dBt_t^T (c,r) += A_t_cm (c,r) S_cm^T (r,r)
        if (dBt_t)
            CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, c, r, r, &weight, A_t, c, Q, r, &one, dBt_t, c));
        return loss;
    }
    // P (out,in) = Bt_t^T (out,r) A_t (r,in): column-major P^T (in,out) = A_t_cm (in,r) Bt_t_cm^T (r,out)
    float* P = product_scratch.get(size_t(out) * in);
    CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, in, out, r, &one, A_t, in, Bt_t, out, &zero, P, in));
    // S (out,in) = sign(P), in place; the sum of |P|
    const double loss = double(weight) * gradient_and_sum(P, size_t(out) * in, false);
    // dBt_t (r,out) += weight * A_t (r,in) S^T (in,out): column-major dBt_t^T (out,r) += S_cm^T (out,in) A_t_cm (in,r)
    if (dBt_t)
        CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, r, in, &weight, P, in, A_t, in, &one, dBt_t,
                                 out));
    // dA_t (r,in) += weight * Bt_t (r,out) S (out,in): column-major dA_t^T (in,r) += S_cm (in,out) Bt_t_cm (out,r)
    if (dA_t)
        CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, in, r, out, &weight, P, in, Bt_t, out, &one, dA_t,
                                 in));
    return loss;
}

}  // namespace cuda
