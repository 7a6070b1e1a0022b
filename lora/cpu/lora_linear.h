// The multi-branch LoRA linear's adapter path, CPU reference (../shared/docs/METHODS.md section 1). The base
// product W0 h + b is matmul_forward (model/cpu/matmul.h); this adds the adapters' term to its output:
//   y = W0 h + b + scale * B_cat (w .* (A_cat h~))       scale = alpha / r, .* = elementwise product
// with the `branches` branches of rank r stacked: A_cat (R,C) and Bt = B_cat^T (R,OC), R = branches * r. B is
// stored transposed so that each branch owns a contiguous block of rows in both A_cat and Bt (a branch's
// parameters, gradients and optimizer state are then plain slices). Rows are tokens, so every product below is
// the row-major transpose of the one above. Frozen branches (numbered below first_trainable_branch) get no
// dA / dBt: no product is computed for them. T is float for training and double
// for the finite-difference checks (test/test_lora_linear.cpp); model/cuda/lora_linear.cu is the GPU version.
#pragma once
#include "model/cpu/eigen_views.h"
#include "lora/lora_shape.h"

namespace cpu {

namespace lora_detail {

// h~ (N,C) = inp .* dropout_mask (inverted dropout: the mask holds 0 or 1/(1-p)); inp itself when the mask is null
template <typename T>
MatrixRM<T> dropped_input(const T* inp, const T* dropout_mask, int N, int C) {
    ConstMatrixView<T> h(inp, N, C);
    if (!dropout_mask) return h;
    return h.cwiseProduct(ConstMatrixView<T>(dropout_mask, N, C));
}

// x (N,R) .*= w (N,branches), w[n,b] broadcast over branch b's columns b*r .. b*r+r-1
template <typename T>
void scale_by_block_weights(MatrixRM<T>& x, const T* block_weights, const LoraShape& s) {
    ConstMatrixView<T> w(block_weights, s.N, s.branches);
    for (int b = 0; b < s.branches; b++) x.middleCols(b * s.rank, s.rank).array().colwise() *= w.col(b).array();
}

}  // namespace lora_detail

// out (N,OC) += scale * weighted Bt; hidden (N,R) = h~ A_cat^T, written (the backward needs it).
// inp (N,C); A (R,C); Bt (R,OC); block_weights (N,branches) or null (all ones); dropout_mask (N,C) or null.
template <typename T>
void lora_forward(T* out, T* hidden, const T* inp, const T* A, const T* Bt, const T* block_weights,
                  const T* dropout_mask, T scale, LoraShape s) {
    const int R = s.branches * s.rank;
    MatrixView<T> hid(hidden, s.N, R);
    // hidden (N,R) = h~ (N,C) A_cat^T (C,R)
    hid.noalias() = lora_detail::dropped_input(inp, dropout_mask, s.N, s.C) * ConstMatrixView<T>(A, R, s.C).transpose();
    // weighted (N,R) = hidden .* w
    MatrixRM<T> weighted = hid;
    if (block_weights) lora_detail::scale_by_block_weights(weighted, block_weights, s);
    // out (N,OC) += scale * weighted (N,R) Bt (R,OC)
    MatrixView<T>(out, s.N, s.OC).noalias() += scale * (weighted * ConstMatrixView<T>(Bt, R, s.OC));
}

// Accumulates, from dout (N,OC): dinp (N,C); the trainable rows of dA (R,C) and of dBt (R,OC);
// d_block_weights (N,branches). Any of the four may be null (not wanted); frozen rows of dA / dBt are untouched.
// hidden (N,R) is the forward's; the other inputs are the forward's too.
template <typename T>
void lora_backward(T* dinp, T* dA, T* dBt, T* d_block_weights, const T* dout, const T* inp, const T* hidden,
                   const T* A, const T* Bt, const T* block_weights, const T* dropout_mask, T scale, LoraShape s) {
    const int R = s.branches * s.rank;
    const int frozen = s.first_trainable_branch * s.rank;  // columns of hidden (rows of A_cat) that are frozen
    const int trainable = R - frozen;                      // the trainable columns / rows that follow them
    ConstMatrixView<T> dy(dout, s.N, s.OC), hid(hidden, s.N, R);

    // g (N,R) = scale * dout (N,OC) Bt^T (OC,R): the gradient with respect to weighted
    MatrixRM<T> g = scale * (dy * ConstMatrixView<T>(Bt, R, s.OC).transpose());

    // dBt[trainable, :] (R_t,OC) += scale * weighted[:, trainable]^T (R_t,N) dout (N,OC)
    if (dBt && trainable > 0) {
        MatrixRM<T> weighted = hid;
        if (block_weights) lora_detail::scale_by_block_weights(weighted, block_weights, s);
        MatrixView<T>(dBt, R, s.OC).bottomRows(trainable).noalias() +=
            scale * (weighted.rightCols(trainable).transpose() * dy);
    }

    // d_block_weights[n,b] (N,branches) += sum over branch b's r columns of (g .* hidden)[n, :]
    if (d_block_weights) {
        MatrixView<T> dw(d_block_weights, s.N, s.branches);
        for (int b = 0; b < s.branches; b++) {
            const int first = b * s.rank;
            dw.col(b) += g.middleCols(first, s.rank).cwiseProduct(hid.middleCols(first, s.rank)).rowwise().sum();
        }
    }

    // gw (N,R) = g .* w: the gradient with respect to hidden
    if (block_weights) lora_detail::scale_by_block_weights(g, block_weights, s);

    // dA_cat[trainable, :] (R_t,C) += gw[:, trainable]^T (R_t,N) h~ (N,C)
    if (dA && trainable > 0)
        MatrixView<T>(dA, R, s.C).bottomRows(trainable).noalias() +=
            g.rightCols(trainable).transpose() * lora_detail::dropped_input(inp, dropout_mask, s.N, s.C);

    // dinp (N,C) += (gw (N,R) A_cat (R,C)) .* dropout_mask
    if (dinp) {
        MatrixView<T> dx(dinp, s.N, s.C);
        ConstMatrixView<T> a(A, R, s.C);
        if (dropout_mask) dx += (g * a).cwiseProduct(ConstMatrixView<T>(dropout_mask, s.N, s.C));
        else dx.noalias() += g * a;
    }
}

}  // namespace cpu
