// I-LoRA's elementwise kernels (lora/METHODS.md section 8), CPU reference: the consistency loss between
// the fast and the slow model's final hidden states, and the EMA that moves the slow adapter towards the fast one.
// T is float for training and double for the finite-difference checks (test/test_ilora.cpp);
// lora/cuda/consistency.cu is the GPU version, checked against this one.
//
// Consistency loss over N rows (tokens) of C channels, with one weight per row:
//   L        = sum_n w[n] sum_c (h_fast[n,c] - h_slow[n,c])^2
//   dL/dh_fast[n,c] = 2 w[n] (h_fast[n,c] - h_slow[n,c])
// I-LoRA takes w[n] = gamma / (count * C) on the `count` replay rows' real (non-padding) positions and 0 elsewhere,
// so that L = gamma * (the mean over those positions and the channels of the squared difference).
#pragma once
#include <cstddef>

namespace cpu {

// dh (N,C) = 2 w[n] (h_fast - h_slow), overwritten; row_losses (N) = w[n] sum_c (h_fast - h_slow)^2, overwritten
// (the caller sums them in order). h_fast, h_slow (N,C); row_weights (N).
template <typename T>
void consistency_loss(T* dh, T* row_losses, const T* h_fast, const T* h_slow, const T* row_weights, int N, int C) {
    for (int n = 0; n < N; n++) {
        const T w = row_weights[n];
        const T* f = h_fast + size_t(n) * C;
        const T* s = h_slow + size_t(n) * C;
        T* d = dh + size_t(n) * C;
        double sum = 0;  // sum_c (f - s)^2
        for (int c = 0; c < C; c++) {
            const T difference = f[c] - s[c];
            sum += double(difference) * double(difference);
            d[c] = T(2) * w * difference;
        }
        row_losses[n] = T(double(w) * sum);
    }
}

// slow (count) = lambda * slow + (1 - lambda) * fast, elementwise (an axpby).
template <typename T>
void ema_update(T* slow, const T* fast, size_t count, T lambda) {
    const T keep = lambda, take = T(1) - lambda;
    for (size_t i = 0; i < count; i++) slow[i] = keep * slow[i] + take * fast[i];
}

}  // namespace cpu
