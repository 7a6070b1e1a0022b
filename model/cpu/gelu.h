// GELU, tanh form: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#pragma once
#include <cmath>

namespace cpu {

template <typename T>
void gelu_forward(T* out, const T* inp, size_t N) {
    const T k = T(std::sqrt(2.0 / M_PI));
    for (size_t i = 0; i < N; i++) {
        T x = inp[i];
        out[i] = T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
    }
}

// Accumulates dinp += dout * gelu'(inp).
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, size_t N) {
    const T k = T(std::sqrt(2.0 / M_PI));
    for (size_t i = 0; i < N; i++) {
        T x = inp[i];
        T u = k * (x + T(0.044715) * x * x * x);
        T th = std::tanh(u);
        T sech2 = T(1) - th * th;
        T du_dx = k * (T(1) + T(3 * 0.044715) * x * x);
        dinp[i] += dout[i] * (T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * du_dx);
    }
}

}  // namespace cpu
