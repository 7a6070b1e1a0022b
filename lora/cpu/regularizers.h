// The adapter regularisers of O-LoRA and N-LoRA (lora/METHODS.md sections 5 and 6), CPU reference, for
// one adapted linear (one slot of model/lora_adapters.h). Each function returns the loss value and, when the gradient
// pointers are not null, ACCUMULATES the loss's gradient into them (the adapters' gradient buffer, which already
// holds the cross-entropy's). Matrices are row-major, stored as the adapters store them:
//     A_t (r,in)   the trainable branch's down projection (rows of A_cat)
//     Bt_t (r,out) its up projection, transposed: B_t = Bt_t^T (out,r) (rows of Bt)
//     A_old (k,in) every earlier branch's rows of A_cat, stacked (k = earlier branches * r)
// sign(0) = 0 throughout (the subgradient PyTorch's abs uses). Products run in T; the loss is summed in double.
// T is float for training and double for the finite-difference checks (test/test_lora_regularizers.cpp);
// lora/cuda/regularizers.cu is the GPU version.
#pragma once
#include <cmath>
#include <string>

#include "data/file_io.h"
#include "model/cpu/eigen_views.h"

namespace cpu {

namespace regularizer_detail {

template <typename T>
T sign(T x) {
    return T((x > T(0)) - (x < T(0)));
}

// sum over the entries of M of |M| (squared = false) or M^2 (squared = true), in double
template <typename T>
double sum_abs_or_squares(const MatrixRM<T>& M, bool squared) {
    double total = 0;
    for (Eigen::Index i = 0; i < M.size(); i++) {
        double value = double(M.data()[i]);
        total += squared ? value * value : std::abs(value);
    }
    return total;
}

// Frobenius norm of a (count) array, in double
template <typename T>
double norm(const T* x, size_t count) {
    double total = 0;
    for (size_t i = 0; i < count; i++) total += double(x[i]) * double(x[i]);
    return std::sqrt(total);
}

}  // namespace regularizer_detail

// O-LoRA's orthogonality loss (section 5), with M = A_old A_t^T (k,r):
//   L = weight * sum_{p,q} |M_pq|          dA_t (r,in) += weight * sign(M)^T (r,k) A_old (k,in)
//   squared: L = weight * sum_{p,q} M_pq^2  dA_t (r,in) += weight * 2 M^T (r,k) A_old (k,in)
// k = 0 (no earlier branch): L = 0, nothing added. dA_t may be null (the value only).
template <typename T>
double orthogonality_loss(const T* A_old, const T* A_t, T* dA_t, int k, int r, int in, T weight, bool squared) {
    if (k == 0 || r == 0) return 0;
    ConstMatrixView<T> old(A_old, k, in), a(A_t, r, in);
    // M (k,r) = A_old (k,in) A_t^T (in,r)
    const MatrixRM<T> M = old * a.transpose();
    const double loss = double(weight) * regularizer_detail::sum_abs_or_squares(M, squared);
    if (dA_t) {
        // G (k,r) = dL/dM / weight: sign(M), or 2 M
        MatrixRM<T> G = squared ? MatrixRM<T>(T(2) * M) : MatrixRM<T>(M.unaryExpr(&regularizer_detail::sign<T>));
        // dA_t (r,in) += weight * G^T (r,k) A_old (k,in)
        MatrixView<T>(dA_t, r, in).noalias() += weight * (G.transpose() * old);
    }
    return loss;
}

// O-LoRA's L2 loss (section 5), norms, not squared:
//   L = weight * (||A_t||_F + ||Bt_t||_F)
//   dA_t += weight * A_t / ||A_t||_F,   dBt_t += weight * Bt_t / ||Bt_t||_F   (nothing for a norm of 0)
// dA_t, dBt_t may be null.
template <typename T>
double l2_norm_loss(const T* A_t, const T* Bt_t, T* dA_t, T* dBt_t, int r, int in, int out, T weight) {
    const size_t a_count = size_t(r) * in, b_count = size_t(r) * out;
    const double a_norm = regularizer_detail::norm(A_t, a_count), b_norm = regularizer_detail::norm(Bt_t, b_count);
    if (dA_t && a_norm > 0) {
        const T factor = T(double(weight) / a_norm);
        for (size_t i = 0; i < a_count; i++) dA_t[i] += factor * A_t[i];
    }
    if (dBt_t && b_norm > 0) {
        const T factor = T(double(weight) / b_norm);
        for (size_t i = 0; i < b_count; i++) dBt_t[i] += factor * Bt_t[i];
    }
    return double(weight) * (a_norm + b_norm);
}

// N-LoRA's L1 loss (section 6), on the task's update (without the scale alpha / r):
//   full form (rr = false): P = B_t A_t = Bt_t^T (out,r) A_t (r,in), (out,in); S = sign(P)
//     L = weight * sum |P|
//     dL/dB_t = weight * S A_t^T (out,r), so dBt_t (r,out) += weight * A_t (r,in) S^T (in,out)
//     dA_t (r,in) += weight * B_t^T S = weight * Bt_t (r,out) S (out,in)
//   rr form (rr = true, the official code's; needs in == out): Q = A_t B_t = A_t (r,in) Bt_t^T (out,r), (r,r);
//   S = sign(Q)
//     L = weight * sum |Q|
//     dA_t (r,in) += weight * S (r,r) Bt_t (r,out)       (Q_pq = sum_c A_pc Bt_qc)
//     dBt_t (r,out) += weight * S^T (r,r) A_t (r,in)
// dA_t, dBt_t may be null. Fails for rr with in != out. N-LoRA's default scaled form (lora/methods/nlora.h) is the
// full form with weight = lambda r^2 / (out in): lambda r^2 times the mean of |P| over its out x in entries.
template <typename T>
double l1_update_loss(const T* A_t, const T* Bt_t, T* dA_t, T* dBt_t, int r, int in, int out, T weight, bool rr) {
    ConstMatrixView<T> a(A_t, r, in), bt(Bt_t, r, out);
    if (rr) {
        if (in != out)
            fail("N-LoRA's rr form penalises A_t B_t, which needs a square module: this one is " + std::to_string(in) +
                 " -> " + std::to_string(out));
        // Q (r,r) = A_t (r,in) Bt_t^T (out,r)
        const MatrixRM<T> Q = a * bt.transpose();
        const double loss = double(weight) * regularizer_detail::sum_abs_or_squares(Q, false);
        const MatrixRM<T> S = Q.unaryExpr(&regularizer_detail::sign<T>);
        if (dA_t) MatrixView<T>(dA_t, r, in).noalias() += weight * (S * bt);                // (r,r) (r,out)
        if (dBt_t) MatrixView<T>(dBt_t, r, out).noalias() += weight * (S.transpose() * a);  // (r,r) (r,in)
        return loss;
    }
    // P (out,in) = Bt_t^T (out,r) A_t (r,in)
    const MatrixRM<T> P = bt.transpose() * a;
    const double loss = double(weight) * regularizer_detail::sum_abs_or_squares(P, false);
    const MatrixRM<T> S = P.unaryExpr(&regularizer_detail::sign<T>);
    if (dBt_t) MatrixView<T>(dBt_t, r, out).noalias() += weight * (a * S.transpose());  // (r,in) (in,out)
    if (dA_t) MatrixView<T>(dA_t, r, in).noalias() += weight * (bt * S);                // (r,out) (out,in)
    return loss;
}

}  // namespace cpu
