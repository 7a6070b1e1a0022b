// Softmax + cross-entropy over the real vocabulary, with a weight per position.
// logits (N,Vp): only the first V columns are real tokens; padded columns take no part.
// Position i has loss l_i = -log softmax(logits_i)[target_i] and weight w_i >= 0 (0 = ignored,
// e.g. a prompt token). The batch loss is sum_i w_i l_i / sum_i w_i.
#pragma once
#include <cmath>

namespace cpu {

// losses (N): the unweighted per-position loss l_i (computed for every position).
template <typename T>
void classifier_forward(T* losses, const T* logits, const int* targets, int N, int V, int Vp) {
    for (int i = 0; i < N; i++) {
        const T* z = logits + size_t(i) * Vp;
        T max_logit = z[0];
        for (int v = 1; v < V; v++) max_logit = std::max(max_logit, z[v]);
        T sum = 0;
        for (int v = 0; v < V; v++) sum += std::exp(z[v] - max_logit);
        losses[i] = std::log(sum) + max_logit - z[targets[i]];
    }
}

// dlogits (N,Vp), overwritten: (softmax - onehot(target)) * w_i / weight_sum; padded columns 0. dlogits may be
// logits (in place): each row is read whole before it is written, and each element before it is overwritten.
template <typename T>
void classifier_backward(T* dlogits, const T* logits, const int* targets, const float* weights, T weight_sum, int N,
                         int V, int Vp) {
    for (int i = 0; i < N; i++) {
        const T* z = logits + size_t(i) * Vp;
        T* dz = dlogits + size_t(i) * Vp;
        T scale = weight_sum > 0 ? T(weights[i]) / weight_sum : T(0);
        T max_logit = z[0];
        for (int v = 1; v < V; v++) max_logit = std::max(max_logit, z[v]);
        T sum = 0;
        for (int v = 0; v < V; v++) sum += std::exp(z[v] - max_logit);
        for (int v = 0; v < V; v++) dz[v] = std::exp(z[v] - max_logit) / sum * scale;
        for (int v = V; v < Vp; v++) dz[v] = 0;
        dz[targets[i]] -= scale;
    }
}

}  // namespace cpu
