// Softmax + cross-entropy over the real vocabulary, with a weight per position.
// logits (N,Vp): only the first V columns are real tokens; padded columns take no part.
// Position i has loss l_i = -log softmax(logits_i)[target_i] and weight w_i >= 0 (0 = ignored,
// e.g. a prompt token). The batch loss is sum_i w_i l_i / sum_i w_i.
//
// One pass per row: its max, then exp(z - max) once (Eigen's vectorised exp) summed as it is written, and the
// loss and the gradient from that sum; nothing beyond the logits' own memory is written. Rows run in parallel
// (OpenMP); each row is computed the same way whichever thread takes it and wherever it lies in memory (blocks of
// 16 logits, see below), so the result depends neither on the thread count nor on the buffers' alignment.
#pragma once
#include <cmath>

#include "model/cpu/eigen_views.h"
#include "model/cpu/threads.h"

namespace cpu {

// sum_v exp(z_v - shift) over v < V, each term written to out[v] when out is given (out may be z). In blocks of 16:
// every term goes through Eigen's vectorised exp (a partial last block too, its unused lanes zeroed), summed into 16
// lanes that are added in a fixed order at the end, so the bits do not depend on where z lies in memory.
template <typename T>
T exp_shifted_sum(T* out, const T* z, int V, T shift) {
    using Block = Eigen::Array<T, 16, 1>;
    Block lanes = Block::Zero();
    int v = 0;
    for (; v + 16 <= V; v += 16) {
        const Block e = (Eigen::Map<const Block>(z + v) - shift).exp();
        if (out) Eigen::Map<Block>(out + v) = e;
        lanes += e;
    }
    if (const int rest = V - v; rest > 0) {
        Block tail = Block::Constant(shift);
        for (int i = 0; i < rest; i++) tail[i] = z[v + i];
        Block e = (tail - shift).exp();
        for (int i = rest; i < 16; i++) e[i] = T(0);
        if (out)
            for (int i = 0; i < rest; i++) out[v + i] = e[i];
        lanes += e;
    }
    return lanes.sum();
}

// losses (N): the unweighted per-position loss l_i (computed for every position).
template <typename T>
void classifier_forward(T* losses, const T* logits, const int* targets, int N, int V, int Vp) {
    CPU_PARALLEL_FOR_IF(size_t(N) * V >= parallel_min_elements)
    for (int i = 0; i < N; i++) {
        const T* z = logits + size_t(i) * Vp;
        const T max_logit = ConstArrayView<T>(z, V).maxCoeff();
        const T sum = exp_shifted_sum<T>(nullptr, z, V, max_logit);
        losses[i] = std::log(sum) + max_logit - z[targets[i]];
    }
}

// losses (N) as above, and dlogits (N,Vp), overwritten: (softmax - onehot(target)) * w_i / weight_sum; padded
// columns 0. dlogits may be logits (in place): z[target] is read before the row is overwritten.
template <typename T>
void classifier_forward_backward(T* losses, T* dlogits, const T* logits, const int* targets, const float* weights,
                                 T weight_sum, int N, int V, int Vp) {
    CPU_PARALLEL_FOR_IF(size_t(N) * V >= parallel_min_elements)
    for (int i = 0; i < N; i++) {
        const T* z = logits + size_t(i) * Vp;
        T* dz = dlogits + size_t(i) * Vp;
        const T scale = weight_sum > 0 ? T(weights[i]) / weight_sum : T(0);
        const T max_logit = ConstArrayView<T>(z, V).maxCoeff();
        const T target_logit = z[targets[i]];
        const T sum = exp_shifted_sum(dz, z, V, max_logit);  // the one exp of each logit, into dz
        if (losses) losses[i] = std::log(sum) + max_logit - target_logit;
        const T factor = scale / sum;
        for (int v = 0; v < V; v++) dz[v] *= factor;
        for (int v = V; v < Vp; v++) dz[v] = 0;
        dz[targets[i]] -= scale;
    }
}

// dlogits only (as above, without the losses)
template <typename T>
void classifier_backward(T* dlogits, const T* logits, const int* targets, const float* weights, T weight_sum, int N,
                         int V, int Vp) {
    classifier_forward_backward<T>(nullptr, dlogits, logits, targets, weights, weight_sum, N, V, Vp);
}

}  // namespace cpu
