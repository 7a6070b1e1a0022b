// Linear layer: out = inp W^T + bias, with W stored (OC, C) as in PyTorch.
#pragma once
#include "model/cpu/eigen_views.h"

namespace cpu {

// out (N,OC); inp (N,C); weight (OC,C); bias (OC) or null.
template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int C, int OC) {
    MatrixView<T> y(out, N, OC);
    y.noalias() = ConstMatrixView<T>(inp, N, C) * ConstMatrixView<T>(weight, OC, C).transpose();
    if (bias) y.rowwise() += ConstVectorView<T>(bias, OC).transpose();
}

// Accumulates dinp += dout W (N,C), dweight += dout^T inp (OC,C), dbias += column sums of dout (OC).
// Any of the three may be null: a frozen weight gets no product computed at all.
template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, int N, int C,
                     int OC) {
    ConstMatrixView<T> dy(dout, N, OC);
    if (dinp) MatrixView<T>(dinp, N, C).noalias() += dy * ConstMatrixView<T>(weight, OC, C);
    if (dweight) MatrixView<T>(dweight, OC, C).noalias() += dy.transpose() * ConstMatrixView<T>(inp, N, C);
    if (dbias) VectorView<T>(dbias, OC) += dy.colwise().sum().transpose();
}

}  // namespace cpu
