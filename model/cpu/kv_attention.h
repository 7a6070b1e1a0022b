// One step of causal multi-head attention with a KV cache: greedy decoding's attention, one new token per
// sequence per call. The token at `position` (0-based, the same for all B sequences) arrives as its packed
// qkv row; its key and value are appended to the caches, and its query attends over positions 0..position.
// Same math and packing as model/cpu/attention.h, row `position` of it:
//   qkv (B,3C): q = qkv[b, 0:C], k = qkv[b, C:2C], v = qkv[b, 2C:3C]; head h owns channels [h*hs, (h+1)*hs),
//   hs = C/NH. key_cache, value_cache (B,max_T,C): row (b, j) holds the key / value of position j.
//   For every (b, h): s_j = q . k_j / sqrt(hs), p = softmax(s) over j = 0..position, out[b, h] = sum_j p_j v_j.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include "data/file_io.h"
#include "model/cpu/eigen_views.h"

namespace cpu {

// 0 <= position < max_T, else fails naming both.
inline void check_attention_step_position(int position, int max_T) {
    if (position < 0 || position >= max_T)
        fail("attention step: position " + std::to_string(position) + " is outside the cache of " +
             std::to_string(max_T) + " positions");
}

// out (B,C); key_cache, value_cache (B,max_T,C): row `position` overwritten with qkv's k and v, rows
// 0..position-1 read (written by the earlier steps); qkv (B,3C).
template <typename T>
void attention_step_forward(T* out, T* key_cache, T* value_cache, const T* qkv, int position, int B, int C, int NH,
                            int max_T) {
    check_attention_step_position(position, max_T);
    const int hs = C / NH, length = position + 1;
    const T scale = T(1) / std::sqrt(T(hs));
    Eigen::Matrix<T, Eigen::Dynamic, 1> scores(length);
    for (int b = 0; b < B; b++) {
        const T* row = qkv + size_t(b) * 3 * C;
        T* keys = key_cache + size_t(b) * max_T * C;
        T* values = value_cache + size_t(b) * max_T * C;
        std::copy(row + C, row + 2 * C, keys + size_t(position) * C);
        std::copy(row + 2 * C, row + 3 * C, values + size_t(position) * C);
        for (int h = 0; h < NH; h++) {
            ConstVectorView<T> q(row + h * hs, hs);
            ConstStridedMatrixView<T> K(keys + h * hs, length, hs, Eigen::OuterStride<>(C));
            ConstStridedMatrixView<T> V(values + h * hs, length, hs, Eigen::OuterStride<>(C));
            scores.noalias() = (K * q) * scale;
            scores = (scores.array() - scores.maxCoeff()).exp();
            scores /= scores.sum();
            VectorView<T>(out + size_t(b) * C + h * hs, hs).noalias() = V.transpose() * scores;
        }
    }
}

}  // namespace cpu
