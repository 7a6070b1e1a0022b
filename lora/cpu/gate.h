// GainLoRA's gate (lora/METHODS.md section 7), CPU reference: one scalar per sequence, computed from its
// prompt and applied to a branch's LoRA term at every adapted linear and every position of that sequence.
// For S sequences, with C channels and a hidden size m:
//   p0 (S,C) = mean of the token embeddings wte (Vp,C) over each prompt's tokens          gate_prompt_mean
//   z1 (S,m) = p0 W1^T     W1 (m,C)         p1 = SiLU(z1)        SiLU(z) = z sigmoid(z)
//   z2 (S,C) = p1 W2^T     W2 (C,m)         p2 = SiLU(z2)
//   b  (S)   = cos(p2, k)  k (C)            cos(x, y) = x.y / (max(|x|, eps) max(|y|, eps)), eps = 1e-8
//   g  (S)   = |2 sigmoid(4 b) - 1| = |tanh(2 b)|     in [0, 1)                          gate_forward
// and the gradients of the parameters from dg (S)                                        gate_backward
//   u = tanh(2b): db = dg sign(u) 2 (1 - u^2)          (sign(0) = 0)
//   db/dp2 = k / (|p2| |k|) - b p2 / |p2|^2            db/dk = p2 / (|p2| |k|) - b k / |k|^2
//   (a norm clamped at eps is a constant: its term drops)
//   dz2 = dp2 .* SiLU'(z2)    SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z)
//   dW2 (C,m) += dz2^T p1     dp1 (S,m) = dz2 W2     dz1 = dp1 .* SiLU'(z1)     dW1 (m,C) += dz1^T p0
// The embeddings are frozen: no dp0. The per-row block weights of the LoRA linear (model/lora_adapters.h) come from the
// gates by broadcasting over each sequence's T rows (gate_expand_rows), and a gate's dg is the sum of its branch's
// block-weight gradients over those rows (gate_rows_backward). GainLoRA's projected update of the gate's
// parameters (W <- W - dW M M^T, section 7) is gate_project_update.
// T is float for training and double for the finite-difference checks (test/test_gainlora.cpp); the GPU version is
// lora/cuda/gate.cu (lora/cuda/gate_kernels.h).
#pragma once
#include <cmath>

#include "model/cpu/eigen_views.h"

namespace cpu {

namespace gate_detail {

constexpr double NORM_EPS = 1e-8;  // cosine's clamp of each norm (as torch.nn.functional.cosine_similarity)

template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

template <typename T>
T sigmoid(T z) {
    return T(1) / (T(1) + std::exp(-z));
}
// SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z)
template <typename T>
T silu_derivative(T z) {
    const T s = sigmoid(z);
    return s * (T(1) + z * (T(1) - s));
}

}  // namespace gate_detail

// p0 (S,C): row s = mean of wte rows tokens[offsets[s]] .. tokens[offsets[s+1]-1] (offsets (S+1), ascending;
// an empty prompt gives a zero row). wte (Vp,C); token ids are trusted (checked by the caller).
template <typename T>
void gate_prompt_mean(T* p0, const T* wte, const int* tokens, const int* offsets, int S, int C) {
    MatrixView<T> out(p0, S, C);
    out.setZero();
    for (int s = 0; s < S; s++) {
        const int first = offsets[s], last = offsets[s + 1];
        for (int i = first; i < last; i++) out.row(s) += ConstMatrixView<T>(wte + size_t(tokens[i]) * C, 1, C);
        if (last > first) out.row(s) /= T(last - first);
    }
}

// g (S) and the activations the backward needs: z1, p1 (S,m); z2, p2 (S,C). p0 (S,C); W1 (m,C); W2 (C,m); k (C).
template <typename T>
void gate_forward(T* g, T* z1, T* p1, T* z2, T* p2, const T* p0, const T* W1, const T* W2, const T* k, int S, int C,
                  int m) {
    using gate_detail::sigmoid;
    MatrixView<T> Z1(z1, S, m), P1(p1, S, m), Z2(z2, S, C), P2(p2, S, C);
    // z1 (S,m) = p0 (S,C) W1^T (C,m);  p1 = SiLU(z1)
    Z1.noalias() = ConstMatrixView<T>(p0, S, C) * ConstMatrixView<T>(W1, m, C).transpose();
    P1 = Z1.unaryExpr([](T z) { return z * sigmoid(z); });
    // z2 (S,C) = p1 (S,m) W2^T (m,C);  p2 = SiLU(z2)
    Z2.noalias() = P1 * ConstMatrixView<T>(W2, C, m).transpose();
    P2 = Z2.unaryExpr([](T z) { return z * sigmoid(z); });
    // b = cos(p2, k); g = |tanh(2b)|
    Eigen::Map<const gate_detail::RowVector<T>> key(k, C);
    const T key_norm = std::max(T(key.norm()), T(gate_detail::NORM_EPS));
    for (int s = 0; s < S; s++) {
        const T p2_norm = std::max(T(P2.row(s).norm()), T(gate_detail::NORM_EPS));
        const T b = P2.row(s).dot(key) / (p2_norm * key_norm);
        g[s] = std::abs(std::tanh(T(2) * b));
    }
}

// Accumulates dW1 (m,C), dW2 (C,m), dk (C) from dg (S), after gate_forward with the same inputs (z1, p1, z2, p2 are
// its activations). Any of the three may be null (not wanted; dW1 needs the chain through W2 anyway).
template <typename T>
void gate_backward(T* dW1, T* dW2, T* dk, const T* dg, const T* p0, const T* z1, const T* p1, const T* z2,
                   const T* p2, const T* W2, const T* k, int S, int C, int m) {
    using gate_detail::NORM_EPS;
    ConstMatrixView<T> P2(p2, S, C);
    Eigen::Map<const gate_detail::RowVector<T>> key(k, C);
    const T key_length = T(key.norm());
    const T key_norm = std::max(key_length, T(NORM_EPS));
    // dz2 (S,C) = dp2 .* SiLU'(z2), dp2 = db (k / (|p2||k|) - b p2 / |p2|^2); dk (1,C) accumulated over s
    MatrixRM<T> dz2(S, C);
    gate_detail::RowVector<T> dkey = gate_detail::RowVector<T>::Zero(C);
    for (int s = 0; s < S; s++) {
        const T p2_length = T(P2.row(s).norm());
        const T p2_norm = std::max(p2_length, T(NORM_EPS));
        const T b = P2.row(s).dot(key) / (p2_norm * key_norm);
        const T u = std::tanh(T(2) * b);
        const T sign = T((u > T(0)) - (u < T(0)));
        const T db = dg[s] * sign * T(2) * (T(1) - u * u);
        gate_detail::RowVector<T> dp2 = (db / (p2_norm * key_norm)) * key;
        if (p2_length > T(NORM_EPS)) dp2 -= (db * b / (p2_norm * p2_norm)) * P2.row(s);
        dkey += (db / (p2_norm * key_norm)) * P2.row(s);
        if (key_length > T(NORM_EPS)) dkey -= (db * b / (key_norm * key_norm)) * key;
        for (int c = 0; c < C; c++) dz2(s, c) = dp2(c) * gate_detail::silu_derivative(z2[size_t(s) * C + c]);
    }
    if (dk) Eigen::Map<gate_detail::RowVector<T>>(dk, C) += dkey;
    // dW2 (C,m) += dz2^T (C,S) p1 (S,m)
    if (dW2) MatrixView<T>(dW2, C, m).noalias() += dz2.transpose() * ConstMatrixView<T>(p1, S, m);
    if (!dW1) return;
    // dz1 (S,m) = (dz2 (S,C) W2 (C,m)) .* SiLU'(z1);  dW1 (m,C) += dz1^T (m,S) p0 (S,C)
    MatrixRM<T> dz1 = dz2 * ConstMatrixView<T>(W2, C, m);
    dz1 = dz1.cwiseProduct(ConstMatrixView<T>(z1, S, m).unaryExpr(&gate_detail::silu_derivative<T>));
    MatrixView<T>(dW1, m, C).noalias() += dz1.transpose() * ConstMatrixView<T>(p0, S, C);
}

// block_weights (S*T, G), T = positions: row s*T + t, column i = gates[i*S + s] for every position t of sequence s
// (gates (G,S): gate i's values for the S sequences, one after another).
template <typename T>
void gate_expand_rows(T* block_weights, const T* gates, int S, int positions, int G) {
    for (int s = 0; s < S; s++)
        for (int t = 0; t < positions; t++)
            for (int i = 0; i < G; i++) block_weights[(size_t(s) * positions + t) * G + i] = gates[size_t(i) * S + s];
}

// dg (S) = sum over t of d_block_weights[s*T + t, branch]  (d_block_weights (S*T, G), T = positions); overwrites.
template <typename T>
void gate_rows_backward(T* dg, const T* d_block_weights, int S, int positions, int G, int branch) {
    for (int s = 0; s < S; s++) {
        T sum = T(0);
        for (int t = 0; t < positions; t++) sum += d_block_weights[(size_t(s) * positions + t) * G + branch];
        dg[s] = sum;
    }
}

// GainLoRA's projected update of one gate parameter W (rows,D) after an optimizer step: with dW = W - W_old,
//   W <- W - dW M M^T,  M = Mt^T (D,k) an orthonormal basis (Mt (k,D): basis vectors as rows)
// so that W x is unchanged by the step for every x in span(M). With restore_norm, each row of W is then scaled
// back to its norm before the projection (the official code's option). k = 0: nothing.
template <typename T>
void gate_project_update(T* W, const T* W_old, const T* Mt, int rows, int D, int k, bool restore_norm) {
    if (k == 0) return;
    MatrixView<T> w(W, rows, D);
    ConstMatrixView<T> basis(Mt, k, D);
    Eigen::Matrix<T, Eigen::Dynamic, 1> norms = w.rowwise().norm();
    // dW (rows,D); projection (rows,D) = (dW (rows,D) Mt^T (D,k)) Mt (k,D)
    const MatrixRM<T> dW = w - ConstMatrixView<T>(W_old, rows, D);
    const MatrixRM<T> coefficients = dW * basis.transpose();
    w.noalias() -= coefficients * basis;
    if (!restore_norm) return;
    for (int r = 0; r < rows; r++) {
        const T now = T(w.row(r).norm());
        if (now > T(0)) w.row(r) *= norms(r) / now;
    }
}

}  // namespace cpu
