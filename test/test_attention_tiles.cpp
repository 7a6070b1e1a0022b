// The tiled algorithm of the fused CUDA attention (model/cuda/attention.cu), run on the host: the same loops over
// query and key tiles, calling the same per-tile functions (model/attention_tiles.h), compared with the CPU
// reference (model/cpu/attention.h) for several shapes and tile sizes; and the attention state each backend's
// activations keep. Runs without a GPU.
#include <algorithm>

#include "model/activations.h"
#include "model/attention_tiles.h"
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "model/cpu/attention.h"
#include "test/test_support.h"

namespace {

// One attention problem: qkv (B,T,3C) packed as (B,T,3,NH,hs), out (B,T,C), lse (B,NH,T).
struct Problem {
    int B, T, C, NH;
    int hs() const { return C / NH; }
    float scale() const { return 1.0f / std::sqrt(float(C / NH)); }
    size_t q(int b, int t, int h) const { return (size_t(b) * T + t) * 3 * C + size_t(h) * hs(); }
    size_t k(int b, int t, int h) const { return q(b, t, h) + C; }
    size_t v(int b, int t, int h) const { return q(b, t, h) + 2 * C; }
    size_t o(int b, int t, int h) const { return (size_t(b) * T + t) * C + size_t(h) * hs(); }
    size_t row(int b, int h, int t) const { return (size_t(b) * NH + h) * T + t; }
};

struct Tiles {
    int query, key;  // rows of a query tile, keys of a key tile
};

float dot(const float* a, const float* b, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

// The forward as the CUDA kernel runs it: per (b, h, query tile), the key tiles up to the causal diagonal, the
// scores of a tile first, then each row's rescale, weights and accumulation.
void tiled_forward(std::vector<float>& out, std::vector<float>& lse, const std::vector<float>& qkv, const Problem& p,
                   Tiles tiles) {
    const int hs = p.hs(), T = p.T;
    std::vector<float> scores(size_t(tiles.query) * tiles.key), accumulator(size_t(tiles.query) * hs);
    std::vector<SoftmaxRowState> states(tiles.query);
    for (int b = 0; b < p.B; b++)
        for (int h = 0; h < p.NH; h++)
            for (int q0 = 0; q0 < T; q0 += tiles.query) {
                std::fill(states.begin(), states.end(), softmax_row_start());
                std::fill(accumulator.begin(), accumulator.end(), 0.0f);
                const int last_query = std::min(q0 + tiles.query, T) - 1;
                for (int k0 = 0; k0 <= last_query; k0 += tiles.key) {
                    for (int r = 0; r < tiles.query; r++)
                        for (int c = 0; c < tiles.key; c++) {
                            const int t = q0 + r, s = k0 + c;
                            const float d = t < T && s < T ? dot(&qkv[p.q(b, t, h)], &qkv[p.k(b, s, h)], hs) : 0.0f;
                            scores[size_t(r) * tiles.key + c] = attention_masked_score(d, p.scale(), t, s, T);
                        }
                    for (int r = 0; r < tiles.query; r++) {
                        const float* row = &scores[size_t(r) * tiles.key];
                        const float factor = softmax_row_rescale(states[r], *std::max_element(row, row + tiles.key));
                        float weight_sum = 0.0f;
                        for (int d = 0; d < hs; d++) accumulator[size_t(r) * hs + d] *= factor;
                        for (int c = 0; c < tiles.key; c++) {
                            const float weight = attention_weight(row[c], states[r].max);
                            weight_sum += weight;
                            if (weight == 0.0f) continue;  // masked (its value row may be past T)
                            for (int d = 0; d < hs; d++)
                                accumulator[size_t(r) * hs + d] += weight * qkv[p.v(b, k0 + c, h) + d];
                        }
                        softmax_row_add(states[r], weight_sum);
                    }
                }
                for (int r = 0; r < tiles.query && q0 + r < T; r++) {
                    const float normaliser = softmax_row_normaliser(states[r]);
                    for (int d = 0; d < hs; d++)
                        out[p.o(b, q0 + r, h) + d] = accumulator[size_t(r) * hs + d] * normaliser;
                    lse[p.row(b, h, q0 + r)] = softmax_row_log_sum_exp(states[r]);
                }
            }
}

// P and dS of one (query tile, key tile) pair, recomputed from Q, K, V, dO, lse and D, as both backward kernels do.
void probabilities_and_score_gradients(std::vector<float>& P, std::vector<float>& dS, const std::vector<float>& qkv,
                                       const std::vector<float>& dout, const std::vector<float>& lse,
                                       const std::vector<float>& row_dot, const Problem& p, Tiles tiles, int b, int h,
                                       int q0, int k0) {
    const int hs = p.hs(), T = p.T;
    for (int r = 0; r < tiles.query; r++)
        for (int c = 0; c < tiles.key; c++) {
            const int t = q0 + r, s = k0 + c;
            const bool inside = t < T && s < T;
            const float score = attention_masked_score(inside ? dot(&qkv[p.q(b, t, h)], &qkv[p.k(b, s, h)], hs) : 0.0f,
                                                       p.scale(), t, s, T);
            const float probability = attention_weight(score, t < T ? lse[p.row(b, h, t)] : 0.0f);
            const float dp = inside ? dot(&dout[p.o(b, t, h)], &qkv[p.v(b, s, h)], hs) : 0.0f;
            P[size_t(r) * tiles.key + c] = probability;
            dS[size_t(r) * tiles.key + c] =
                attention_score_gradient(probability, dp, t < T ? row_dot[p.row(b, h, t)] : 0.0f, p.scale());
        }
}

// The backward as the CUDA kernels run it, accumulating into dqkv: D = rowsum(dO .* O) first; then per key tile
// the query tiles from the diagonal on (dK, dV); then per query tile the key tiles up to the diagonal (dQ).
void tiled_backward(std::vector<float>& dqkv, const std::vector<float>& dout, const std::vector<float>& qkv,
                    const std::vector<float>& out, const std::vector<float>& lse, const Problem& p, Tiles tiles) {
    const int hs = p.hs(), T = p.T;
    std::vector<float> row_dot(size_t(p.B) * p.NH * T);
    for (int b = 0; b < p.B; b++)
        for (int h = 0; h < p.NH; h++)
            for (int t = 0; t < T; t++) row_dot[p.row(b, h, t)] = dot(&dout[p.o(b, t, h)], &out[p.o(b, t, h)], hs);

    std::vector<float> P(size_t(tiles.query) * tiles.key), dS(P.size());
    std::vector<float> dk(size_t(tiles.key) * hs), dv(dk.size()), dq(size_t(tiles.query) * hs);
    for (int b = 0; b < p.B; b++)
        for (int h = 0; h < p.NH; h++) {
            for (int k0 = 0; k0 < T; k0 += tiles.key) {  // dK, dV: one key tile, every query tile that sees it
                std::fill(dk.begin(), dk.end(), 0.0f);
                std::fill(dv.begin(), dv.end(), 0.0f);
                for (int q0 = k0 / tiles.query * tiles.query; q0 < T; q0 += tiles.query) {
                    probabilities_and_score_gradients(P, dS, qkv, dout, lse, row_dot, p, tiles, b, h, q0, k0);
                    for (int c = 0; c < tiles.key; c++)
                        for (int r = 0; r < tiles.query && q0 + r < T; r++)
                            for (int d = 0; d < hs; d++) {
                                dv[size_t(c) * hs + d] += P[size_t(r) * tiles.key + c] * dout[p.o(b, q0 + r, h) + d];
                                dk[size_t(c) * hs + d] += dS[size_t(r) * tiles.key + c] * qkv[p.q(b, q0 + r, h) + d];
                            }
                }
                for (int c = 0; c < tiles.key && k0 + c < T; c++)
                    for (int d = 0; d < hs; d++) {
                        dqkv[p.k(b, k0 + c, h) + d] += dk[size_t(c) * hs + d];
                        dqkv[p.v(b, k0 + c, h) + d] += dv[size_t(c) * hs + d];
                    }
            }
            for (int q0 = 0; q0 < T; q0 += tiles.query) {  // dQ: one query tile, the key tiles up to the diagonal
                std::fill(dq.begin(), dq.end(), 0.0f);
                const int last_query = std::min(q0 + tiles.query, T) - 1;
                for (int k0 = 0; k0 <= last_query; k0 += tiles.key) {
                    probabilities_and_score_gradients(P, dS, qkv, dout, lse, row_dot, p, tiles, b, h, q0, k0);
                    for (int r = 0; r < tiles.query; r++)
                        for (int c = 0; c < tiles.key && k0 + c < T; c++)
                            for (int d = 0; d < hs; d++)
                                dq[size_t(r) * hs + d] += dS[size_t(r) * tiles.key + c] * qkv[p.k(b, k0 + c, h) + d];
                }
                for (int r = 0; r < tiles.query && q0 + r < T; r++)
                    for (int d = 0; d < hs; d++) dqkv[p.q(b, q0 + r, h) + d] += dq[size_t(r) * hs + d];
            }
        }
}

// hs = 4, 9, 16, 64 and 128; T = 1, a prime, a multiple of the tiles and not
const Problem problems[] = {{1, 1, 8, 2}, {2, 7, 36, 4}, {3, 64, 96, 6}, {2, 77, 128, 2}, {1, 40, 128, 1}};
const Tiles tile_sizes[] = {{1, 1}, {4, 4}, {32, 32}, {16, 8}, {8, 16}, {5, 3}};

template <typename To, typename From>
std::vector<To> converted(const std::vector<From>& values) {
    return std::vector<To>(values.begin(), values.end());
}

}  // namespace

TEST_CASE("attention tiles: the tiled forward (online softmax) matches the CPU reference", "[attention]") {
    for (const Problem& p : problems)
        for (const Tiles& tiles : tile_sizes) {
            INFO("B=" << p.B << " T=" << p.T << " C=" << p.C << " NH=" << p.NH << " tiles " << tiles.query << "x"
                      << tiles.key);
            std::vector<float> qkv = random_vector<float>(size_t(p.B) * p.T * 3 * p.C, 1, -2, 2);
            std::vector<double> reference_out(size_t(p.B) * p.T * p.C), att(size_t(p.B) * p.NH * p.T * p.T);
            cpu::attention_forward(reference_out.data(), att.data(), converted<double>(qkv).data(), p.B, p.T, p.C,
                                   p.NH);

            std::vector<float> out(reference_out.size(), NAN), lse(size_t(p.B) * p.NH * p.T, NAN);
            tiled_forward(out, lse, qkv, p, tiles);
            CHECK(relative_error(out, reference_out) < 1e-5);

            // the log-sum-exp gives back the probabilities: exp(S - lse) = P, below the diagonal and on it
            std::vector<double> recomputed(att.size(), 0.0);
            for (int b = 0; b < p.B; b++)
                for (int h = 0; h < p.NH; h++)
                    for (int t = 0; t < p.T; t++)
                        for (int s = 0; s <= t; s++) {
                            const float score = dot(&qkv[p.q(b, t, h)], &qkv[p.k(b, s, h)], p.hs()) * p.scale();
                            recomputed[p.row(b, h, t) * p.T + s] = attention_weight(score, lse[p.row(b, h, t)]);
                        }
            CHECK(relative_error(recomputed, att) < 1e-5);
        }
}

TEST_CASE("attention tiles: the tiled backward (recomputed P, per key tile and per query tile) matches the CPU "
          "reference and accumulates", "[attention]") {
    for (const Problem& p : problems)
        for (const Tiles& tiles : tile_sizes) {
            INFO("B=" << p.B << " T=" << p.T << " C=" << p.C << " NH=" << p.NH << " tiles " << tiles.query << "x"
                      << tiles.key);
            std::vector<float> qkv = random_vector<float>(size_t(p.B) * p.T * 3 * p.C, 2, -2, 2);
            std::vector<float> dout = random_vector<float>(size_t(p.B) * p.T * p.C, 3);
            std::vector<float> initial = random_vector<float>(qkv.size(), 4, -0.1, 0.1);  // it accumulates
            std::vector<double> out_reference(dout.size()), att(size_t(p.B) * p.NH * p.T * p.T);
            std::vector<double> dqkv_reference = converted<double>(initial);
            cpu::attention_forward(out_reference.data(), att.data(), converted<double>(qkv).data(), p.B, p.T, p.C,
                                   p.NH);
            cpu::attention_backward(dqkv_reference.data(), converted<double>(dout).data(),
                                    converted<double>(qkv).data(), att.data(), p.B, p.T, p.C, p.NH);

            std::vector<float> out(dout.size()), lse(size_t(p.B) * p.NH * p.T), dqkv = initial;
            tiled_forward(out, lse, qkv, p, tiles);
            tiled_backward(dqkv, dout, qkv, out, lse, p, tiles);
            CHECK(relative_error(dqkv, dqkv_reference) < 1e-5);
            // and the gradient alone (from zero), which the accumulated one could hide when it is small
            std::vector<float> gradient(qkv.size(), 0.0f);
            std::vector<double> gradient_reference(qkv.size(), 0.0);
            tiled_backward(gradient, dout, qkv, out, lse, p, tiles);
            cpu::attention_backward(gradient_reference.data(), converted<double>(dout).data(),
                                    converted<double>(qkv).data(), att.data(), p.B, p.T, p.C, p.NH);
            CHECK(relative_error(gradient, gradient_reference) < 1e-5);
        }
}

TEST_CASE("attention tiles: a row that has seen only masked scores stays empty, without a NaN", "[attention]") {
    SoftmaxRowState state = softmax_row_start();
    CHECK(softmax_row_rescale(state, -INFINITY) == 0.0f);
    CHECK(attention_weight(-INFINITY, state.max) == 0.0f);
    CHECK(state.sum == 0.0f);
    CHECK(state.max == -INFINITY);
    // the first real score: the (empty) accumulator's factor is 0, the row's weight exp(0) = 1
    CHECK(softmax_row_rescale(state, 2.0f) == 0.0f);
    CHECK(attention_weight(2.0f, state.max) == 1.0f);
    softmax_row_add(state, 1.0f);
    CHECK(softmax_row_log_sum_exp(state) == 2.0f);
    // a larger score rescales by exp(2 - 3)
    CHECK(std::abs(softmax_row_rescale(state, 3.0f) - std::exp(-1.0f)) < 1e-7f);
    CHECK(std::abs(state.sum - std::exp(-1.0f)) < 1e-7f);
}

TEST_CASE("attention tiles: the CUDA activations keep one log-sum-exp per row, the CPU ones the probabilities",
          "[attention]") {
    const GPT2Config d12 = config_from_spec("d12");
    const int B = 16, T = 1024;
    const size_t L = d12.num_layers, NH = d12.num_heads;
    const size_t att = 6;  // the index of ActivationTensors::att in the layout
    CHECK(activation_sizes<CudaBackend>(d12, B, T)[att] == L * B * NH * T);
    CHECK(activation_sizes<CpuBackend<float>>(d12, B, T)[att] == L * B * NH * T * T);
    CHECK(num_activations<CpuBackend<float>>(d12, B, T) - num_activations<CudaBackend>(d12, B, T) ==
          L * B * NH * T * (T - 1));
    // every other tensor is the same on both backends
    for (size_t i = 0; i < NUM_ACTIVATION_TENSORS; i++)
        if (i != att)
            CHECK(activation_sizes<CudaBackend>(d12, B, T)[i] == activation_sizes<CpuBackend<float>>(d12, B, T)[i]);
    // the carving follows the sizes: att, then attproj right after it
    std::vector<float> memory(num_activations<CudaBackend>(d12, 2, 8));
    ActivationTensors<float> carved = carve_activations<CudaBackend>(memory.data(), d12, 2, 8);
    CHECK(carved.att - carved.atty == std::ptrdiff_t(L * 2 * 8 * d12.channels));
    CHECK(carved.attproj - carved.att == std::ptrdiff_t(L * 2 * NH * 8));
}
