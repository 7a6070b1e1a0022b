// Kernel lab: causal multi-head self-attention, forward and backward, on packed qkv (B,T,3C).
// Build and run (from the repository root, on a GPU host):
//   make lab && ./build/lab/attention        every version;   ./build/lab/attention 2   version 2 only
// Each version is checked against the CPU reference below at small and odd shapes, then timed at GPT-2 124M shapes
// (B=8, T=1024, C=768, NH=12). Exits non-zero when a check fails. The last line sums up the shipped version (2).
//
// The math (per batch b and head h; hs = C/NH; Q, K, V the (T,hs) slices of qkv):
//   forward:  S = Q K^T / sqrt(hs); P = row softmax of S over s <= t (0 above the diagonal); out = P V
//   backward: dP = dO V^T; dV = P^T dO; dS = P * (dP - rowsum(dP * P)) / sqrt(hs); dQ = dS K; dK = dS^T Q,
//             dQ, dK, dV accumulated (+=) into dqkv.
// Versions:
//   1  naive: forward one thread per (b,h,t) computing its row of scores, softmax and output; backward one thread
//      per (b,h,t) for the row of dS and dQ, then one thread per (b,h,s) gathering dK, dV down column s (no atomics).
//   2  permute qkv into (B,NH,T,hs) tensors, cuBLAS strided-batched products (true fp32), one warp per row for the
//      softmax and its backward, unpermute. THIS IS cuda::attention_forward and cuda::attention_backward,
//      model/cuda/attention.cu, included below (not copied); its cuBLAS handle and scratch memory come from
//      model/cuda/matmul.cu and model/cuda/memory.cu, linked in (see the Makefile's lab rule).
#include "dev/cuda/lab_common.h"
#include "model/cuda/attention.cu"

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
// Drivers. datt (B,NH,T,T): version 1's scratch (version 2 keeps its own, in model/cuda/attention.cu).

void attention_forward(int version, float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
    if (version == 2) return cuda::attention_forward(out, att, qkv, B, T, C, NH);
    const size_t rows = size_t(B) * NH * T;
    const float scale = 1.0f / std::sqrt(float(C / NH));
    attention_forward_naive_kernel<<<ceil_div(rows, 128), 128>>>(out, att, qkv, B, T, C, NH, scale);
    CHECK_LAUNCH();
}

void attention_backward(int version, float* datt, float* dqkv, const float* dout, const float* qkv, const float* att,
                        int B, int T, int C, int NH) {
    if (version == 2) return cuda::attention_backward(dqkv, dout, qkv, att, B, T, C, NH);
    const size_t rows = size_t(B) * NH * T;
    const float scale = 1.0f / std::sqrt(float(C / NH));
    attention_backward_rows_naive_kernel<<<ceil_div(rows, 128), 128>>>(dqkv, datt, dout, qkv, att, B, T, C, NH, scale);
    CHECK_LAUNCH();
    attention_backward_columns_naive_kernel<<<ceil_div(rows, 128), 128>>>(dqkv, datt, dout, qkv, att, B, T, C, NH);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------------
// Check and timing.

// Runs one version at one shape against the CPU reference; prints and returns whether it passed.
bool check(int version, int B, int T, int C, int NH) {
    const double tolerance = 1e-5;  // relative error ||gpu - cpu|| / ||cpu||, as the project's tests
    std::vector<float> qkv = random_floats(size_t(B) * T * 3 * C, 1, -2, 2);
    std::vector<float> dout = random_floats(size_t(B) * T * C, 2, -1, 1);
    std::vector<float> dqkv_start = random_floats(qkv.size(), 3, -0.1f, 0.1f);  // the backward accumulates
    std::vector<float> out(dout.size()), att(size_t(B) * NH * T * T), dqkv = dqkv_start;
    attention_forward_cpu(out.data(), att.data(), qkv.data(), B, T, C, NH);
    attention_backward_cpu(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH);

    float *d_qkv = to_device(qkv), *d_dout = to_device(dout), *d_dqkv = to_device(dqkv_start);
    float* d_out = to_device(std::vector<float>(out.size(), NAN));  // poisoned: every element must be written
    float* d_att = to_device(std::vector<float>(att.size(), NAN));
    float* d_datt = to_device(std::vector<float>(att.size()));
    attention_forward(version, d_out, d_att, d_qkv, B, T, C, NH);
    attention_backward(version, d_datt, d_dqkv, d_dout, d_qkv, d_att, B, T, C, NH);
    double error_out = relative_error(download(d_out, out.size()), out);
    double error_att = relative_error(download(d_att, att.size()), att);
    double error_dqkv = relative_error(download(d_dqkv, dqkv.size()), dqkv);
    bool ok = print_result(format("version %d  B=%d T=%d C=%d NH=%d", version, B, T, C, NH),
                           std::max({error_out, error_att, error_dqkv}), tolerance, -1.0f, 0.0,
                           format("(out %.2e, att %.2e, dqkv %.2e)", error_out, error_att, error_dqkv));
    for (float* buffer : {d_qkv, d_dout, d_dqkv, d_out, d_att, d_datt}) CHECK_CUDA(cudaFree(buffer));
    return ok;
}

int main(int argc, char** argv) {
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    print_device();

    bool ok = true;
    struct Shape {
        int B, T, C, NH;
    } shapes[] = {{1, 1, 8, 2}, {2, 7, 36, 4}, {3, 64, 96, 6}, {2, 257, 768, 12}};
    for (int version : versions)
        for (const Shape& s : shapes) ok &= check(version, s.B, s.T, s.C, s.NH);

    // timing at GPT-2 124M shapes; FLOPs count the full T x T products (what cuBLAS computes)
    const int B = 8, T = 1024, C = 768, NH = 12;
    const double forward_flops = 4.0 * B * NH * double(T) * T * (C / NH);
    const double backward_flops = 2 * forward_flops;
    const size_t att_size = size_t(B) * NH * T * T;
    float* d_qkv = to_device(random_floats(size_t(B) * T * 3 * C, 4, -2, 2));
    float* d_dout = to_device(random_floats(size_t(B) * T * C, 5, -1, 1));
    float *d_dqkv, *d_out, *d_att, *d_datt;
    CHECK_CUDA(cudaMalloc(&d_dqkv, size_t(B) * T * 3 * C * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_out, size_t(B) * T * C * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_att, att_size * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_datt, att_size * sizeof(float)));
    CHECK_CUDA(cudaMemset(d_dqkv, 0, size_t(B) * T * 3 * C * sizeof(float)));
    std::string shipped = "version 2 not run";
    std::printf("timing at B=%d T=%d C=%d NH=%d\n", B, T, C, NH);
    for (int version : versions) {
        float forward_ms = time_ms([&] { attention_forward(version, d_out, d_att, d_qkv, B, T, C, NH); });
        float backward_ms =
            time_ms([&] { attention_backward(version, d_datt, d_dqkv, d_dout, d_qkv, d_att, B, T, C, NH); });
        const double forward_tflops = forward_flops / forward_ms * 1e-9;
        const double backward_tflops = backward_flops / backward_ms * 1e-9;
        std::printf("version %d  forward %8.3f ms %6.2f TFLOP/s   backward %8.3f ms %6.2f TFLOP/s\n", version,
                    forward_ms, forward_tflops, backward_ms, backward_tflops);
        if (version == 2)
            shipped = format("fwd %.2f ms %.0f TFLOP/s | bwd %.2f ms %.0f TFLOP/s", forward_ms, forward_tflops,
                             backward_ms, backward_tflops);
    }
    for (float* buffer : {d_qkv, d_dout, d_dqkv, d_out, d_att, d_datt}) CHECK_CUDA(cudaFree(buffer));
    return finish("attention", ok, shipped);
}
