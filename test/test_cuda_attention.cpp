// GPU tests of the attention and fused classifier kernels (model/cuda/attention.cu, model/cuda/classifier.cu)
// against their CPU references (model/cpu/attention.h, model/cpu/classifier.h), on fresh random inputs with
// every overwritten output poisoned first. Without a GPU every test here reports itself as skipped.
#include <algorithm>

#include "model/cpu/attention.h"
#include "model/cpu/classifier.h"
#include "test/cuda_test_support.h"

namespace {

struct AttentionShape {
    int B, T, C, NH;
};
const AttentionShape attention_shapes[] = {{1, 1, 8, 2}, {2, 7, 36, 4}, {3, 64, 96, 6}, {2, 257, 768, 12}};

}  // namespace

TEST_CASE("cuda kernels: attention forward matches the CPU reference") {
    REQUIRE_GPU_OR_SKIP();
    for (const AttentionShape& s : attention_shapes) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH);
        std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 1, -2, 2);
        std::vector<float> out(size_t(s.B) * s.T * s.C), att(size_t(s.B) * s.NH * s.T * s.T);
        cpu::attention_forward(out.data(), att.data(), qkv.data(), s.B, s.T, s.C, s.NH);

        DeviceBuffer<float> d_qkv(qkv), d_out(out.size()), d_att(att.size());
        d_out.poison();
        d_att.poison();
        cuda::attention_forward(d_out.data, d_att.data, d_qkv.data, s.B, s.T, s.C, s.NH);
        std::vector<float> gpu_out = d_out.download(), gpu_att = d_att.download();
        CHECK(relative_error(gpu_out, out) < FP32_TOLERANCE);
        CHECK(relative_error(gpu_att, att) < FP32_TOLERANCE);

        // causal: exactly zero above the diagonal
        bool zero_above_diagonal = true;
        for (size_t row = 0; row < size_t(s.B) * s.NH * s.T; row++) {
            int t = int(row % s.T);
            for (int u = t + 1; u < s.T; u++) zero_above_diagonal &= gpu_att[row * s.T + u] == 0.0f;
        }
        CHECK(zero_above_diagonal);
    }
}

TEST_CASE("cuda kernels: attention backward accumulates the CPU reference's gradient") {
    REQUIRE_GPU_OR_SKIP();
    for (const AttentionShape& s : attention_shapes) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH);
        std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 2, -2, 2);
        std::vector<float> dout = random_vector<float>(size_t(s.B) * s.T * s.C, 3);
        std::vector<float> out(dout.size()), att(size_t(s.B) * s.NH * s.T * s.T);
        cpu::attention_forward(out.data(), att.data(), qkv.data(), s.B, s.T, s.C, s.NH);
        DeviceBuffer<float> d_qkv(qkv), d_dout(dout), d_att(att);  // both sides use the CPU's probabilities

        // from zero: the gradient itself
        std::vector<float> dqkv(qkv.size(), 0.0f);
        DeviceBuffer<float> d_dqkv(dqkv);
        cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), s.B, s.T, s.C, s.NH);
        cuda::attention_backward(d_dqkv.data, d_dout.data, d_qkv.data, d_att.data, s.B, s.T, s.C, s.NH);
        CHECK(relative_error(d_dqkv.download(), dqkv) < FP32_TOLERANCE);

        // from the same random values on both sides: it accumulates
        std::vector<float> accumulated = random_vector<float>(qkv.size(), 4, -0.1, 0.1);
        DeviceBuffer<float> d_accumulated(accumulated);
        cpu::attention_backward(accumulated.data(), dout.data(), qkv.data(), att.data(), s.B, s.T, s.C, s.NH);
        cuda::attention_backward(d_accumulated.data, d_dout.data, d_qkv.data, d_att.data, s.B, s.T, s.C, s.NH);
        CHECK(relative_error(d_accumulated.download(), accumulated) < FP32_TOLERANCE);
    }
}

TEST_CASE("cuda kernels: attention forward then backward on the GPU's own probabilities") {
    REQUIRE_GPU_OR_SKIP();
    const AttentionShape s = {2, 33, 48, 3};
    std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 5, -2, 2);
    std::vector<float> dout = random_vector<float>(size_t(s.B) * s.T * s.C, 6);
    std::vector<float> out(dout.size()), att(size_t(s.B) * s.NH * s.T * s.T), dqkv(qkv.size(), 0.0f);
    cpu::attention_forward(out.data(), att.data(), qkv.data(), s.B, s.T, s.C, s.NH);
    cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), s.B, s.T, s.C, s.NH);

    DeviceBuffer<float> d_qkv(qkv), d_dout(dout), d_out(out.size()), d_att(att.size()), d_dqkv(qkv.size());
    d_out.poison();
    d_att.poison();
    cuda::attention_forward(d_out.data, d_att.data, d_qkv.data, s.B, s.T, s.C, s.NH);
    cuda::attention_backward(d_dqkv.data, d_dout.data, d_qkv.data, d_att.data, s.B, s.T, s.C, s.NH);
    CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);
    CHECK(relative_error(d_dqkv.download(), dqkv) < FP32_TOLERANCE);
}

TEST_CASE("cuda kernels: attention backward is bit-identical run to run") {
    REQUIRE_GPU_OR_SKIP();
    const AttentionShape s = {2, 257, 768, 12};
    std::vector<float> qkv = random_vector<float>(size_t(s.B) * s.T * 3 * s.C, 7, -2, 2);
    std::vector<float> dout = random_vector<float>(size_t(s.B) * s.T * s.C, 8);
    std::vector<float> initial = random_vector<float>(qkv.size(), 9, -0.1, 0.1);
    DeviceBuffer<float> d_qkv(qkv), d_dout(dout), d_out(dout.size()), d_att(size_t(s.B) * s.NH * s.T * s.T);
    cuda::attention_forward(d_out.data, d_att.data, d_qkv.data, s.B, s.T, s.C, s.NH);
    std::vector<float> first_att = d_att.download();
    cuda::attention_forward(d_out.data, d_att.data, d_qkv.data, s.B, s.T, s.C, s.NH);
    CHECK(d_att.download() == first_att);

    DeviceBuffer<float> first(initial), second(initial);
    cuda::attention_backward(first.data, d_dout.data, d_qkv.data, d_att.data, s.B, s.T, s.C, s.NH);
    cuda::attention_backward(second.data, d_dout.data, d_qkv.data, d_att.data, s.B, s.T, s.C, s.NH);
    CHECK(first.download() == second.download());
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

TEST_CASE("cuda kernels: fused classifier matches the CPU reference") {
    REQUIRE_GPU_OR_SKIP();
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
    }
}

TEST_CASE("cuda kernels: fused classifier with zero total weight gives zero dlogits") {
    REQUIRE_GPU_OR_SKIP();
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
