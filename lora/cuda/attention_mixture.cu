// AM-LoRA's attention over the branches of one adapted linear on the GPU, the CUDA version of
// lora/cpu/attention_mixture.h (the math is written out there and in lora/METHODS.md section 9).
//   project:  P_i = scale Bt_i D_i^T, one strided-batched cuBLAS product over the branches
//   forward:  u_i = hidden_i P_i (strided-batched cuBLAS, into z); z = tanh(u), e_i = z_i . v_i and the sigmoid
//             (one thread per row and branch); the softmax variant: one thread per row over its branches
//   penalty:  one block, rows in a fixed grid-stride order, a fixed-order block sum of the per-row terms
//   backward: de (one thread per row); du = (de_i v_i) .* (1 - z^2) (one thread per element); dv_i += z_i^T de_i,
//             dP_i = hidden_i^T du_i, d_hidden_i += du_i P_i^T (strided-batched cuBLAS)
//   project backward: dBt_i += scale dP_i D_i, dD_i += scale dP_i^T Bt_i (strided-batched cuBLAS)
// cuBLAS is column-major: a row-major (r, c) matrix with leading dimension ld is, to cuBLAS, its (c, r) transpose
// with the same leading dimension, so a row-major product X = Y Z is computed as the column-major X^T = Z^T Y^T.
// Each call below is written with the row-major product it computes. Branch i's columns of hidden (N, t*r) and z
// (N, t*d_a) are windows i*r and i*d_a elements in, with leading dimension t*r and t*d_a.
#include <cmath>

#include "lora/cuda/attention_mixture_kernels.h"
#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int kThreads = 256;
constexpr float kLogFloor = 1e-30f;  // as the reference's LOG_FLOOR

DeviceScratch<float> de_scratch;      // (N,branches)
DeviceScratch<float> du_scratch;      // (N,branches*d_a)
DeviceScratch<double> total_scratch;  // the penalty's total

__device__ inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// One thread per (row n, branch i): z_i[n, :] = tanh(u) in place; w[n,i] = e = z_i[n, :] . v_i, then sigmoid(e)
// unless the softmax variant follows.
__global__ void attention_scores_kernel(float* __restrict__ w, float* __restrict__ z, const float* __restrict__ v,
                                        int N, int branches, int dim, bool sigmoid) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // n * branches + i
    if (index >= size_t(N) * branches) return;
    const int i = int(index % branches);
    float* zi = z + index * dim;  // = n * branches * dim + i * dim
    const float* vi = v + size_t(i) * dim;
    float e = 0.0f;
    for (int k = 0; k < dim; k++) {
        const float value = tanhf(zi[k]);
        zi[k] = value;
        e += value * vi[k];
    }
    w[index] = sigmoid ? sigmoidf(e) : e;
}

// One thread per row: w[n, :] = softmax(w[n, :]) (the scores), max-subtracted.
__global__ void softmax_rows_kernel(float* __restrict__ w, int N, int branches) {
    const size_t n = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (n >= size_t(N)) return;
    float* row = w + n * branches;
    float top = row[0];
    for (int i = 1; i < branches; i++) top = fmaxf(top, row[i]);
    float sum = 0.0f;
    for (int i = 0; i < branches; i++) {
        row[i] = expf(row[i] - top);
        sum += row[i];
    }
    for (int i = 0; i < branches; i++) row[i] /= sum;
}

// One block: dw += the penalty's gradient; *total = lambda * sum_n row_weights[n] * (sum_i w | -sum_i w log w).
__global__ void penalty_kernel(double* __restrict__ total, float* __restrict__ dw, const float* __restrict__ w,
                               const float* __restrict__ row_weights, float lambda, int N, int branches,
                               bool softmax) {
    double sum = 0.0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        const float weight = lambda * row_weights[n];
        if (weight == 0.0f) continue;
        for (int i = 0; i < branches; i++) {
            const size_t k = size_t(n) * branches + i;
            if (softmax) {
                const float log_w = logf(fmaxf(w[k], kLogFloor));
                sum -= double(weight * w[k] * log_w);
                dw[k] -= weight * (log_w + 1.0f);
            } else {
                sum += double(weight * w[k]);
                dw[k] += weight;
            }
        }
    }
    const double block_total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) *total = block_total;
}

// One thread per row: de[n, :] from dw and w: sigmoid de = dw w (1 - w); softmax de_i = w_i (dw_i - w . dw).
__global__ void scores_backward_kernel(float* __restrict__ de, const float* __restrict__ dw,
                                       const float* __restrict__ w, int N, int branches, bool softmax) {
    const size_t n = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (n >= size_t(N)) return;
    const float* wr = w + n * branches;
    const float* dr = dw + n * branches;
    float dot = 0.0f;
    if (softmax)
        for (int i = 0; i < branches; i++) dot += wr[i] * dr[i];
    for (int i = 0; i < branches; i++)
        de[n * branches + i] = softmax ? wr[i] * (dr[i] - dot) : dr[i] * wr[i] * (1.0f - wr[i]);
}

// One thread per element of du (N, branches*d_a): du[n, i*d_a + k] = de[n,i] v_i[k] (1 - z^2).
__global__ void tanh_backward_kernel(float* __restrict__ du, const float* __restrict__ de, const float* __restrict__ z,
                                     const float* __restrict__ v, int N, int branches, int dim) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const size_t Z = size_t(branches) * dim;
    if (index >= size_t(N) * Z) return;
    const size_t n = index / Z, column = index % Z;  // column = i * dim + k, and v is (branches*d_a)
    const float zv = z[index];
    du[index] = de[n * branches + column / dim] * v[column] * (1.0f - zv * zv);
}

}  // namespace

namespace cuda {

void mixture_project(float* P, const float* Bt, const float* D, float scale, MixtureShape s) {
    const float zero = 0.0f;
    // P_i (r,d_a) = scale Bt_i (r,OC) D_i^T (OC,d_a): column-major P_i^T (d_a,r) = scale D_i (d_a,OC) Bt_i^T (OC,r),
    // D_i stored (d_a,OC) row-major is column-major D_i^T (OC,d_a): op T
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, s.dim, s.rank, s.OC, &scale, D,
                                           s.OC, (long long)s.dim * s.OC, Bt, s.OC, (long long)s.rank * s.OC, &zero,
                                           P, s.dim, (long long)s.rank * s.dim, s.branches));
}

void mixture_forward(float* w, float* z, const float* hidden, const float* P, const float* v, MixtureShape s) {
    const int R = s.branches * s.rank, Z = s.branches * s.dim;
    const float one = 1.0f, zero = 0.0f;
    // u_i (N,d_a) = hidden_i (N,r) P_i (r,d_a): column-major u_i^T (d_a,N) = P_i^T (d_a,r) hidden_i^T (r,N)
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, s.dim, s.N, s.rank, &one, P,
                                           s.dim, (long long)s.rank * s.dim, hidden, R, s.rank, &zero, z, Z, s.dim,
                                           s.branches));
    const size_t pairs = size_t(s.N) * s.branches;
    attention_scores_kernel<<<ceil_div(pairs, kThreads), kThreads>>>(w, z, v, s.N, s.branches, s.dim, !s.softmax);
    CUDA_CHECK_LAUNCH();
    if (s.softmax) {
        softmax_rows_kernel<<<ceil_div(size_t(s.N), kThreads), kThreads>>>(w, s.N, s.branches);
        CUDA_CHECK_LAUNCH();
    }
}

double mixture_penalty(float* dw, const float* w, const float* row_weights, float lambda, MixtureShape s) {
    double* total = total_scratch.get(1);
    penalty_kernel<<<1, kThreads>>>(total, dw, w, row_weights, lambda, s.N, s.branches, s.softmax);
    CUDA_CHECK_LAUNCH();
    double host = 0;
    copy_to_host(&host, total, sizeof(double));
    return host;
}

void mixture_backward(float* d_hidden, float* dP, float* dv, const float* dw, const float* w, const float* z,
                      const float* hidden, const float* P, const float* v, MixtureShape s) {
    const int R = s.branches * s.rank, Z = s.branches * s.dim;
    const int first = s.first_trainable_branch, trainable = s.branches - first;
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t handle = cublas_handle();
    float* de = de_scratch.get(size_t(s.N) * s.branches);
    float* du = du_scratch.get(size_t(s.N) * Z);
    scores_backward_kernel<<<ceil_div(size_t(s.N), kThreads), kThreads>>>(de, dw, w, s.N, s.branches, s.softmax);
    CUDA_CHECK_LAUNCH();
    tanh_backward_kernel<<<ceil_div(size_t(s.N) * Z, kThreads), kThreads>>>(du, de, z, v, s.N, s.branches, s.dim);
    CUDA_CHECK_LAUNCH();
    // d_hidden_i (N,r) += du_i (N,d_a) P_i^T (d_a,r): column-major d_hidden_i^T (r,N) += P_i (r,d_a) du_i^T (d_a,N),
    // P_i stored (r,d_a) row-major is column-major P_i^T: op T
    CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.rank, s.N, s.dim, &one, P, s.dim,
                                           (long long)s.rank * s.dim, du, Z, s.dim, &one, d_hidden, R, s.rank,
                                           s.branches));
    if (trainable <= 0) return;
    // dv_i (1,d_a) += de_i^T (1,N) z_i (N,d_a): column-major dv_i (d_a,1) += z_i^T (d_a,N) de_i (N,1), de_i the
    // column i of de (N,branches): a column-major (1,N) matrix with leading dimension branches, op T
    CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.dim, 1, s.N, &one, z + size_t(first) * s.dim,
                                           Z, s.dim, de + first, s.branches, 1, &one, dv + size_t(first) * s.dim,
                                           s.dim, s.dim, trainable));
    // dP_i (r,d_a) = hidden_i^T (r,N) du_i (N,d_a): column-major dP_i^T (d_a,r) = du_i^T (d_a,N) hidden_i (N,r)
    CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.dim, s.rank, s.N, &one,
                                           du + size_t(first) * s.dim, Z, s.dim, hidden + size_t(first) * s.rank, R,
                                           s.rank, &zero, dP + size_t(first) * s.rank * s.dim, s.dim,
                                           (long long)s.rank * s.dim, trainable));
}

void mixture_project_backward(float* dBt, float* dD, const float* dP, const float* Bt, const float* D, float scale,
                              MixtureShape s) {
    const int first = s.first_trainable_branch, trainable = s.branches - first;
    if (trainable <= 0) return;
    const float one = 1.0f;
    cublasHandle_t handle = cublas_handle();
    const size_t rd = size_t(s.rank) * s.dim, ro = size_t(s.rank) * s.OC, dO = size_t(s.dim) * s.OC;
    // dBt_i (r,OC) += scale dP_i (r,d_a) D_i (d_a,OC): column-major dBt_i^T (OC,r) += scale D_i^T (OC,d_a) dP_i^T (d_a,r)
    if (dBt)
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.OC, s.rank, s.dim, &scale,
                                               D + first * dO, s.OC, (long long)dO, dP + first * rd, s.dim,
                                               (long long)rd, &one, dBt + first * ro, s.OC, (long long)ro, trainable));
    // dD_i (d_a,OC) += scale dP_i^T (d_a,r) Bt_i (r,OC): column-major dD_i^T (OC,d_a) += scale Bt_i^T (OC,r) dP_i (r,d_a),
    // dP_i stored (r,d_a) row-major is column-major dP_i^T: op T
    if (dD)
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.OC, s.dim, s.rank, &scale,
                                               Bt + first * ro, s.OC, (long long)ro, dP + first * rd, s.dim,
                                               (long long)rd, &one, dD + first * dO, s.OC, (long long)dO, trainable));
}

}  // namespace cuda
