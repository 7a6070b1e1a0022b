// Causal multi-head self-attention on a packed qkv tensor.
// qkv (B,T,3C): channels [0,C) are the queries, [C,2C) the keys, [2C,3C) the values; head h owns the
// hs = C/NH channels [h*hs, (h+1)*hs) of each. For every (b, h):
//   S = Q K^T / sqrt(hs)  (T,T), P = softmax of each row over the positions s <= t, out = P V  (T,hs).
//
// The causal half is skipped: rows go in blocks of attention_block_rows, and a block of rows [r0, r1) multiplies
// only the keys and values [0, r1) (the part above the diagonal inside the block is computed and masked). The
// (b, h) pairs run in parallel (OpenMP), each computed the same way whichever thread takes it.
#pragma once
#include <algorithm>
#include <cmath>

#include "model/cpu/eigen_views.h"
#include "model/cpu/threads.h"

namespace cpu {

constexpr int attention_block_rows = 64;

// out (B,T,C); att (B,NH,T,T) the probabilities P, saved for the backward (zero above the diagonal).
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int T_, int C, int NH) {
    const int hs = C / NH;
    const T scale = T(1) / std::sqrt(T(hs));
    CPU_PARALLEL_FOR_IF(double(B) * NH * T_ * T_ * hs >= parallel_min_multiply_adds)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const T* base = qkv + size_t(b) * T_ * 3 * C + h * hs;
        ConstStridedMatrixView<T> Q(base, T_, hs, Eigen::OuterStride<>(3 * C));
        ConstStridedMatrixView<T> K(base + C, T_, hs, Eigen::OuterStride<>(3 * C));
        ConstStridedMatrixView<T> V(base + 2 * C, T_, hs, Eigen::OuterStride<>(3 * C));
        MatrixView<T> P(att + size_t(bh) * T_ * T_, T_, T_);
        StridedMatrixView<T> O(out + size_t(b) * T_ * C + h * hs, T_, hs, Eigen::OuterStride<>(C));
        for (int r0 = 0; r0 < T_; r0 += attention_block_rows) {
            const int rows = std::min(attention_block_rows, T_ - r0), r1 = r0 + rows;
            auto S = P.block(r0, 0, rows, r1);  // the scores of rows [r0, r1) against keys [0, r1)
            S.noalias() = (Q.middleRows(r0, rows) * K.topRows(r1).transpose()) * scale;
            for (int t = r0; t < r1; t++) {
                auto row = P.row(t);
                T max_score = row.head(t + 1).maxCoeff();
                row.head(t + 1) = (row.head(t + 1).array() - max_score).exp();
                row.head(t + 1) /= row.head(t + 1).sum();
                row.tail(T_ - t - 1).setZero();
            }
            O.middleRows(r0, rows).noalias() = S * V.topRows(r1);
        }
    }
}

// Accumulates dqkv (B,T,3C) from dout (B,T,C), using qkv and the saved probabilities att.
//   dP = dO V^T, dV = P^T dO, dS = P * (dP - rowsum(dP * P)), dQ = dS K / sqrt(hs), dK = dS^T Q / sqrt(hs),
// block of rows by block of rows as in the forward (P is zero above the diagonal, so dS is too).
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int T_, int C, int NH) {
    const int hs = C / NH;
    const T scale = T(1) / std::sqrt(T(hs));
    CPU_PARALLEL_FOR_IF(double(B) * NH * T_ * T_ * hs >= parallel_min_multiply_adds)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        MatrixRM<T> dS(attention_block_rows, T_);  // one block's dP, then dS / sqrt(hs)
        size_t offset = size_t(b) * T_ * 3 * C + h * hs;
        Eigen::OuterStride<> packed(3 * C);
        ConstStridedMatrixView<T> Q(qkv + offset, T_, hs, packed);
        ConstStridedMatrixView<T> K(qkv + offset + C, T_, hs, packed);
        ConstStridedMatrixView<T> V(qkv + offset + 2 * C, T_, hs, packed);
        StridedMatrixView<T> dQ(dqkv + offset, T_, hs, packed);
        StridedMatrixView<T> dK(dqkv + offset + C, T_, hs, packed);
        StridedMatrixView<T> dV(dqkv + offset + 2 * C, T_, hs, packed);
        ConstMatrixView<T> P_all(att + size_t(bh) * T_ * T_, T_, T_);
        ConstStridedMatrixView<T> dO_all(dout + size_t(b) * T_ * C + h * hs, T_, hs, Eigen::OuterStride<>(C));
        for (int r0 = 0; r0 < T_; r0 += attention_block_rows) {
            const int rows = std::min(attention_block_rows, T_ - r0), r1 = r0 + rows;
            auto P = P_all.block(r0, 0, rows, r1);
            auto dO = dO_all.middleRows(r0, rows);
            auto dP = dS.topLeftCorner(rows, r1);
            dP.noalias() = dO * V.topRows(r1).transpose();
            dV.topRows(r1).noalias() += P.transpose() * dO;
            // softmax backward, row by row
            auto row_dot = (dP.array() * P.array()).rowwise().sum().eval();
            dP = (P.array() * (dP.array().colwise() - row_dot)).matrix() * scale;  // dS / sqrt(hs)
            dQ.middleRows(r0, rows).noalias() += dP * K.topRows(r1);
            dK.topRows(r1).noalias() += dP.transpose() * Q.middleRows(r0, rows);
        }
    }
}

}  // namespace cpu
