// Causal multi-head self-attention on a packed qkv tensor.
// qkv (B,T,3C): channels [0,C) are the queries, [C,2C) the keys, [2C,3C) the values; head h owns the
// hs = C/NH channels [h*hs, (h+1)*hs) of each. For every (b, h):
//   S = Q K^T / sqrt(hs)  (T,T), P = softmax of each row over the positions s <= t, out = P V  (T,hs).
#pragma once
#include <cmath>
#include <limits>

#include "model/cpu/eigen_views.h"

namespace cpu {

// out (B,T,C); att (B,NH,T,T) the probabilities P, saved for the backward (zero above the diagonal).
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int T_, int C, int NH) {
    const int hs = C / NH;
    const T scale = T(1) / std::sqrt(T(hs));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const T* base = qkv + size_t(b) * T_ * 3 * C + h * hs;
            ConstStridedMatrixView<T> Q(base, T_, hs, Eigen::OuterStride<>(3 * C));
            ConstStridedMatrixView<T> K(base + C, T_, hs, Eigen::OuterStride<>(3 * C));
            ConstStridedMatrixView<T> V(base + 2 * C, T_, hs, Eigen::OuterStride<>(3 * C));
            MatrixView<T> P(att + (size_t(b) * NH + h) * T_ * T_, T_, T_);
            P.noalias() = (Q * K.transpose()) * scale;
            for (int t = 0; t < T_; t++) {
                auto row = P.row(t);
                T max_score = row.head(t + 1).maxCoeff();
                row.head(t + 1) = (row.head(t + 1).array() - max_score).exp();
                row.head(t + 1) /= row.head(t + 1).sum();
                row.tail(T_ - t - 1).setZero();
            }
            StridedMatrixView<T> O(out + size_t(b) * T_ * C + h * hs, T_, hs, Eigen::OuterStride<>(C));
            O.noalias() = P * V;
        }
}

// Accumulates dqkv (B,T,3C) from dout (B,T,C), using qkv and the saved probabilities att.
//   dP = dO V^T, dV = P^T dO, dS = P * (dP - rowsum(dP * P)), dQ = dS K / sqrt(hs), dK = dS^T Q / sqrt(hs).
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int T_, int C, int NH) {
    const int hs = C / NH;
    const T scale = T(1) / std::sqrt(T(hs));
    MatrixRM<T> dP(T_, T_);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t offset = size_t(b) * T_ * 3 * C + h * hs;
            Eigen::OuterStride<> packed(3 * C);
            ConstStridedMatrixView<T> Q(qkv + offset, T_, hs, packed);
            ConstStridedMatrixView<T> K(qkv + offset + C, T_, hs, packed);
            ConstStridedMatrixView<T> V(qkv + offset + 2 * C, T_, hs, packed);
            StridedMatrixView<T> dQ(dqkv + offset, T_, hs, packed);
            StridedMatrixView<T> dK(dqkv + offset + C, T_, hs, packed);
            StridedMatrixView<T> dV(dqkv + offset + 2 * C, T_, hs, packed);
            ConstMatrixView<T> P(att + (size_t(b) * NH + h) * T_ * T_, T_, T_);
            ConstStridedMatrixView<T> dO(dout + size_t(b) * T_ * C + h * hs, T_, hs, Eigen::OuterStride<>(C));

            dP.noalias() = dO * V.transpose();
            dV.noalias() += P.transpose() * dO;
            // softmax backward, row by row; entries above the diagonal have P = 0 and so dS = 0
            auto row_dot = (dP.array() * P.array()).rowwise().sum().eval();
            dP = (P.array() * (dP.array().colwise() - row_dot)).matrix() * scale;  // dP now holds dS / sqrt(hs)
            dQ.noalias() += dP * K;
            dK.noalias() += dP.transpose() * Q;
        }
}

}  // namespace cpu
