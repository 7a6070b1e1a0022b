// Kernel lab: causal multi-head self-attention, forward and backward, on packed qkv (B,T,3C).
// Build and run (on a GPU host):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/attention.cu -o build/lab/attention -lcublas
//   ./build/lab/attention        every version;   ./build/lab/attention 2   version 2 only
// (or `make lab`). Each version is checked against the CPU reference below at small and odd shapes, then timed at
// GPT-2 124M shapes (B=8, T=1024, C=768, NH=12). Exits non-zero when a check fails.
//
// The math (per batch b and head h; hs = C/NH; Q, K, V the (T,hs) slices of qkv):
//   forward:  S = Q K^T / sqrt(hs); P = row softmax of S over s <= t (0 above the diagonal); out = P V
//   backward: dP = dO V^T; dV = P^T dO; dS = P * (dP - rowsum(dP * P)) / sqrt(hs); dQ = dS K; dK = dS^T Q,
//             dQ, dK, dV accumulated (+=) into dqkv.
// Versions:
//   1  naive: forward one thread per (b,h,t) computing its row of scores, softmax and output; backward one thread
//      per (b,h,t) for the row of dS and dQ, then one thread per (b,h,s) gathering dK, dV down column s (no atomics).
//   2  permute qkv into (B,NH,T,hs) tensors, cuBLAS strided-batched products (true fp32), one warp per row for the
//      softmax and its backward, unpermute. THIS IS THE VERSION IN model/cuda/attention.cu.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK_CUDA(call)                                                                                   \
    do {                                                                                                   \
        cudaError_t status_ = (call);                                                                      \
        if (status_ != cudaSuccess) {                                                                      \
            std::fprintf(stderr, "CUDA error %s in %s at %s:%d\n", cudaGetErrorString(status_), #call,     \
                         __FILE__, __LINE__);                                                              \
            std::exit(2);                                                                                  \
        }                                                                                                  \
    } while (0)
#define CHECK_CUBLAS(call)                                                                                 \
    do {                                                                                                   \
        cublasStatus_t status_ = (call);                                                                   \
        if (status_ != CUBLAS_STATUS_SUCCESS) {                                                            \
            std::fprintf(stderr, "cuBLAS error %s in %s at %s:%d\n", cublasGetStatusString(status_), #call, \
                         __FILE__, __LINE__);                                                              \
            std::exit(2);                                                                                  \
        }                                                                                                  \
    } while (0)
#define CHECK_LAUNCH() CHECK_CUDA(cudaGetLastError())

static int ceil_div(size_t a, size_t b) { return int((a + b - 1) / b); }

// ---------------------------------------------------------------------------------------------------------------
// CPU reference: plain loops, double accumulators.

// out (B,T,C); att (B,NH,T,T); qkv (B,T,3C)
void attention_forward_cpu(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
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
// Version 2: permute + cuBLAS + warp-per-row softmax (model/cuda/attention.cu).

constexpr int WARPS_PER_BLOCK = 4;

// qkv (B,T,3,NH,hs) -> q, k, v (B,NH,T,hs); one thread per element of qkv
__global__ void permute_kernel(float* __restrict__ q, float* __restrict__ k, float* __restrict__ v,
                               const float* __restrict__ qkv, int B, int T, int NH, int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * 3 * C) return;
    int d = int(index % hs), h = int((index / hs) % NH), which = int((index / C) % 3);
    int t = int((index / (3 * size_t(C))) % T), b = int(index / (3 * size_t(C) * T));
    float* target = which == 0 ? q : (which == 1 ? k : v);
    target[((size_t(b) * NH + h) * T + t) * hs + d] = qkv[index];
}

// dqkv (B,T,3,NH,hs) += dq, dk, dv (B,NH,T,hs); one thread per element of dqkv
__global__ void permute_backward_kernel(float* __restrict__ dqkv, const float* __restrict__ dq,
                                        const float* __restrict__ dk, const float* __restrict__ dv, int B, int T,
                                        int NH, int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * 3 * C) return;
    int d = int(index % hs), h = int((index / hs) % NH), which = int((index / C) % 3);
    int t = int((index / (3 * size_t(C))) % T), b = int(index / (3 * size_t(C) * T));
    const float* gradient = which == 0 ? dq : (which == 1 ? dk : dv);
    dqkv[index] += gradient[((size_t(b) * NH + h) * T + t) * hs + d];
}

// y (B,NH,T,hs) -> out (B,T,C) when forward; dout (B,T,C) -> dy (B,NH,T,hs) when not
template <bool FORWARD>
__global__ void unpermute_kernel(float* __restrict__ to, const float* __restrict__ from, int B, int T, int NH,
                                 int hs) {
    const int C = NH * hs;
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // an element of the (B,T,C) tensor
    if (index >= size_t(B) * T * C) return;
    int d = int(index % hs), h = int((index / hs) % NH), t = int((index / C) % T), b = int(index / (size_t(C) * T));
    size_t head_index = ((size_t(b) * NH + h) * T + t) * hs + d;
    if (FORWARD) to[index] = from[head_index];
    else to[head_index] = from[index];
}

__device__ float warp_max(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    return value;
}
__device__ float warp_sum(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

// att rows: scores in, probabilities out (online softmax per lane, merged across the warp)
__global__ void softmax_forward_kernel(float* __restrict__ att, int rows, int T, float scale) {
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    int t = row % T;
    float* p = att + size_t(row) * T;
    float max_value = -INFINITY, sum = 0.0f;
    for (int s = lane; s <= t; s += 32) {
        float x = p[s] * scale;
        if (x > max_value) {
            sum = sum * expf(max_value - x) + 1.0f;
            max_value = x;
        } else {
            sum += expf(x - max_value);
        }
    }
    float row_max = warp_max(max_value);
    float row_sum = warp_sum(sum * expf(max_value - row_max));
    for (int s = lane; s < T; s += 32) p[s] = s <= t ? expf(p[s] * scale - row_max) / row_sum : 0.0f;
}

// datt rows: dP in, dS out
__global__ void softmax_backward_kernel(float* __restrict__ datt, const float* __restrict__ att, int rows, int T,
                                        float scale) {
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    int t = row % T;
    float* dp = datt + size_t(row) * T;
    const float* p = att + size_t(row) * T;
    float dot = 0.0f;
    for (int s = lane; s <= t; s += 32) dot += dp[s] * p[s];
    dot = warp_sum(dot);
    for (int s = lane; s < T; s += 32) dp[s] = s <= t ? p[s] * (dp[s] - dot) * scale : 0.0f;
}

// ---------------------------------------------------------------------------------------------------------------
// Drivers. Scratch (version 2): q, k, v, y and dq, dk, dv, each (B,NH,T,hs); datt (B,NH,T,T) (also version 1).

struct Scratch {
    float *q, *k, *v, *y, *dq, *dk, *dv, *datt;
};

Scratch make_scratch(int B, int T, int C, int NH) {
    Scratch s;
    size_t head_size = size_t(B) * T * C;
    float* block;
    CHECK_CUDA(cudaMalloc(&block, 7 * head_size * sizeof(float)));
    s.q = block, s.k = s.q + head_size, s.v = s.k + head_size, s.y = s.v + head_size;
    s.dq = s.y + head_size, s.dk = s.dq + head_size, s.dv = s.dk + head_size;
    CHECK_CUDA(cudaMalloc(&s.datt, size_t(B) * NH * T * T * sizeof(float)));
    return s;
}

void free_scratch(Scratch& s) {
    CHECK_CUDA(cudaFree(s.q));
    CHECK_CUDA(cudaFree(s.datt));
}

void attention_forward(int version, cublasHandle_t handle, const Scratch& scratch, float* out, float* att,
                       const float* qkv, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const float scale = 1.0f / std::sqrt(float(hs));
    const size_t rows = size_t(B) * NH * T;
    if (version == 1) {
        attention_forward_naive_kernel<<<ceil_div(rows, 128), 128>>>(out, att, qkv, B, T, C, NH, scale);
        CHECK_LAUNCH();
        return;
    }
    const size_t head_size = size_t(B) * T * C;
    const long long head_stride = (long long)T * hs, att_stride = (long long)T * T;
    const float one = 1.0f, zero = 0.0f;
    permute_kernel<<<ceil_div(3 * head_size, 256), 256>>>(scratch.q, scratch.k, scratch.v, qkv, B, T, NH, hs);
    CHECK_LAUNCH();
    // S (T,T) = Q K^T row-major  <=>  column-major S^T = K_cm^T Q_cm: (T, T, hs), A = k op T, B = q op N
    CHECK_CUBLAS(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, &one, scratch.k, hs,
                                           head_stride, scratch.q, hs, head_stride, &zero, att, T, att_stride, B * NH));
    softmax_forward_kernel<<<ceil_div(rows, WARPS_PER_BLOCK), WARPS_PER_BLOCK * 32>>>(att, int(rows), T, scale);
    CHECK_LAUNCH();
    // Y (T,hs) = P V row-major  <=>  column-major Y^T = V_cm P_cm: (hs, T, T), A = v op N, B = att op N
    CHECK_CUBLAS(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, &one, scratch.v, hs,
                                           head_stride, att, T, att_stride, &zero, scratch.y, hs, head_stride, B * NH));
    unpermute_kernel<true><<<ceil_div(head_size, 256), 256>>>(out, scratch.y, B, T, NH, hs);
    CHECK_LAUNCH();
}

void attention_backward(int version, cublasHandle_t handle, const Scratch& scratch, float* dqkv, const float* dout,
                        const float* qkv, const float* att, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const float scale = 1.0f / std::sqrt(float(hs));
    const size_t rows = size_t(B) * NH * T;
    if (version == 1) {
        attention_backward_rows_naive_kernel<<<ceil_div(rows, 128), 128>>>(dqkv, scratch.datt, dout, qkv, att, B, T,
                                                                           C, NH, scale);
        CHECK_LAUNCH();
        attention_backward_columns_naive_kernel<<<ceil_div(rows, 128), 128>>>(dqkv, scratch.datt, dout, qkv, att, B,
                                                                              T, C, NH);
        CHECK_LAUNCH();
        return;
    }
    const size_t head_size = size_t(B) * T * C;
    const long long head_stride = (long long)T * hs, att_stride = (long long)T * T;
    const float one = 1.0f, zero = 0.0f;
    float* dy = scratch.y;
    permute_kernel<<<ceil_div(3 * head_size, 256), 256>>>(scratch.q, scratch.k, scratch.v, qkv, B, T, NH, hs);
    CHECK_LAUNCH();
    unpermute_kernel<false><<<ceil_div(head_size, 256), 256>>>(dy, dout, B, T, NH, hs);
    CHECK_LAUNCH();
    // dP (T,T) = dY V^T row-major  <=>  column-major dP^T = V_cm^T dY_cm: (T, T, hs), A = v op T, B = dy op N
    CHECK_CUBLAS(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, &one, scratch.v, hs,
                                           head_stride, dy, hs, head_stride, &zero, scratch.datt, T, att_stride,
                                           B * NH));
    // dV (T,hs) = P^T dY row-major  <=>  column-major dV^T = dY_cm P_cm^T: (hs, T, T), A = dy op N, B = att op T
    CHECK_CUBLAS(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, &one, dy, hs, head_stride, att,
                                           T, att_stride, &zero, scratch.dv, hs, head_stride, B * NH));
    softmax_backward_kernel<<<ceil_div(rows, WARPS_PER_BLOCK), WARPS_PER_BLOCK * 32>>>(scratch.datt, att, int(rows),
                                                                                       T, scale);
    CHECK_LAUNCH();
    // dQ (T,hs) = dS K row-major  <=>  column-major dQ^T = K_cm dS_cm: (hs, T, T), A = k op N, B = datt op N
    CHECK_CUBLAS(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, &one, scratch.k, hs,
                                           head_stride, scratch.datt, T, att_stride, &zero, scratch.dq, hs,
                                           head_stride, B * NH));
    // dK (T,hs) = dS^T Q row-major  <=>  column-major dK^T = Q_cm dS_cm^T: (hs, T, T), A = q op N, B = datt op T
    CHECK_CUBLAS(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, &one, scratch.q, hs,
                                           head_stride, scratch.datt, T, att_stride, &zero, scratch.dk, hs,
                                           head_stride, B * NH));
    permute_backward_kernel<<<ceil_div(3 * head_size, 256), 256>>>(dqkv, scratch.dq, scratch.dk, scratch.dv, B, T, NH,
                                                                    hs);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------------
// Check and timing.

std::vector<float> random_floats(size_t count, uint64_t seed, float low, float high) {
    std::vector<float> values(count);
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (float& value : values) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        value = low + (high - low) * float(double(state >> 11) / 9007199254740992.0);
    }
    return values;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < a.size(); i++) {
        difference += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        reference += double(b[i]) * b[i];
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

float* to_device(const std::vector<float>& host) {
    float* device;
    CHECK_CUDA(cudaMalloc(&device, host.size() * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    return device;
}

std::vector<float> to_host(const float* device, size_t count) {
    std::vector<float> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost));
    return host;
}

// Runs one version at one shape against the CPU reference; prints and returns whether it passed.
bool check(int version, cublasHandle_t handle, int B, int T, int C, int NH) {
    const double tolerance = 1e-5;  // relative error ||gpu - cpu|| / ||cpu||, as the project's tests
    std::vector<float> qkv = random_floats(size_t(B) * T * 3 * C, 1, -2, 2);
    std::vector<float> dout = random_floats(size_t(B) * T * C, 2, -1, 1);
    std::vector<float> dqkv_start = random_floats(qkv.size(), 3, -0.1f, 0.1f);  // the backward accumulates
    std::vector<float> out(dout.size()), att(size_t(B) * NH * T * T), dqkv = dqkv_start;
    attention_forward_cpu(out.data(), att.data(), qkv.data(), B, T, C, NH);
    attention_backward_cpu(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH);

    Scratch scratch = make_scratch(B, T, C, NH);
    float *d_qkv = to_device(qkv), *d_dout = to_device(dout), *d_dqkv = to_device(dqkv_start);
    float* d_out = to_device(std::vector<float>(out.size(), NAN));  // poisoned: every element must be written
    float* d_att = to_device(std::vector<float>(att.size(), NAN));
    attention_forward(version, handle, scratch, d_out, d_att, d_qkv, B, T, C, NH);
    attention_backward(version, handle, scratch, d_dqkv, d_dout, d_qkv, d_att, B, T, C, NH);
    double error_out = relative_error(to_host(d_out, out.size()), out);
    double error_att = relative_error(to_host(d_att, att.size()), att);
    double error_dqkv = relative_error(to_host(d_dqkv, dqkv.size()), dqkv);
    bool ok = error_out < tolerance && error_att < tolerance && error_dqkv < tolerance;  // false on NaN too
    std::printf("version %d  B=%d T=%d C=%d NH=%d  relative error out %.2e att %.2e dqkv %.2e  %s\n", version, B, T, C,
                NH, error_out, error_att, error_dqkv, ok ? "ok" : "FAILED");
    for (float* buffer : {d_qkv, d_dout, d_dqkv, d_out, d_att}) CHECK_CUDA(cudaFree(buffer));
    free_scratch(scratch);
    return ok;
}

template <typename F>
float time_ms(F&& run) {
    run();  // warm up
    CHECK_CUDA(cudaDeviceSynchronize());
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventRecord(start));
    run();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float first = 0;
    CHECK_CUDA(cudaEventElapsedTime(&first, start, stop));
    const int repeats = std::max(1, std::min(20, int(500.0f / std::max(first, 1e-3f))));  // about half a second
    CHECK_CUDA(cudaEventRecord(start));
    for (int i = 0; i < repeats; i++) run();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float total = 0;
    CHECK_CUDA(cudaEventElapsedTime(&total, start, stop));
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    return total / repeats;
}

int main(int argc, char** argv) {
    const int only = argc > 1 ? std::atoi(argv[1]) : 0;
    std::vector<int> versions;
    for (int version : {1, 2})
        if (only == 0 || only == version) versions.push_back(version);
    if (versions.empty()) {
        std::fprintf(stderr, "usage: %s [version: 1 or 2]\n", argv[0]);
        return 2;
    }
    cudaDeviceProp properties;
    CHECK_CUDA(cudaGetDeviceProperties(&properties, 0));
    std::printf("device: %s\n", properties.name);
    cublasHandle_t handle;
    CHECK_CUBLAS(cublasCreate(&handle));
    CHECK_CUBLAS(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));  // true fp32: no TF32

    bool ok = true;
    struct Shape {
        int B, T, C, NH;
    } shapes[] = {{1, 1, 8, 2}, {2, 7, 36, 4}, {3, 64, 96, 6}, {2, 257, 768, 12}};
    for (int version : versions)
        for (const Shape& s : shapes) ok &= check(version, handle, s.B, s.T, s.C, s.NH);

    // timing at GPT-2 124M shapes; FLOPs count the full T x T products (what cuBLAS computes)
    const int B = 8, T = 1024, C = 768, NH = 12;
    const double forward_flops = 4.0 * B * NH * double(T) * T * (C / NH);
    const double backward_flops = 2 * forward_flops;
    std::vector<float> qkv = random_floats(size_t(B) * T * 3 * C, 4, -2, 2);
    std::vector<float> dout = random_floats(size_t(B) * T * C, 5, -1, 1);
    Scratch scratch = make_scratch(B, T, C, NH);
    float *d_qkv = to_device(qkv), *d_dout = to_device(dout), *d_dqkv = to_device(std::vector<float>(qkv.size(), 0));
    float* d_out = to_device(std::vector<float>(dout.size()));
    float* d_att = to_device(std::vector<float>(size_t(B) * NH * T * T));
    std::printf("timing at B=%d T=%d C=%d NH=%d\n", B, T, C, NH);
    for (int version : versions) {
        float forward_ms =
            time_ms([&] { attention_forward(version, handle, scratch, d_out, d_att, d_qkv, B, T, C, NH); });
        float backward_ms = time_ms(
            [&] { attention_backward(version, handle, scratch, d_dqkv, d_dout, d_qkv, d_att, B, T, C, NH); });
        std::printf("version %d  forward %8.3f ms %6.2f TFLOP/s   backward %8.3f ms %6.2f TFLOP/s\n", version,
                    forward_ms, forward_flops / (forward_ms * 1e-3) / 1e12, backward_ms,
                    backward_flops / (backward_ms * 1e-3) / 1e12);
    }
    for (float* buffer : {d_qkv, d_dout, d_dqkv, d_out, d_att}) CHECK_CUDA(cudaFree(buffer));
    free_scratch(scratch);
    CHECK_CUBLAS(cublasDestroy(handle));
    std::printf("%s\n", ok ? "all checks passed" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
}
