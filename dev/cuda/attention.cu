// Kernel lab: causal multi-head self-attention, forward and backward, on packed qkv (B,T,3C).
// Build and run (from the repository root, on a GPU host):
//   make lab && ./build/lab/attention        every version;   ./build/lab/attention 3   version 3 only
// Each version is checked against the CPU reference below at small and odd shapes, then timed at GPT-2 124M shapes
// (B=8 and B=16, T=1024, C=768, NH=12). Exits non-zero when a check fails. The last line sums up the shipped
// version (3).
//
// The math (per batch b and head h; hs = C/NH; Q, K, V the (T,hs) slices of qkv):
//   forward:  S = Q K^T / sqrt(hs); P = row softmax of S over s <= t (0 above the diagonal); out = P V
//   backward: dP = dO V^T; dV = P^T dO; dS = P * (dP - rowsum(dP * P)) / sqrt(hs); dQ = dS K; dK = dS^T Q,
//             dQ, dK, dV accumulated (+=) into dqkv.
// Versions:
//   1  naive: forward one thread per (b,h,t) computing its row of scores, softmax and output; backward one thread
//      per (b,h,t) for the row of dS and dQ, then one thread per (b,h,s) gathering dK, dV down column s (no atomics).
//   2  permute qkv into (B,NH,T,hs) tensors, cuBLAS strided-batched products (true fp32), one warp per row for the
//      softmax and its backward, unpermute. The probabilities P (B,NH,T,T) are stored for the backward, which also
//      needs a (B,NH,T,T) scratch for dP / dS. Shipped until version 3; its code now lives here only (below).
//   3  fused (flash-attention style), fp32: one block per (b, h, 32 query rows), the key/value tiles up to the
//      diagonal through shared memory, online softmax per row (one warp per row), the output accumulated in
//      registers; the backward recomputes P from the stored per-row log-sum-exp (B,NH,T), dK/dV by key tile and dQ
//      by query tile, deterministic. THIS IS cuda::attention_forward and cuda::attention_backward,
//      model/cuda/attention.cu, included below (not copied); the per-tile math is model/attention_tiles.h.
//      Prediction (B=8, T=1024, NH=12, hs=64; one (B,NH,T,T) fp32 matrix is 403 MB): version 2 moves the (T,T)
//      matrices through memory 11 times per layer: forward S written by cuBLAS, read and written by the softmax,
//      read by P V (4 x 403 MB = 1.6 GB); backward dP written, dP and P read and dS written by the softmax backward,
//      P read by dV, dS by dQ and dK (7 x 403 MB = 2.8 GB): 4.4 GB, about 0.9 ms at the H200's 4.8 TB/s. In the
//      model it keeps P for every layer, and the activation gradients carve the same slot: 2 x L x B NH T^2 floats,
//      2 x 9.7 GB at B=16 for d12. Version 3 moves only Q, K, V, O, dO and dqkv (tens of MB) and keeps 1/T of that
//      state (B NH T log-sum-exps), and skips the tiles above the diagonal (half the products). But its products
//      are CUDA-core fp32 loops over shared memory (about one shared-memory load per 1-2 FMAs), likely a third to
//      a half of cuBLAS's SGEMM rate, and its backward recomputes S and dP in both kernels (7 half-size products
//      against version 2's 4 full ones). Expected: forward 1.5-2x faster than version 2 (traffic and the causal
//      half dominate), backward 0.7-1.3x (about as fast); the tensor-core (bf16) tiles are the next step.
//      Result: not measured yet (no GPU); dev/gpu_check.sh runs this lab and prints its last line.
#include "dev/cuda/lab_common.h"
#include "model/cuda/attention.cu"

// ---------------------------------------------------------------------------------------------------------------
// CPU reference: plain loops, double accumulators.

// out (B,T,C); att (B,NH,T,T); lse (B,NH,T) the log-sum-exp of each row of scores; qkv (B,T,3C)
void attention_forward_cpu(float* out, float* att, float* lse, const float* qkv, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const double scale = 1.0 / std::sqrt(double(hs));
    std::vector<double> scores(T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float* q = qkv + (size_t(b) * T + t) * 3 * C + h * hs;
                float* p = att + ((size_t(b) * NH + h) * T + t) * T;
                double max_score = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    const float* k = qkv + (size_t(b) * T + s) * 3 * C + C + h * hs;
                    double dot = 0;
                    for (int d = 0; d < hs; d++) dot += double(q[d]) * k[d];
                    scores[s] = dot * scale;
                    max_score = std::max(max_score, scores[s]);
                }
                for (int s = 0; s <= t; s++) sum += (scores[s] = std::exp(scores[s] - max_score));
                lse[(size_t(b) * NH + h) * T + t] = float(max_score + std::log(sum));
                for (int s = 0; s < T; s++) p[s] = s <= t ? float(scores[s] / sum) : 0.0f;
                float* o = out + (size_t(b) * T + t) * C + h * hs;
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int s = 0; s <= t; s++)
                        acc += scores[s] / sum * qkv[(size_t(b) * T + s) * 3 * C + 2 * C + h * hs + d];
                    o[d] = float(acc);
                }
            }
}

// dqkv (B,T,3C) += gradient; dout (B,T,C); att the probabilities from the forward
void attention_backward_cpu(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int T, int C,
                            int NH) {
    const int hs = C / NH;
    const double scale = 1.0 / std::sqrt(double(hs));
    std::vector<double> ds(size_t(T) * T), dq(size_t(T) * hs), dk(size_t(T) * hs), dv(size_t(T) * hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            auto Q = [&](int t, int d) { return double(qkv[(size_t(b) * T + t) * 3 * C + h * hs + d]); };
            auto K = [&](int t, int d) { return double(qkv[(size_t(b) * T + t) * 3 * C + C + h * hs + d]); };
            auto V = [&](int t, int d) { return double(qkv[(size_t(b) * T + t) * 3 * C + 2 * C + h * hs + d]); };
            auto dO = [&](int t, int d) { return double(dout[(size_t(b) * T + t) * C + h * hs + d]); };
            auto P = [&](int t, int s) { return double(att[((size_t(b) * NH + h) * T + t) * T + s]); };
            std::fill(dq.begin(), dq.end(), 0.0);
            std::fill(dk.begin(), dk.end(), 0.0);
            std::fill(dv.begin(), dv.end(), 0.0);
            for (int t = 0; t < T; t++) {
                double dot = 0;
                for (int s = 0; s <= t; s++) {
                    double dp = 0;
                    for (int d = 0; d < hs; d++) dp += dO(t, d) * V(s, d);
                    ds[size_t(t) * T + s] = dp;
                    dot += dp * P(t, s);
                }
                for (int s = 0; s <= t; s++) {
                    double dsv = ds[size_t(t) * T + s] = P(t, s) * (ds[size_t(t) * T + s] - dot) * scale;
                    for (int d = 0; d < hs; d++) {
                        dq[size_t(t) * hs + d] += dsv * K(s, d);
                        dk[size_t(s) * hs + d] += dsv * Q(t, d);
                        dv[size_t(s) * hs + d] += P(t, s) * dO(t, d);
                    }
                }
            }
            for (int t = 0; t < T; t++)
                for (int d = 0; d < hs; d++) {
                    float* g = dqkv + (size_t(b) * T + t) * 3 * C + h * hs + d;
                    g[0] += float(dq[size_t(t) * hs + d]);
                    g[C] += float(dk[size_t(t) * hs + d]);
                    g[2 * C] += float(dv[size_t(t) * hs + d]);
                }
        }
}

// ---------------------------------------------------------------------------------------------------------------
// Version 2: cuBLAS strided-batched products and the (T,T) matrices in memory (model/cuda/attention.cu until
// version 3 replaced it). Strategy (the approach of llm.c's CUDA attention):
//   forward:  permute qkv -> Q, K, V (B,NH,T,hs) in scratch; S = Q K^T into att (cuBLAS, batched over B*NH);
//             causal softmax of each row of att in place (one warp per row, scale 1/sqrt(hs));
//             Y = P V (cuBLAS) into scratch (B,NH,T,hs); unpermute Y -> out (B,T,C).
//   backward: permute qkv -> Q, K, V again and dout -> dY (B,NH,T,hs); dP = dY V^T and dV = P^T dY (cuBLAS);
//             softmax backward dS = P * (dP - rowsum(dP * P)) / sqrt(hs) in place (one warp per row);
//             dQ = dS K and dK = dS^T Q (cuBLAS); dQ, dK, dV are added into dqkv (accumulates, as the reference).
// cuBLAS is column-major: a row-major (r, c) matrix with leading dimension c is, to cuBLAS, its (c, r) transpose
// with the same leading dimension. So a row-major product C = A B is computed as the column-major C^T = B^T A^T,
// i.e. with the operands swapped. Each call below is written with the row-major product it computes.
// The handle uses CUBLAS_DEFAULT_MATH (true fp32, no TF32).

namespace version2 {

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

// warp_max and warp_sum: model/cuda/block_reduce.cuh (through model/cuda/attention.cu)

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

}  // namespace version2

// ---------------------------------------------------------------------------------------------------------------
// Version 1: naive.

// One thread per (b,h,t): the scores of row t into att, softmax in place, then out[b,t,h,:] = P[t,:] V.
__global__ void attention_forward_naive_kernel(float* out, float* att, const float* qkv, int B, int T, int C, int NH,
                                               float scale) {
    const int hs = C / NH;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // = (b*NH + h)*T + t, the row of att
    if (index >= size_t(B) * NH * T) return;
    int t = int(index % T), h = int((index / T) % NH), b = int(index / (size_t(T) * NH));
    const float* q = qkv + (size_t(b) * T + t) * 3 * C + h * hs;
    float* p = att + index * T;
    float max_score = -INFINITY;
    for (int s = 0; s <= t; s++) {
        const float* k = qkv + (size_t(b) * T + s) * 3 * C + C + h * hs;
        float dot = 0.0f;
        for (int d = 0; d < hs; d++) dot += q[d] * k[d];
        p[s] = dot * scale;
        max_score = fmaxf(max_score, p[s]);
    }
    float sum = 0.0f;
    for (int s = 0; s <= t; s++) sum += (p[s] = expf(p[s] - max_score));
    for (int s = 0; s < T; s++) p[s] = s <= t ? p[s] / sum : 0.0f;
    float* o = out + (size_t(b) * T + t) * C + h * hs;
    for (int d = 0; d < hs; d++) {
        float acc = 0.0f;
        for (int s = 0; s <= t; s++) acc += p[s] * qkv[(size_t(b) * T + s) * 3 * C + 2 * C + h * hs + d];
        o[d] = acc;
    }
}

// One thread per (b,h,t): dS of row t into datt (B,NH,T,T) (only s <= t written), then dQ[t] += dS[t,:] K.
__global__ void attention_backward_rows_naive_kernel(float* dqkv, float* datt, const float* dout, const float* qkv,
                                                     const float* att, int B, int T, int C, int NH, float scale) {
    const int hs = C / NH;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * NH * T) return;
    int t = int(index % T), h = int((index / T) % NH), b = int(index / (size_t(T) * NH));
    const float* dO = dout + (size_t(b) * T + t) * C + h * hs;
    const float* p = att + index * T;
    float* ds = datt + index * T;
    float dot = 0.0f;
    for (int s = 0; s <= t; s++) {
        const float* v = qkv + (size_t(b) * T + s) * 3 * C + 2 * C + h * hs;
        float dp = 0.0f;
        for (int d = 0; d < hs; d++) dp += dO[d] * v[d];
        ds[s] = dp;
        dot += dp * p[s];
    }
    for (int s = 0; s <= t; s++) ds[s] = p[s] * (ds[s] - dot) * scale;
    float* dq = dqkv + (size_t(b) * T + t) * 3 * C + h * hs;
    for (int d = 0; d < hs; d++) {
        float acc = 0.0f;
        for (int s = 0; s <= t; s++) acc += ds[s] * qkv[(size_t(b) * T + s) * 3 * C + C + h * hs + d];
        dq[d] += acc;
    }
}

// One thread per (b,h,s): dK[s] += sum_{t>=s} dS[t,s] Q[t], dV[s] += sum_{t>=s} P[t,s] dO[t].
__global__ void attention_backward_columns_naive_kernel(float* dqkv, const float* datt, const float* dout,
                                                        const float* qkv, const float* att, int B, int T, int C,
                                                        int NH) {
    const int hs = C / NH;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * NH * T) return;
    int s = int(index % T), h = int((index / T) % NH), b = int(index / (size_t(T) * NH));
    const size_t head = (size_t(b) * NH + h) * T * T;  // (b,h)'s T x T block of att and datt
    float* dk = dqkv + (size_t(b) * T + s) * 3 * C + C + h * hs;
    float* dv = dk + C;
    for (int d = 0; d < hs; d++) {
        float acc_k = 0.0f, acc_v = 0.0f;
        for (int t = s; t < T; t++) {
            acc_k += datt[head + size_t(t) * T + s] * qkv[(size_t(b) * T + t) * 3 * C + h * hs + d];
            acc_v += att[head + size_t(t) * T + s] * dout[(size_t(b) * T + t) * C + h * hs + d];
        }
        dk[d] += acc_k;
        dv[d] += acc_v;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Drivers. state: what the forward keeps for the backward, P (B,NH,T,T) for versions 1 and 2, the rows'
// log-sum-exp (B,NH,T) for version 3. datt (B,NH,T,T): version 1's scratch (version 2 keeps its own).

void attention_forward(int version, float* out, float* state, const float* qkv, int B, int T, int C, int NH) {
    if (version == 3) return cuda::attention_forward(out, state, qkv, B, T, C, NH);
    if (version == 2) return version2::attention_forward(out, state, qkv, B, T, C, NH);
    const size_t rows = size_t(B) * NH * T;
    const float scale = 1.0f / std::sqrt(float(C / NH));
    attention_forward_naive_kernel<<<ceil_div(rows, 128), 128>>>(out, state, qkv, B, T, C, NH, scale);
    CHECK_LAUNCH();
}

// out: the forward's output (version 3 takes D = rowsum(dout * out) from it)
void attention_backward(int version, float* datt, float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* state, int B, int T, int C, int NH) {
    if (version == 3) return cuda::attention_backward(dqkv, dout, qkv, out, state, B, T, C, NH);
    if (version == 2) return version2::attention_backward(dqkv, dout, qkv, state, B, T, C, NH);
    const size_t rows = size_t(B) * NH * T;
    const float scale = 1.0f / std::sqrt(float(C / NH));
    attention_backward_rows_naive_kernel<<<ceil_div(rows, 128), 128>>>(dqkv, datt, dout, qkv, state, B, T, C, NH,
                                                                       scale);
    CHECK_LAUNCH();
    attention_backward_columns_naive_kernel<<<ceil_div(rows, 128), 128>>>(dqkv, datt, dout, qkv, state, B, T, C, NH);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------------
// Check and timing.

// Runs one version at one shape against the CPU reference; prints and returns whether it passed. Versions 1 and 2
// are checked on their probabilities, version 3 on its log-sum-exp; all on out and the accumulated dqkv.
bool check(int version, int B, int T, int C, int NH) {
    const double tolerance = 1e-5;  // relative error ||gpu - cpu|| / ||cpu||, as the project's tests
    std::vector<float> qkv = random_floats(size_t(B) * T * 3 * C, 1, -2, 2);
    std::vector<float> dout = random_floats(size_t(B) * T * C, 2, -1, 1);
    std::vector<float> dqkv_start = random_floats(qkv.size(), 3, -0.1f, 0.1f);  // the backward accumulates
    std::vector<float> out(dout.size()), att(size_t(B) * NH * T * T), lse(size_t(B) * NH * T), dqkv = dqkv_start;
    attention_forward_cpu(out.data(), att.data(), lse.data(), qkv.data(), B, T, C, NH);
    attention_backward_cpu(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH);

    const std::vector<float>& state = version == 3 ? lse : att;
    float *d_qkv = to_device(qkv), *d_dout = to_device(dout), *d_dqkv = to_device(dqkv_start);
    float* d_out = to_device(std::vector<float>(out.size(), NAN));  // poisoned: every element must be written
    float* d_state = to_device(std::vector<float>(state.size(), NAN));
    float* d_datt = to_device(std::vector<float>(att.size()));
    attention_forward(version, d_out, d_state, d_qkv, B, T, C, NH);
    attention_backward(version, d_datt, d_dqkv, d_dout, d_qkv, d_out, d_state, B, T, C, NH);
    double error_out = relative_error(download(d_out, out.size()), out);
    double error_state = relative_error(download(d_state, state.size()), state);
    double error_dqkv = relative_error(download(d_dqkv, dqkv.size()), dqkv);
    bool ok = print_result(format("version %d  B=%d T=%d C=%d NH=%d", version, B, T, C, NH),
                           std::max({error_out, error_state, error_dqkv}), tolerance, -1.0f, 0.0,
                           format("(out %.2e, %s %.2e, dqkv %.2e)", error_out, version == 3 ? "lse" : "att",
                                  error_state, error_dqkv));
    if (version == 3) {  // deterministic: a second backward from the same start gives the same bits
        std::vector<float> first = download(d_dqkv, dqkv.size());
        upload(d_dqkv, dqkv_start);
        attention_backward(version, d_datt, d_dqkv, d_dout, d_qkv, d_out, d_state, B, T, C, NH);
        const bool identical = download(d_dqkv, dqkv.size()) == first;
        std::printf("  %s\n", repeatability(identical, true).c_str());
        ok &= identical;
    }
    for (float* buffer : {d_qkv, d_dout, d_dqkv, d_out, d_state, d_datt}) CHECK_CUDA(cudaFree(buffer));
    return ok;
}

int main(int argc, char** argv) {
    const std::vector<int> versions = versions_to_run(argc, argv, 3);
    print_device();

    bool ok = true;
    struct Shape {
        int B, T, C, NH;
    } shapes[] = {{1, 1, 8, 2}, {2, 7, 36, 4}, {3, 64, 96, 6}, {2, 257, 768, 12}, {1, 100, 256, 2}};
    for (int version : versions)
        for (const Shape& s : shapes) ok &= check(version, s.B, s.T, s.C, s.NH);

    // timing at GPT-2 124M shapes; FLOPs count the full T x T products (what cuBLAS computes; the fused version
    // skips the tiles above the diagonal, and recomputes S and dP in its backward), as a common yardstick
    const int T = 1024, C = 768, NH = 12;
    std::string shipped;  // version 3's timings
    for (const int B : {8, 16}) {
        const double forward_flops = 4.0 * B * NH * double(T) * T * (C / NH);
        const double backward_flops = 2 * forward_flops;
        const size_t att_size = size_t(B) * NH * T * T;
        float* d_qkv = to_device(random_floats(size_t(B) * T * 3 * C, 4, -2, 2));
        float* d_dout = to_device(random_floats(size_t(B) * T * C, 5, -1, 1));
        float *d_dqkv, *d_out, *d_state, *d_datt;
        CHECK_CUDA(cudaMalloc(&d_dqkv, size_t(B) * T * 3 * C * sizeof(float)));
        CHECK_CUDA(cudaMalloc(&d_out, size_t(B) * T * C * sizeof(float)));
        CHECK_CUDA(cudaMalloc(&d_state, att_size * sizeof(float)));
        CHECK_CUDA(cudaMalloc(&d_datt, att_size * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_dqkv, 0, size_t(B) * T * 3 * C * sizeof(float)));
        std::printf("timing at B=%d T=%d C=%d NH=%d\n", B, T, C, NH);
        for (int version : versions) {
            if (version == 1 && B > 8) continue;  // the naive version takes seconds; once is enough
            float forward_ms = time_ms([&] { attention_forward(version, d_out, d_state, d_qkv, B, T, C, NH); });
            float backward_ms = time_ms(
                [&] { attention_backward(version, d_datt, d_dqkv, d_dout, d_qkv, d_out, d_state, B, T, C, NH); });
            const double forward_tflops = forward_flops / forward_ms * 1e-9;
            const double backward_tflops = backward_flops / backward_ms * 1e-9;
            const double state_mb = (version == 3 ? size_t(B) * NH * T : att_size) * sizeof(float) * 1e-6;
            std::printf("version %d  forward %8.3f ms %6.2f TFLOP/s   backward %8.3f ms %6.2f TFLOP/s   "
                        "saved state %8.1f MB per layer\n",
                        version, forward_ms, forward_tflops, backward_ms, backward_tflops, state_mb);
            if (version == 3)
                shipped += format("%sB=%d fwd %.2f bwd %.2f ms", B == 8 ? "" : " | ", B, forward_ms, backward_ms);
        }
        for (float* buffer : {d_qkv, d_dout, d_dqkv, d_out, d_state, d_datt}) CHECK_CUDA(cudaFree(buffer));
    }
    return finish("attention", ok, shipped.empty() ? "version 3 not run" : shipped);
}
