// Layer normalisation over the last dimension: y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + 1e-5).
#pragma once
#include <cmath>

namespace cpu {

// out (N,C); mean, rstd (N) saved for the backward; inp (N,C); weight, bias (C). N = B*T rows.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias, int N, int C) {
    const T eps = T(1e-5);
    for (int i = 0; i < N; i++) {
        const T* x = inp + i * C;
        T m = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        T variance = 0;
        for (int c = 0; c < C; c++) variance += (x[c] - m) * (x[c] - m);
        variance /= C;
        T s = T(1) / std::sqrt(variance + eps);
        T* y = out + i * C;
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
    for (int i = 0; i < N; i++) {
        const T* x = inp + i * C;
        const T* dy = dout + i * C;
        T* dx = dinp + i * C;
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
            if (dweight) dweight[c] += dy[c] * xhat;
            if (dbias) dbias[c] += dy[c];
        }
    }
}

// residual_out = a + b, then out = layernorm(residual_out): the pair that follows each attention block,
// one kernel on the GPU. residual_out, out (N,C); mean, rstd (N).
template <typename T>
void fused_residual_layernorm_forward(T* residual_out, T* out, T* mean, T* rstd, const T* a, const T* b,
                                      const T* weight, const T* bias, int N, int C) {
    for (size_t i = 0; i < size_t(N) * C; i++) residual_out[i] = a[i] + b[i];
    layernorm_forward(out, mean, rstd, residual_out, weight, bias, N, C);
}

}  // namespace cpu
