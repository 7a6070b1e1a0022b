// Causal multi-head self-attention on packed qkv (B,T,3C), the CUDA version of model/cpu/attention.h.
// Strategy (the approach of llm.c's CUDA attention; see dev/cuda/attention.cu, version 2):
//   forward:  permute qkv -> Q, K, V (B,NH,T,hs) in scratch; S = Q K^T into att (cuBLAS, batched over B*NH);
//             causal softmax of each row of att in place (one warp per row, scale 1/sqrt(hs));
//             Y = P V (cuBLAS) into scratch (B,NH,T,hs); unpermute Y -> out (B,T,C).
//   backward: permute qkv -> Q, K, V again and dout -> dY (B,NH,T,hs); dP = dY V^T and dV = P^T dY (cuBLAS);
//             softmax backward dS = P * (dP - rowsum(dP * P)) / sqrt(hs) in place (one warp per row);
//             dQ = dS K and dK = dS^T Q (cuBLAS); dQ, dK, dV are added into dqkv (accumulates, as the reference).
// cuBLAS is column-major: a row-major (r, c) matrix with leading dimension c is, to cuBLAS, its (c, r) transpose
// with the same leading dimension. So a row-major product C = A B is computed as the column-major C^T = B^T A^T,
// i.e. with the operands swapped. Each call below is written with the row-major product it computes.
// The handle uses CUBLAS_DEFAULT_MATH (true fp32, no TF32). Everything is deterministic: no atomics, and cuBLAS
// gives bit-identical results run to run on the same GPU.
#include <cmath>

#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

DeviceScratch<float> qkv_scratch;   // Q, K, V (B,NH,T,hs) each, one after the other
DeviceScratch<float> y_scratch;     // forward: Y (B,NH,T,hs); backward: dY (B,NH,T,hs)
DeviceScratch<float> dqkv_scratch;  // backward: dQ, dK, dV (B,NH,T,hs) each
DeviceScratch<float> datt_scratch;  // backward: dP, then dS in place (B,NH,T,T)

constexpr int THREADS = 256;
constexpr int WARPS_PER_BLOCK = 4;  // softmax kernels: one warp per row

// qkv (B,T,3,NH,hs) -> q, k, v (B,NH,T,hs). One thread per element of qkv: reads are coalesced, writes are
// contiguous in runs of hs.
__global__ void permute_kernel(float* __restrict__ q, float* __restrict__ k, float* __restrict__ v,
                               const float* __restrict__ qkv, int B, int T, int NH, int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * 3 * C) return;
    int d = int(index % hs);
    int h = int((index / hs) % NH);
    int which = int((index / C) % 3);  // 0 = q, 1 = k, 2 = v
    int t = int((index / (3 * size_t(C))) % T);
    int b = int(index / (3 * size_t(C) * T));
    size_t destination = ((size_t(b) * NH + h) * T + t) * hs + d;
    float* target = which == 0 ? q : (which == 1 ? k : v);
    target[destination] = qkv[index];
}

// dqkv (B,T,3,NH,hs) += dq, dk, dv (B,NH,T,hs). One thread per element of dqkv: each element is read, added
// to and written by exactly one thread.
__global__ void permute_backward_kernel(float* __restrict__ dqkv, const float* __restrict__ dq,
                                        const float* __restrict__ dk, const float* __restrict__ dv, int B, int T,
                                        int NH, int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * 3 * C) return;
    int d = int(index % hs);
    int h = int((index / hs) % NH);
    int which = int((index / C) % 3);
    int t = int((index / (3 * size_t(C))) % T);
    int b = int(index / (3 * size_t(C) * T));
    size_t source = ((size_t(b) * NH + h) * T + t) * hs + d;
    const float* gradient = which == 0 ? dq : (which == 1 ? dk : dv);
    dqkv[index] += gradient[source];
}

// y (B,NH,T,hs) -> out (B,T,NH,hs) = (B,T,C). One thread per element of out.
__global__ void unpermute_kernel(float* __restrict__ out, const float* __restrict__ y, int B, int T, int NH,
                                 int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C) return;
    int d = int(index % hs);
    int h = int((index / hs) % NH);
    int t = int((index / C) % T);
    int b = int(index / (size_t(C) * T));
    out[index] = y[((size_t(b) * NH + h) * T + t) * hs + d];
}

// dout (B,T,NH,hs) -> dy (B,NH,T,hs): the backward of unpermute_kernel. One thread per element of dout.
__global__ void unpermute_backward_kernel(float* __restrict__ dy, const float* __restrict__ dout, int B, int T,
                                          int NH, int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C) return;
    int d = int(index % hs);
    int h = int((index / hs) % NH);
    int t = int((index / C) % T);
    int b = int(index / (size_t(C) * T));
    dy[((size_t(b) * NH + h) * T + t) * hs + d] = dout[index];
}

__device__ float warp_max(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    return value;
}

__device__ float warp_sum(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

// att (B*NH*T rows of T): on entry the raw scores S = Q K^T, on exit the probabilities
// P[t, s] = softmax_s(S[t, s] * scale) over s <= t, and exactly 0 for s > t.
// One warp per row: each lane keeps a running max and sum over its columns s = lane, lane + 32, ... (online
// softmax), the lanes' (max, sum) pairs are merged by shuffles, then the row is written.
__global__ void softmax_forward_kernel(float* __restrict__ att, int rows, int T, float scale) {
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;  // whole warps leave together
    int t = row % T;
    float* p = att + size_t(row) * T;

    float max_value = -INFINITY, sum = 0.0f;
    for (int s = lane; s <= t; s += 32) {
        float x = p[s] * scale;
        if (x > max_value) {
            sum = sum * expf(max_value - x) + 1.0f;  // expf(-inf) = 0 on a lane's first column
            max_value = x;
        } else {
            sum += expf(x - max_value);
        }
    }
    float row_max = warp_max(max_value);  // finite: column 0 is always in the row
    // lanes with no column (t < lane) have sum 0 and max -inf: expf(-inf) = 0 keeps them out
    float row_sum = warp_sum(sum * expf(max_value - row_max));
    for (int s = lane; s < T; s += 32) p[s] = s <= t ? expf(p[s] * scale - row_max) / row_sum : 0.0f;
}

// datt (B*NH*T rows of T): on entry dP, on exit dS = P * (dP - sum_s dP[t, s] P[t, s]) * scale, zero for s > t
// (where P is zero). One warp per row.
__global__ void softmax_backward_kernel(float* __restrict__ datt, const float* __restrict__ att, int rows, int T,
                                        float scale) {
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    int t = row % T;
    float* dp = datt + size_t(row) * T;
    const float* p = att + size_t(row) * T;

    float dot = 0.0f;
    for (int s = lane; s <= t; s += 32) dot += dp[s] * p[s];
    dot = warp_sum(dot);
    for (int s = lane; s < T; s += 32) dp[s] = s <= t ? p[s] * (dp[s] - dot) * scale : 0.0f;
}

// The sizes both directions derive from (B, T, C, NH).
struct AttentionShape {
    int hs;                  // head size C / NH
    int batches;             // B * NH independent (T,T) problems
    int rows;                // B * NH * T rows of att
    size_t head_size;        // elements of one of Q, K, V in (B,NH,T,hs): B * T * C
    long long head_stride;   // T * hs: one (b,h) block of Q, K, V, Y
    long long att_stride;    // T * T: one (b,h) block of att
    float scale;             // 1 / sqrt(hs)
    AttentionShape(int B, int T, int C, int NH)
        : hs(C / NH), batches(B * NH), rows(B * NH * T), head_size(size_t(B) * T * C),
          head_stride((long long)T * (C / NH)), att_stride((long long)T * T), scale(1.0f / std::sqrt(float(C / NH))) {}
};

struct Heads {
    float *q, *k, *v;  // each (B,NH,T,hs), in qkv_scratch
};

// Q, K, V of qkv (B,T,3C), permuted into qkv_scratch.
Heads permute_heads(const float* qkv, int B, int T, int NH, const AttentionShape& s) {
    Heads heads;
    heads.q = qkv_scratch.get(3 * s.head_size);
    heads.k = heads.q + s.head_size;
    heads.v = heads.k + s.head_size;
    permute_kernel<<<ceil_div(3 * s.head_size, THREADS), THREADS>>>(heads.q, heads.k, heads.v, qkv, B, T, NH, s.hs);
    CUDA_CHECK_LAUNCH();
    return heads;
}

}  // namespace

namespace cuda {

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
    const AttentionShape s(B, T, C, NH);
    const int hs = s.hs, batches = s.batches;
    const size_t head_size = s.head_size;
    const long long head_stride = s.head_stride, att_stride = s.att_stride;
    const float one = 1.0f, zero = 0.0f;

    const Heads heads = permute_heads(qkv, B, T, NH, s);
    const float *q = heads.q, *k = heads.k, *v = heads.v;
    float* y = y_scratch.get(head_size);

    // Per (b,h): S (T,T) = Q (T,hs) K^T, row-major, into att. Column-major: S^T (T,T) = K_cm^T Q_cm, where
    // K_cm = K seen column-major = K^T (hs,T) with ld hs, likewise Q_cm = Q^T (hs,T).
    //   m = T, n = T, k = hs; A = k (op T, lda hs); B = q (op N, ldb hs); C = att (ldc T).
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, &one, k, hs,
                                           head_stride, q, hs, head_stride, &zero, att, T, att_stride, batches));

    softmax_forward_kernel<<<ceil_div(s.rows, WARPS_PER_BLOCK), WARPS_PER_BLOCK * 32>>>(att, s.rows, T, s.scale);
    CUDA_CHECK_LAUNCH();

    // Per (b,h): Y (T,hs) = P (T,T) V (T,hs), row-major. Column-major: Y^T (hs,T) = V_cm (hs,T) P_cm (T,T),
    // where P_cm = P^T with ld T.
    //   m = hs, n = T, k = T; A = v (op N, lda hs); B = att (op N, ldb T); C = y (ldc hs).
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, &one, v, hs,
                                           head_stride, att, T, att_stride, &zero, y, hs, head_stride, batches));

    unpermute_kernel<<<ceil_div(head_size, THREADS), THREADS>>>(out, y, B, T, NH, hs);
    CUDA_CHECK_LAUNCH();
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int T, int C,
                        int NH) {
    const AttentionShape s(B, T, C, NH);
    const int hs = s.hs, batches = s.batches;
    const size_t head_size = s.head_size;
    const long long head_stride = s.head_stride, att_stride = s.att_stride;
    const float one = 1.0f, zero = 0.0f;

    const Heads heads = permute_heads(qkv, B, T, NH, s);
    const float *q = heads.q, *k = heads.k, *v = heads.v;
    float* dy = y_scratch.get(head_size);
    float* dq = dqkv_scratch.get(3 * head_size);
    float* dk = dq + head_size;
    float* dv = dk + head_size;
    float* datt = datt_scratch.get(size_t(batches) * T * T);

    unpermute_backward_kernel<<<ceil_div(head_size, THREADS), THREADS>>>(dy, dout, B, T, NH, hs);
    CUDA_CHECK_LAUNCH();

    // Per (b,h): dP (T,T) = dY (T,hs) V^T, row-major. Column-major: dP^T = V_cm^T dY_cm (as S = Q K^T above).
    //   m = T, n = T, k = hs; A = v (op T, lda hs); B = dy (op N, ldb hs); C = datt (ldc T).
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, &one, v, hs,
                                           head_stride, dy, hs, head_stride, &zero, datt, T, att_stride, batches));
    // Per (b,h): dV (T,hs) = P^T (T,T) dY (T,hs), row-major. Column-major: dV^T (hs,T) = dY_cm (hs,T) P_cm^T,
    // where P_cm = P^T (ld T), so P_cm^T = P.
    //   m = hs, n = T, k = T; A = dy (op N, lda hs); B = att (op T, ldb T); C = dv (ldc hs).
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, &one, dy, hs,
                                           head_stride, att, T, att_stride, &zero, dv, hs, head_stride, batches));

    softmax_backward_kernel<<<ceil_div(s.rows, WARPS_PER_BLOCK), WARPS_PER_BLOCK * 32>>>(datt, att, s.rows, T,
                                                                                        s.scale);
    CUDA_CHECK_LAUNCH();

    // Per (b,h): dQ (T,hs) = dS (T,T) K (T,hs), row-major (dS already carries 1/sqrt(hs)). Column-major:
    // dQ^T (hs,T) = K_cm (hs,T) dS_cm (T,T) (as Y = P V above).
    //   m = hs, n = T, k = T; A = k (op N, lda hs); B = datt (op N, ldb T); C = dq (ldc hs).
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, &one, k, hs,
                                           head_stride, datt, T, att_stride, &zero, dq, hs, head_stride, batches));
    // Per (b,h): dK (T,hs) = dS^T (T,T) Q (T,hs), row-major. Column-major: dK^T (hs,T) = Q_cm (hs,T) dS_cm^T
    // (as dV = P^T dY above).
    //   m = hs, n = T, k = T; A = q (op N, lda hs); B = datt (op T, ldb T); C = dk (ldc hs).
    CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, &one, q, hs,
                                           head_stride, datt, T, att_stride, &zero, dk, hs, head_stride, batches));

    permute_backward_kernel<<<ceil_div(3 * head_size, THREADS), THREADS>>>(dqkv, dq, dk, dv, B, T, NH, hs);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
