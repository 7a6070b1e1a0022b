// Layer normalisation over the last dimension: y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + 1e-5).
// Rows run in parallel (OpenMP); the weight and bias gradients, sums over rows, are split by channels instead, each
// channel summed over the rows in order: every result is the same whatever the thread count.
#pragma once
#include <algorithm>
#include <cmath>

#include "model/cpu/residual.h"
#include "model/cpu/threads.h"

namespace cpu {

// out (N,C); mean, rstd (N) saved for the backward; inp (N,C); weight, bias (C). N = B*T rows.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias, int N, int C) {
    const T eps = T(1e-5);
    CPU_PARALLEL_FOR_IF(size_t(N) * C >= parallel_min_elements)
    for (int i = 0; i < N; i++) {
        const T* x = inp + size_t(i) * C;
        T m = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        T variance = 0;
        for (int c = 0; c < C; c++) variance += (x[c] - m) * (x[c] - m);
        variance /= C;
        T s = T(1) / std::sqrt(variance + eps);
        T* y = out + size_t(i) * C;
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

// Accumulates dinp (N,C), dweight and dbias (C; either may be null when frozen).
// With xhat = (x - mean) * rstd and g = dout * w:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, const T* mean,
                        const T* rstd, int N, int C) {
    const bool parallel = size_t(N) * C >= parallel_min_elements;
    CPU_PARALLEL_FOR_IF(parallel)
    for (int i = 0; i < N; i++) {
        const T* x = inp + size_t(i) * C;
        const T* dy = dout + size_t(i) * C;
        T* dx = dinp + size_t(i) * C;
        T g_mean = 0, g_xhat_mean = 0;
        for (int c = 0; c < C; c++) {
            T xhat = (x[c] - mean[i]) * rstd[i];
            T g = dy[c] * weight[c];
            g_mean += g;
            g_xhat_mean += g * xhat;
        }
        g_mean /= C;
        g_xhat_mean /= C;
        for (int c = 0; c < C; c++) {
            T xhat = (x[c] - mean[i]) * rstd[i];
            T g = dy[c] * weight[c];
            dx[c] += rstd[i] * (g - g_mean - xhat * g_xhat_mean);
        }
    }
    if (!dweight && !dbias) return;
    // channels in blocks of 64, each block's sums over the rows in order
    const int blocks = (C + 63) / 64;
    CPU_PARALLEL_FOR_IF(parallel)
    for (int block = 0; block < blocks; block++) {
        const int c0 = block * 64, c1 = std::min(C, c0 + 64);
        for (int i = 0; i < N; i++) {
            const T* x = inp + size_t(i) * C;
            const T* dy = dout + size_t(i) * C;
            for (int c = c0; c < c1; c++) {
                if (dweight) dweight[c] += dy[c] * ((x[c] - mean[i]) * rstd[i]);
                if (dbias) dbias[c] += dy[c];
            }
        }
    }
}

// residual_out = a + b, then out = layernorm(residual_out): the pair that follows each attention block,
// one kernel on the GPU. residual_out, out (N,C); mean, rstd (N).
template <typename T>
void fused_residual_layernorm_forward(T* residual_out, T* out, T* mean, T* rstd, const T* a, const T* b,
                                      const T* weight, const T* bias, int N, int C) {
    residual_forward(residual_out, a, b, size_t(N) * C);
    layernorm_forward(out, mean, rstd, residual_out, weight, bias, N, C);
}

}  // namespace cpu
