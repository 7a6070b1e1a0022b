// AM-LoRA's attention over the branches of one adapted linear (lora/METHODS.md section 9), CPU reference.
// Per token n and branch i = 1..t, with the branch's output o_i = s B_i A_i h~ = s hidden_i Bt_i (OC):
//   e_i = v_i^T tanh(D_i o_i)        D_i (d_a,OC), v_i (d_a): one attention module per branch and linear
//   w_i = sigmoid(e_i)               (softmax variant: w = softmax over i of e)
//   y   = W0 h + sum_i w_i o_i       = the LoRA linear with block weights w (model/cpu/lora_linear.h)
// D_i o_i never needs o_i (N,OC): over all rows, u_i (N,d_a) = o_i D_i^T = hidden_i (N,r) P_i (r,d_a) with the small
// P_i = s Bt_i D_i^T, so the attention costs O(N r d_a) per branch instead of O(N OC d_a).
//
// Shapes (row-major; hidden and z keep each branch's columns together, as the LoRA linear's hidden does):
//   hidden (N, t*r)  the LoRA linear's h~ A_cat^T         Bt (t*r, OC)    D (t*d_a, OC)    v (t*d_a)
//   P (t*r, d_a)     P_i = rows i*r..i*r+r-1
//   z (N, t*d_a)     z_i = tanh(hidden_i P_i)             e, w (N, t)
// Kernels, in the order a training step runs them:
//   mixture_project           P_i = s Bt_i D_i^T
//   mixture_forward           z, w from hidden and P, v
//   (lora_up_forward with w; lora_up_backward gives dw = dL/dw of the LoRA term)
//   mixture_penalty           + lambda * sum_n row_weight[n] * (sum_i w_i  |  softmax: -sum_i w_i log w_i) to the
//                             loss and its gradient to dw (the L1 norm of w >= 0; of a softmax it is constant, so
//                             the softmax variant penalises the entropy instead)
//   mixture_backward          de = dw .* w (1 - w)  (softmax: de_i = w_i (dw_i - sum_j w_j dw_j));
//                             dz_i = de_i v_i^T; du_i = dz_i .* (1 - z_i^2);
//                             dv_i += z_i^T de_i; dP_i = hidden_i^T du_i (trainable branches);
//                             d_hidden_i += du_i P_i^T (every branch: the gradient flows on to dinp)
//   mixture_project_backward  dBt_i += s dP_i D_i; dD_i += s dP_i^T Bt_i (trainable branches)
// Branches below first_trainable_branch are frozen: their D, v, Bt get nothing (their rows of dP are not written).
// T is float for training and double for the finite-difference checks (test/test_amlora.cpp); the GPU version is
// lora/cuda/attention_mixture.cu (lora/cuda/attention_mixture_kernels.h).
#pragma once
#include <algorithm>
#include <cmath>

#include "lora/mixture_shape.h"
#include "model/cpu/eigen_views.h"

namespace cpu {

namespace mixture_detail {

template <typename T>
T sigmoid(T x) {
    return T(1) / (T(1) + std::exp(-x));
}
constexpr double LOG_FLOOR = 1e-30;  // the entropy's log w reads w at least this (a softmax weight can underflow)

}  // namespace mixture_detail

// P (branches*r, d_a): P_i (r,d_a) = scale * Bt_i (r,OC) D_i^T (OC,d_a).
template <typename T>
void mixture_project(T* P, const T* Bt, const T* D, T scale, MixtureShape s) {
    for (int i = 0; i < s.branches; i++)
        MatrixView<T>(P + size_t(i) * s.rank * s.dim, s.rank, s.dim).noalias() =
            scale * (ConstMatrixView<T>(Bt + size_t(i) * s.rank * s.OC, s.rank, s.OC) *
                     ConstMatrixView<T>(D + size_t(i) * s.dim * s.OC, s.dim, s.OC).transpose());
}

// w (N,branches) and z (N,branches*d_a) from hidden (N,branches*r), P (branches*r,d_a), v (branches*d_a).
template <typename T>
void mixture_forward(T* w, T* z, const T* hidden, const T* P, const T* v, MixtureShape s) {
    const int R = s.branches * s.rank, Z = s.branches * s.dim;
    ConstMatrixView<T> hid(hidden, s.N, R);
    MatrixView<T> Zm(z, s.N, Z), W(w, s.N, s.branches);
    for (int i = 0; i < s.branches; i++) {
        // z_i (N,d_a) = tanh(hidden_i (N,r) P_i (r,d_a));  e_i (N) = z_i v_i
        Zm.middleCols(i * s.dim, s.dim).noalias() =
            hid.middleCols(i * s.rank, s.rank) * ConstMatrixView<T>(P + size_t(i) * s.rank * s.dim, s.rank, s.dim);
        Zm.middleCols(i * s.dim, s.dim) = Zm.middleCols(i * s.dim, s.dim).unaryExpr([](T u) { return std::tanh(u); });
        W.col(i).noalias() = Zm.middleCols(i * s.dim, s.dim) *
                             Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(v + size_t(i) * s.dim, s.dim);
    }
    for (int n = 0; n < s.N; n++) {
        if (s.softmax) {
            const T top = W.row(n).maxCoeff();
            W.row(n) = (W.row(n).array() - top).exp().matrix();
            W.row(n) /= W.row(n).sum();
        } else {
            for (int i = 0; i < s.branches; i++) W(n, i) = mixture_detail::sigmoid(W(n, i));
        }
    }
}

// Returns lambda * sum_n row_weights[n] * (sum_i w[n,i]  |  softmax: -sum_i w[n,i] log w[n,i]) and accumulates its
// gradient into dw (N,branches). row_weights (N): e.g. 1 / (tokens * linears) on real tokens, 0 on padding.
template <typename T>
double mixture_penalty(T* dw, const T* w, const T* row_weights, T lambda, MixtureShape s) {
    double total = 0;
    for (int n = 0; n < s.N; n++) {
        const T weight = lambda * row_weights[n];
        if (weight == T(0)) continue;
        for (int i = 0; i < s.branches; i++) {
            const size_t k = size_t(n) * s.branches + i;
            if (s.softmax) {
                const T log_w = std::log(std::max(w[k], T(mixture_detail::LOG_FLOOR)));
                total -= double(weight * w[k] * log_w);
                dw[k] -= weight * (log_w + T(1));
            } else {
                total += double(weight * w[k]);
                dw[k] += weight;
            }
        }
    }
    return total;
}

// From dw (N,branches) = dL/dw: accumulates d_hidden (N,branches*r) for every branch and, for the trainable ones,
// dv (branches*d_a); writes their rows of dP (branches*r,d_a). w, z are the forward's; hidden, P, v its inputs.
template <typename T>
void mixture_backward(T* d_hidden, T* dP, T* dv, const T* dw, const T* w, const T* z, const T* hidden, const T* P,
                      const T* v, MixtureShape s) {
    const int R = s.branches * s.rank, Z = s.branches * s.dim;
    ConstMatrixView<T> hid(hidden, s.N, R), Zm(z, s.N, Z), W(w, s.N, s.branches), dW(dw, s.N, s.branches);
    MatrixView<T> dH(d_hidden, s.N, R);
    // de (N,branches) through the sigmoid (or the softmax)
    MatrixRM<T> de(s.N, s.branches);
    if (s.softmax) {
        for (int n = 0; n < s.N; n++) {
            const T dot = W.row(n).dot(dW.row(n));
            de.row(n) = W.row(n).cwiseProduct((dW.row(n).array() - dot).matrix());
        }
    } else {
        de = dW.cwiseProduct(W.cwiseProduct((T(1) - W.array()).matrix()));
    }
    for (int i = 0; i < s.branches; i++) {
        auto zi = Zm.middleCols(i * s.dim, s.dim);
        Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> vi(v + size_t(i) * s.dim, s.dim);
        // du_i (N,d_a) = (de_i (N,1) v_i (1,d_a)) .* (1 - z_i^2)
        const MatrixRM<T> du = (de.col(i) * vi).cwiseProduct((T(1) - zi.array().square()).matrix());
        ConstMatrixView<T> Pi(P + size_t(i) * s.rank * s.dim, s.rank, s.dim);
        // d_hidden_i (N,r) += du_i (N,d_a) P_i^T (d_a,r)
        dH.middleCols(i * s.rank, s.rank).noalias() += du * Pi.transpose();
        if (i < s.first_trainable_branch) continue;
        // dv_i (1,d_a) += de_i^T (1,N) z_i (N,d_a);  dP_i (r,d_a) = hidden_i^T (r,N) du_i (N,d_a)
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(dv + size_t(i) * s.dim, s.dim).noalias() +=
            de.col(i).transpose() * zi;
        MatrixView<T>(dP + size_t(i) * s.rank * s.dim, s.rank, s.dim).noalias() =
            hid.middleCols(i * s.rank, s.rank).transpose() * du;
    }
}

// From dP (branches*r,d_a), for the trainable branches: dBt_i (r,OC) += scale dP_i (r,d_a) D_i (d_a,OC) and
// dD_i (d_a,OC) += scale dP_i^T (d_a,r) Bt_i (r,OC). Either of dBt, dD may be null.
template <typename T>
void mixture_project_backward(T* dBt, T* dD, const T* dP, const T* Bt, const T* D, T scale, MixtureShape s) {
    for (int i = s.first_trainable_branch; i < s.branches; i++) {
        ConstMatrixView<T> dPi(dP + size_t(i) * s.rank * s.dim, s.rank, s.dim);
        if (dBt)
            MatrixView<T>(dBt + size_t(i) * s.rank * s.OC, s.rank, s.OC).noalias() +=
                scale * (dPi * ConstMatrixView<T>(D + size_t(i) * s.dim * s.OC, s.dim, s.OC));
        if (dD)
            MatrixView<T>(dD + size_t(i) * s.dim * s.OC, s.dim, s.OC).noalias() +=
                scale * (dPi.transpose() * ConstMatrixView<T>(Bt + size_t(i) * s.rank * s.OC, s.rank, s.OC));
    }
}

}  // namespace cpu
