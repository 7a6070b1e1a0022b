// The multi-branch LoRA linear's adapter path, CPU reference (lora/METHODS.md section 1). The base
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
#include "model/lora_shape.h"

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
template <typename Matrix, typename T>
void scale_by_block_weights(Matrix& x, const T* block_weights, const LoraShape& s) {
    ConstMatrixView<T> w(block_weights, s.N, s.branches);
    for (int b = 0; b < s.branches; b++) x.middleCols(b * s.rank, s.rank).array().colwise() *= w.col(b).array();
}

}  // namespace lora_detail

// The forward in two halves, so that a method can compute the block weights from hidden in between (AM-LoRA's
// attention, lora/cpu/attention_mixture.h): hidden (N,R) = h~ A_cat^T (written), then out (N,OC) += scale *
// (hidden .* w) Bt. inp (N,C); A (R,C); Bt (R,OC); block_weights (N,branches) or null (all ones); dropout_mask
// (N,C) or null.
template <typename T>
void lora_down_forward(T* hidden, const T* inp, const T* A, const T* dropout_mask, LoraShape s) {
    const int R = s.branches * s.rank;
    // hidden (N,R) = h~ (N,C) A_cat^T (C,R)
    MatrixView<T>(hidden, s.N, R).noalias() =
        lora_detail::dropped_input(inp, dropout_mask, s.N, s.C) * ConstMatrixView<T>(A, R, s.C).transpose();
}

template <typename T>
void lora_up_forward(T* out, const T* hidden, const T* Bt, const T* block_weights, T scale, LoraShape s) {
    const int R = s.branches * s.rank;
    // weighted (N,R) = hidden .* w
    MatrixRM<T> weighted = ConstMatrixView<T>(hidden, s.N, R);
    if (block_weights) lora_detail::scale_by_block_weights(weighted, block_weights, s);
    // out (N,OC) += scale * weighted (N,R) Bt (R,OC)
    MatrixView<T>(out, s.N, s.OC).noalias() += scale * (weighted * ConstMatrixView<T>(Bt, R, s.OC));
}

// out (N,OC) += scale * weighted Bt; hidden (N,R) = h~ A_cat^T, written (the backward needs it).
template <typename T>
void lora_forward(T* out, T* hidden, const T* inp, const T* A, const T* Bt, const T* block_weights,
                  const T* dropout_mask, T scale, LoraShape s) {
    lora_down_forward(hidden, inp, A, dropout_mask, s);
    lora_up_forward(out, hidden, Bt, block_weights, scale, s);
}

// The backward in two halves, the mirror of the forward's: lora_up_backward goes from dout to d_hidden, the
// gradient with respect to hidden (where a method adds the gradient of whatever it computed from hidden), and
// lora_down_backward from d_hidden to dinp and dA.
//
// From dout (N,OC): d_hidden (N,R) = (scale * dout Bt^T) .* w, written; accumulates the trainable rows of dBt
// (R,OC) and d_block_weights (N,branches). dBt and d_block_weights may be null (not wanted).
template <typename T>
void lora_up_backward(T* d_hidden, T* dBt, T* d_block_weights, const T* dout, const T* hidden, const T* Bt,
                      const T* block_weights, T scale, LoraShape s) {
    const int R = s.branches * s.rank;
    const int trainable = R - s.first_trainable_branch * s.rank;  // the trainable columns of hidden, last
    ConstMatrixView<T> dy(dout, s.N, s.OC), hid(hidden, s.N, R);

    // g (N,R) = scale * dout (N,OC) Bt^T (OC,R): the gradient with respect to weighted
    MatrixView<T> g(d_hidden, s.N, R);
    g.noalias() = scale * (dy * ConstMatrixView<T>(Bt, R, s.OC).transpose());

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

    // d_hidden = g .* w
    if (block_weights) lora_detail::scale_by_block_weights(g, block_weights, s);
}

// From d_hidden (N,R): accumulates dinp (N,C) and the trainable rows of dA (R,C); either may be null.
template <typename T>
void lora_down_backward(T* dinp, T* dA, const T* d_hidden, const T* inp, const T* A, const T* dropout_mask,
                        LoraShape s) {
    const int R = s.branches * s.rank;
    const int trainable = R - s.first_trainable_branch * s.rank;
    ConstMatrixView<T> gw(d_hidden, s.N, R);

    // dA_cat[trainable, :] (R_t,C) += d_hidden[:, trainable]^T (R_t,N) h~ (N,C)
    if (dA && trainable > 0)
        MatrixView<T>(dA, R, s.C).bottomRows(trainable).noalias() +=
            gw.rightCols(trainable).transpose() * lora_detail::dropped_input(inp, dropout_mask, s.N, s.C);

    // dinp (N,C) += (d_hidden (N,R) A_cat (R,C)) .* dropout_mask
    if (dinp) {
        MatrixView<T> dx(dinp, s.N, s.C);
        ConstMatrixView<T> a(A, R, s.C);
        if (dropout_mask) dx += (gw * a).cwiseProduct(ConstMatrixView<T>(dropout_mask, s.N, s.C));
        else dx.noalias() += gw * a;
    }
}

// Accumulates, from dout (N,OC): dinp (N,C); the trainable rows of dA (R,C) and of dBt (R,OC);
// d_block_weights (N,branches). Any of the four may be null (not wanted); frozen rows of dA / dBt are untouched.
// hidden (N,R) is the forward's; the other inputs are the forward's too.
template <typename T>
void lora_backward(T* dinp, T* dA, T* dBt, T* d_block_weights, const T* dout, const T* inp, const T* hidden,
                   const T* A, const T* Bt, const T* block_weights, const T* dropout_mask, T scale, LoraShape s) {
    MatrixRM<T> d_hidden(s.N, s.branches * s.rank);
    lora_up_backward(d_hidden.data(), dBt, d_block_weights, dout, hidden, Bt, block_weights, scale, s);
    lora_down_backward(dinp, dA, d_hidden.data(), inp, A, dropout_mask, s);
}

}  // namespace cpu
