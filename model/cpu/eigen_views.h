// Eigen views over the flat row-major buffers that every kernel takes: no copies, shapes explicit.
#pragma once
#include <Eigen/Dense>

namespace cpu {

template <typename T>
using MatrixRM = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixView = Eigen::Map<MatrixRM<T>>;
template <typename T>
using ConstMatrixView = Eigen::Map<const MatrixRM<T>>;
template <typename T>
using VectorView = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstVectorView = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
// A (rows, cols) window whose rows are `stride` elements apart (one head of a packed qkv tensor, say).
template <typename T>
using StridedMatrixView = Eigen::Map<MatrixRM<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using ConstStridedMatrixView = Eigen::Map<const MatrixRM<T>, 0, Eigen::OuterStride<>>;

}  // namespace cpu
