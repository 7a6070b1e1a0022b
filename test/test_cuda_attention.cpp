// GPU tests of the fused attention and fused classifier kernels (model/cuda/attention.cu,
// model/cuda/classifier.cu) against their CPU references (model/cpu/attention.h, model/cpu/classifier.h), on fresh
// random inputs with every overwritten output poisoned first. Without a GPU every test here reports itself as skipped.
#include <algorithm>

#include "model/cpu/attention.h"
#include "model/cpu/classifier.h"
#include "test/cuda_test_support.h"

namespace {

struct AttentionShape {
    int B, T, C, NH;
};
// hs = 4, 9, 16, 64, 128; T = 1, below one tile (32), two tiles, past eight tiles and not a multiple of the tile
const AttentionShape attention_shapes[] = {{1, 1, 8, 2},     {2, 7, 36, 4},    {3, 64, 96, 6},
                                           {2, 257, 768, 12}, {1, 100, 256, 2}, {2, 33, 48, 3}};

// The log-sum-exp of each row of scores S = Q K^T / sqrt(hs) over s <= t, (B,NH,T), in double.
std::vector<double> reference_log_sum_exp(const std::vector<float>& qkv, const AttentionShape& s) {
    const int hs = s.C / s.NH;
    std::vector<double> lse(size_t(s.B) * s.NH * s.T), scores(s.T);
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                const float* q = &qkv[(size_t(b) * s.T + t) * 3 * s.C + h * hs];
                double max_score = -INFINITY, sum = 0;
                for (int u = 0; u <= t; u++) {
                    const float* k = &qkv[(size_t(b) * s.T + u) * 3 * s.C + s.C + h * hs];
                    double dot = 0;
                    for (int d = 0; d < hs; d++) dot += double(q[d]) * k[d];
                    max_score = std::max(max_score, scores[u] = dot / std::sqrt(double(hs)));
                }
                for (int u = 0; u <= t; u++) sum += std::exp(scores[u] - max_score);
                lse[(size_t(b) * s.NH + h) * s.T + t] = max_score + std::log(sum);
            }
    return lse;
}

}  // namespace

GPU_TEST_CASE("cuda kernels: fused attention forward matches the CPU reference, with the rows' log-sum-exp",
              "[attention]") {
    for (const AttentionShape& s : attention_shapes) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH);
        std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 1, -2, 2);
        std::vector<float> out(size_t(s.B) * s.T * s.C), att(size_t(s.B) * s.NH * s.T * s.T);
        cpu::attention_forward(out.data(), att.data(), qkv.data(), s.B, s.T, s.C, s.NH);

        DeviceBuffer<float> d_qkv(qkv), d_out(out.size()), d_lse(size_t(s.B) * s.NH * s.T);
        d_out.poison();
        d_lse.poison();
        cuda::attention_forward(d_out.data, d_lse.data, d_qkv.data, s.B, s.T, s.C, s.NH);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);
        CHECK(relative_error(d_lse.download(), reference_log_sum_exp(qkv, s)) < FP32_TOLERANCE);
    }
}

GPU_TEST_CASE("cuda kernels: fused attention backward accumulates the CPU reference's gradient", "[attention]") {
    for (const AttentionShape& s : attention_shapes) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH);
        std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 2, -2, 2);
        std::vector<float> dout = random_vector<float>(size_t(s.B) * s.T * s.C, 3);
        std::vector<float> out(dout.size()), att(size_t(s.B) * s.NH * s.T * s.T);
        cpu::attention_forward(out.data(), att.data(), qkv.data(), s.B, s.T, s.C, s.NH);
        // the backward takes the GPU forward's out and log-sum-exp, as in the model
        DeviceBuffer<float> d_qkv(qkv), d_dout(dout), d_out(out.size()), d_lse(size_t(s.B) * s.NH * s.T);
        cuda::attention_forward(d_out.data, d_lse.data, d_qkv.data, s.B, s.T, s.C, s.NH);

        // from zero: the gradient itself
        std::vector<float> dqkv(qkv.size(), 0.0f);
        DeviceBuffer<float> d_dqkv(dqkv);
        cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), s.B, s.T, s.C, s.NH);
        cuda::attention_backward(d_dqkv.data, d_dout.data, d_qkv.data, d_out.data, d_lse.data, s.B, s.T, s.C, s.NH);
        CHECK(relative_error(d_dqkv.download(), dqkv) < FP32_TOLERANCE);

        // from the same random values on both sides: it accumulates (+=) into every part of dqkv
        std::vector<float> accumulated = random_vector<float>(qkv.size(), 4, -0.1, 0.1);
        DeviceBuffer<float> d_accumulated(accumulated);
        cpu::attention_backward(accumulated.data(), dout.data(), qkv.data(), att.data(), s.B, s.T, s.C, s.NH);
        cuda::attention_backward(d_accumulated.data, d_dout.data, d_qkv.data, d_out.data, d_lse.data, s.B, s.T, s.C,
                                 s.NH);
        CHECK(relative_error(d_accumulated.download(), accumulated) < FP32_TOLERANCE);

        // twice: twice the gradient
        cuda::attention_backward(d_dqkv.data, d_dout.data, d_qkv.data, d_out.data, d_lse.data, s.B, s.T, s.C, s.NH);
        std::vector<float> twice(dqkv.size());
        for (size_t i = 0; i < dqkv.size(); i++) twice[i] = 2 * dqkv[i];
        CHECK(relative_error(d_dqkv.download(), twice) < FP32_TOLERANCE);
    }
}

GPU_TEST_CASE("cuda kernels: fused attention is bit-identical run to run", "[attention]") {
    const AttentionShape s = {2, 257, 768, 12};
    std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 7, -2, 2);
    std::vector<float> dout = random_vector<float>(size_t(s.B) * s.T * s.C, 8);
    std::vector<float> initial = random_vector<float>(qkv.size(), 9, -0.1, 0.1);
    DeviceBuffer<float> d_qkv(qkv), d_dout(dout), d_out(dout.size()), d_lse(size_t(s.B) * s.NH * s.T);
    cuda::attention_forward(d_out.data, d_lse.data, d_qkv.data, s.B, s.T, s.C, s.NH);
    const std::vector<float> first_out = d_out.download(), first_lse = d_lse.download();
    d_out.poison();
    d_lse.poison();
    cuda::attention_forward(d_out.data, d_lse.data, d_qkv.data, s.B, s.T, s.C, s.NH);
    CHECK(d_out.download() == first_out);
    CHECK(d_lse.download() == first_lse);

    DeviceBuffer<float> first(initial), second(initial);
    cuda::attention_backward(first.data, d_dout.data, d_qkv.data, d_out.data, d_lse.data, s.B, s.T, s.C, s.NH);
    cuda::attention_backward(second.data, d_dout.data, d_qkv.data, d_out.data, d_lse.data, s.B, s.T, s.C, s.NH);
    CHECK(first.download() == second.download());
}

GPU_TEST_CASE("cuda kernels: fused attention refuses a head size above 128", "[attention]") {
    DeviceBuffer<float> d_qkv(3 * 129), d_out(129), d_lse(1);
    CHECK_THROWS_WITH(cuda::attention_forward(d_out.data, d_lse.data, d_qkv.data, 1, 1, 129, 1),
                      Catch::Contains("head size"));
}

namespace {

struct ClassifierCase {
    int N, V, Vp;
    std::vector<float> logits, weights;
    std::vector<int> targets;
    float weight_sum = 0.0f;
};

// Random logits in [-4, 4) (padded columns too: they must be ignored), targets spread over [0, V), weights with
// zeros (masked positions) among them.
ClassifierCase make_classifier_case(int N, int V, int Vp, uint64_t seed) {
    ClassifierCase c;
    c.N = N, c.V = V, c.Vp = Vp;
    c.logits = random_vector<float>(size_t(N) * Vp, seed, -4, 4);
    c.weights = random_vector<float>(N, seed + 1, 0, 2);
    c.targets.resize(N);
    for (int i = 0; i < N; i++) {
        c.targets[i] = int((uint64_t(i) * 7919 + seed * 13) % V);
        if (i % 3 == 1) c.weights[i] = 0.0f;
        c.weight_sum += c.weights[i];
    }
    if (N > 1) c.targets[N - 1] = V - 1;  // the last real column
    return c;
}

}  // namespace

GPU_TEST_CASE("cuda kernels: fused classifier matches the CPU reference", "[classifier]") {
    struct Shape {
        int N, V, Vp;
    } shapes[] = {{1, 1, 1}, {5, 67, 128}, {6, 67, 67}, {4, 129, 130}, {3, 1000, 1024}, {8, 50257, 50304}};
    for (const Shape& s : shapes) {
        INFO("N=" << s.N << " V=" << s.V << " Vp=" << s.Vp);
        ClassifierCase c = make_classifier_case(s.N, s.V, s.Vp, 10);
        std::vector<float> losses(c.N), dlogits(c.logits.size());
        cpu::classifier_forward(losses.data(), c.logits.data(), c.targets.data(), c.N, c.V, c.Vp);
        cpu::classifier_backward(dlogits.data(), c.logits.data(), c.targets.data(), c.weights.data(), c.weight_sum,
                                 c.N, c.V, c.Vp);

        DeviceBuffer<float> d_logits(c.logits), d_weights(c.weights), d_losses(c.N), d_dlogits(dlogits.size());
        DeviceBuffer<int> d_targets(c.targets);
        d_losses.poison();
        d_dlogits.poison();
        cuda::fused_classifier(d_losses.data, d_dlogits.data, d_logits.data, d_targets.data, d_weights.data,
                               c.weight_sum, c.N, c.V, c.Vp);
        CHECK(relative_error(d_losses.download(), losses) < FP32_TOLERANCE);
        std::vector<float> gpu_dlogits = d_dlogits.download();
        CHECK(relative_error(gpu_dlogits, dlogits) < FP32_TOLERANCE);
        bool padded_zero = true, masked_zero = true;
        for (int i = 0; i < c.N; i++)
            for (int v = 0; v < c.Vp; v++) {
                float value = gpu_dlogits[size_t(i) * c.Vp + v];
                if (v >= c.V) padded_zero &= value == 0.0f;
                if (c.weights[i] == 0.0f) masked_zero &= value == 0.0f;
            }
        CHECK(padded_zero);
        CHECK(masked_zero);

        // no dlogits: only the losses are written
        d_losses.poison();
        cuda::fused_classifier(d_losses.data, nullptr, d_logits.data, d_targets.data, d_weights.data, c.weight_sum,
                               c.N, c.V, c.Vp);
        CHECK(relative_error(d_losses.download(), losses) < FP32_TOLERANCE);

        // no losses: only dlogits
        d_dlogits.poison();
        cuda::fused_classifier(nullptr, d_dlogits.data, d_logits.data, d_targets.data, d_weights.data, c.weight_sum,
                               c.N, c.V, c.Vp);
        CHECK(relative_error(d_dlogits.download(), dlogits) < FP32_TOLERANCE);

        // in place, losses too (the chunked classifier of the model): dlogits over the logits
        d_losses.poison();
        cuda::fused_classifier(d_losses.data, d_logits.data, d_logits.data, d_targets.data, d_weights.data,
                               c.weight_sum, c.N, c.V, c.Vp);
        CHECK(relative_error(d_losses.download(), losses) < FP32_TOLERANCE);
        CHECK(relative_error(d_logits.download(), dlogits) < FP32_TOLERANCE);
    }
}

GPU_TEST_CASE("cuda kernels: fused classifier with zero total weight gives zero dlogits", "[classifier]") {
    ClassifierCase c = make_classifier_case(4, 67, 128, 20);
    std::fill(c.weights.begin(), c.weights.end(), 0.0f);
    std::vector<float> losses(c.N);
    cpu::classifier_forward(losses.data(), c.logits.data(), c.targets.data(), c.N, c.V, c.Vp);

    DeviceBuffer<float> d_logits(c.logits), d_weights(c.weights), d_losses(c.N), d_dlogits(c.logits.size());
    DeviceBuffer<int> d_targets(c.targets);
    d_losses.poison();
    d_dlogits.poison();
    cuda::fused_classifier(d_losses.data, d_dlogits.data, d_logits.data, d_targets.data, d_weights.data, 0.0, c.N,
                           c.V, c.Vp);
    CHECK(relative_error(d_losses.download(), losses) < FP32_TOLERANCE);
    std::vector<float> dlogits = d_dlogits.download();
    CHECK(std::all_of(dlogits.begin(), dlogits.end(), [](float value) { return value == 0.0f; }));
}
