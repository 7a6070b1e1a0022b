// The per-tile math of fused causal attention (flash-attention style), shared by the CUDA kernels
// (model/cuda/attention.cu) and a host emulation of the same tiled algorithm (test/test_attention_tiles.cpp), so
// that the algorithm itself is checked on the CPU against cpu::attention_forward / cpu::attention_backward.
//
// Per (b, h), with Q, K, V, O, dO the (T,hs) slices and scale = 1/sqrt(hs):
//   forward:  the rows of S = Q K^T * scale are visited one key tile at a time. Each query row keeps a running
//             state (m, l): m the largest score seen, l = sum over the scores seen of exp(s - m). A new tile with
//             scores s_j raises m to m' = max(m, max_j s_j); l and the row's output accumulator o are multiplied
//             by exp(m - m') (the rescale), then l += sum_j exp(s_j - m'), o += sum_j exp(s_j - m') V_j.
//             At the end out = o / l, and the row's log-sum-exp lse = m + log(l) is kept for the backward.
//   backward: P is recomputed tile by tile: P[t,s] = exp(S[t,s] - lse[t]). With D[t] = rowsum(dO .* O)[t]
//             (= rowsum(dP .* P), since O = P V), dP = dO V^T and dS = P .* (dP - D) * scale:
//             dV = P^T dO, dK = dS^T Q, dQ = dS K.
// Masked scores (s > t, or a padding row t >= T) are -infinity and give probability exactly 0; a row that has seen
// only masked scores keeps m = -infinity and l = 0 without a NaN.
#pragma once
#include <math.h>

#ifdef __CUDACC__
#define ATTENTION_HOST_DEVICE __host__ __device__
#else
#define ATTENTION_HOST_DEVICE
#endif

// The online softmax state of one query row.
struct SoftmaxRowState {
    float max;  // m: the largest score seen so far (-infinity before any unmasked one)
    float sum;  // l: sum of exp(score - m) over the scores seen
};

ATTENTION_HOST_DEVICE inline SoftmaxRowState softmax_row_start() { return {-INFINITY, 0.0f}; }

// The score of query t against key s (dot = Q[t] . K[s]): scaled, or -infinity where causality masks it
// (s > t) or the query row is padding (t >= T).
ATTENTION_HOST_DEVICE inline float attention_masked_score(float dot, float scale, int t, int s, int T) {
    return (t < T && s <= t) ? dot * scale : -INFINITY;
}

// A tile's scores of one row arrive, their maximum tile_max: raises the row's max and rescales its sum. Returns
// the factor exp(m - m') by which the caller rescales the row's output accumulator (0 while the row was empty).
ATTENTION_HOST_DEVICE inline float softmax_row_rescale(SoftmaxRowState& state, float tile_max) {
    const float new_max = fmaxf(state.max, tile_max);
    const float factor = state.max == -INFINITY ? 0.0f : expf(state.max - new_max);
    state.sum *= factor;
    state.max = new_max;
    return factor;
}

// exp(score - reference) for an unmasked score, exactly 0 for a masked one. The forward passes the row's running
// max (the unnormalised weight of the online softmax), the backward the stored log-sum-exp (the probability).
ATTENTION_HOST_DEVICE inline float attention_weight(float score, float reference) {
    return score == -INFINITY ? 0.0f : expf(score - reference);
}

// After the rescale: the tile's weights (their sum) join the row's sum.
ATTENTION_HOST_DEVICE inline void softmax_row_add(SoftmaxRowState& state, float tile_weight_sum) {
    state.sum += tile_weight_sum;
}

// The final normalisation: out = o * softmax_row_normaliser(state). Only for a real row (t < T: key 0 is
// always unmasked, so sum >= 1).
ATTENTION_HOST_DEVICE inline float softmax_row_normaliser(const SoftmaxRowState& state) { return 1.0f / state.sum; }

// The row's log-sum-exp lse = m + log(l), kept for the backward: P[t,s] = exp(S[t,s] - lse).
ATTENTION_HOST_DEVICE inline float softmax_row_log_sum_exp(const SoftmaxRowState& state) {
    return state.max + logf(state.sum);
}

// The softmax backward of one entry, with the scale of the scores folded in: dS = P (dP - D) * scale, where
// D = rowsum(dO .* O) of the row. Zero where P is (masked entries).
ATTENTION_HOST_DEVICE inline float attention_score_gradient(float p, float dp, float row_dot, float scale) {
    return p * (dp - row_dot) * scale;
}
