// The CPU kernels' threads (model/cpu/threads.h): the row-parallel kernels give the same bits on one thread and on
// two, a threaded matrix product the same bits run after run; the causal attention that skips the masked half (in
// blocks of rows) against the full T x T computation; the one-pass classifier in place and out of place.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "model/cpu/adamw.h"
#include "model/cpu/attention.h"
#include "model/cpu/classifier.h"
#include "model/cpu/gelu.h"
#include "model/cpu/layernorm.h"
#include "model/cpu/matmul.h"
#include "model/cpu/threads.h"
#include "test/test_support.h"

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The outputs of `run` on `threads` threads (the count is restored after). `run` writes into buffers allocated once,
// outside it, so that both thread counts see the same addresses: the threads alone differ.
std::vector<std::vector<float>> on_threads(int threads, const std::function<std::vector<std::vector<float>>()>& run) {
    const int before = cpu::cpu_threads();
    cpu::set_cpu_threads(threads);
    std::vector<std::vector<float>> outputs = run();
    cpu::set_cpu_threads(before);
    return outputs;
}

void check_same_on_one_and_two_threads(const std::function<std::vector<std::vector<float>>()>& run) {
    const auto one = on_threads(1, run), two = on_threads(2, run);
    REQUIRE(one.size() == two.size());
    for (size_t i = 0; i < one.size(); i++) {
        INFO("output " << i);
        CHECK(same_bits(one[i], two[i]));
    }
}

}  // namespace

TEST_CASE("cpu threads: --threads sets the count the kernels use") {
    const int before = cpu::cpu_threads();
    cpu::set_cpu_threads(2);
#ifdef _OPENMP
    CHECK(cpu::cpu_threads() == 2);
#else
    CHECK(cpu::cpu_threads() == 1);  // a build without OpenMP (make OPENMP=0) runs on one thread
#endif
    cpu::set_cpu_threads(before);
}

TEST_CASE("cpu threads: the row-parallel kernels give the same bits on one thread and on two") {
    // sizes above the parallel thresholds, so that two threads do split the work
    SECTION("classifier: 64 rows of a 5000-token vocabulary") {
        const int N = 64, V = 5000, Vp = 5008;
        REQUIRE(size_t(N) * V >= cpu::parallel_min_elements);
        const std::vector<float> logits = random_vector<float>(size_t(N) * Vp, 1, -4, 4);
        std::vector<int> targets(N);
        std::vector<float> weights(N);
        for (int i = 0; i < N; i++) targets[i] = (i * 977) % V, weights[i] = float(i % 3);
        std::vector<float> losses(N), dlogits(logits.size()), forward_losses(N);
        check_same_on_one_and_two_threads([&] {
            cpu::classifier_forward_backward(losses.data(), dlogits.data(), logits.data(), targets.data(),
                                             weights.data(), 40.0f, N, V, Vp);
            cpu::classifier_forward(forward_losses.data(), logits.data(), targets.data(), N, V, Vp);
            return std::vector<std::vector<float>>{losses, dlogits, forward_losses};
        });
    }
    SECTION("layernorm forward and backward: 1024 rows of 256 channels") {
        const int N = 1024, C = 256;
        REQUIRE(size_t(N) * C >= cpu::parallel_min_elements);
        const std::vector<float> x = random_vector<float>(size_t(N) * C, 2), w = random_vector<float>(C, 3),
                                 b = random_vector<float>(C, 4), dy = random_vector<float>(size_t(N) * C, 5);
        std::vector<float> y(x.size()), mean(N), rstd(N), dx(x.size()), dw(C), db(C);
        check_same_on_one_and_two_threads([&] {
            for (auto* gradient : {&dx, &dw, &db}) std::fill(gradient->begin(), gradient->end(), 0.0f);  // accumulated
            cpu::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
            cpu::layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), mean.data(),
                                    rstd.data(), N, C);
            return std::vector<std::vector<float>>{y, mean, rstd, dx, dw, db};
        });
    }
    SECTION("causal attention forward and backward: B 2, 4 heads of 64, T 200") {
        const int B = 2, T = 200, C = 256, NH = 4;
        REQUIRE(double(B) * NH * T * T * (C / NH) >= cpu::parallel_min_multiply_adds);
        const std::vector<float> qkv = random_vector<float>(size_t(B) * T * 3 * C, 6),
                                 dout = random_vector<float>(size_t(B) * T * C, 7);
        std::vector<float> out(dout.size()), att(size_t(B) * NH * T * T), dqkv(qkv.size());
        check_same_on_one_and_two_threads([&] {
            std::fill(dqkv.begin(), dqkv.end(), 0.0f);  // accumulated
            cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
            cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH);
            return std::vector<std::vector<float>>{out, att, dqkv};
        });
    }
    SECTION("gelu and AdamW over 2^19 elements") {
        const size_t N = size_t(1) << 19;
        const std::vector<float> x = random_vector<float>(N, 8, -3, 3), g = random_vector<float>(N, 9);
        std::vector<float> y(N), dx(N), p(N), m(N), v(N);
        check_same_on_one_and_two_threads([&] {
            std::fill(dx.begin(), dx.end(), 0.0f), std::fill(m.begin(), m.end(), 0.0f), std::fill(v.begin(), v.end(), 0.0f);
            p = x;
            cpu::gelu_forward(y.data(), x.data(), N);
            cpu::gelu_backward(dx.data(), x.data(), g.data(), N);
            cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 1.0f);
            return std::vector<std::vector<float>>{y, dx, p, m, v};
        });
    }
}

TEST_CASE("cpu threads: a threaded matrix product gives the same bits run after run, and the product of one thread "
          "within rounding") {
    const int N = 512, C = 768, OC = 768;
    REQUIRE(double(N) * C * OC >= cpu::parallel_min_multiply_adds);
    const std::vector<float> x = random_vector<float>(size_t(N) * C, 10), w = random_vector<float>(size_t(OC) * C, 11);
    auto product = [&] {
        std::vector<float> y(size_t(N) * OC);
        cpu::ThreadedProduct threads(double(N) * C * OC);
        cpu::matmul_forward(y.data(), x.data(), w.data(), static_cast<const float*>(nullptr), N, C, OC);
        return std::vector<std::vector<float>>{y};
    };
    const auto first = on_threads(2, product), second = on_threads(2, product), single = on_threads(1, product);
    CHECK(same_bits(first[0], second[0]));
    CHECK(relative_error(first[0], single[0]) < 1e-6);
}

TEST_CASE("cpu kernels: causal attention in blocks of rows matches the full T x T computation", "[attention]") {
    // T = 150 crosses two block edges (blocks of 64 rows); double precision, so only the order of sums differs
    const int B = 1, T = 150, C = 16, NH = 2, hs = C / NH;
    const std::vector<double> qkv = random_vector<double>(size_t(B) * T * 3 * C, 12, -2, 2);
    const std::vector<double> dout = random_vector<double>(size_t(B) * T * C, 13);
    std::vector<double> out(size_t(T) * C), att(size_t(NH) * T * T), dqkv(qkv.size());
    cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH);

    // the full computation, loop by loop: S (T,T) masked above the diagonal, P = softmax, out = P V, and back
    std::vector<double> out_ref(out.size()), att_ref(att.size(), 0), dqkv_ref(qkv.size(), 0);
    auto q = [&](int t, int h, int i) { return qkv[size_t(t) * 3 * C + h * hs + i]; };
    auto k = [&](int t, int h, int i) { return qkv[size_t(t) * 3 * C + C + h * hs + i]; };
    auto v = [&](int t, int h, int i) { return qkv[size_t(t) * 3 * C + 2 * C + h * hs + i]; };
    const double scale = 1 / std::sqrt(double(hs));
    for (int h = 0; h < NH; h++) {
        double* P = att_ref.data() + size_t(h) * T * T;
        for (int t = 0; t < T; t++) {
            double max_score = -1e300;
            for (int s = 0; s <= t; s++) {
                double score = 0;
                for (int i = 0; i < hs; i++) score += q(t, h, i) * k(s, h, i);
                P[t * T + s] = score * scale;
                max_score = std::max(max_score, P[t * T + s]);
            }
            double sum = 0;
            for (int s = 0; s <= t; s++) sum += P[t * T + s] = std::exp(P[t * T + s] - max_score);
            for (int s = 0; s <= t; s++) P[t * T + s] /= sum;
            for (int i = 0; i < hs; i++) {
                double o = 0;
                for (int s = 0; s <= t; s++) o += P[t * T + s] * v(s, h, i);
                out_ref[size_t(t) * C + h * hs + i] = o;
            }
        }
        for (int t = 0; t < T; t++) {
            std::vector<double> dP(size_t(t) + 1);
            double row_dot = 0;
            for (int s = 0; s <= t; s++) {
                for (int i = 0; i < hs; i++) dP[s] += dout[size_t(t) * C + h * hs + i] * v(s, h, i);
                row_dot += dP[s] * P[t * T + s];
            }
            for (int s = 0; s <= t; s++) {
                const double dS = P[t * T + s] * (dP[s] - row_dot) * scale;
                for (int i = 0; i < hs; i++) {
                    dqkv_ref[size_t(t) * 3 * C + h * hs + i] += dS * k(s, h, i);
                    dqkv_ref[size_t(s) * 3 * C + C + h * hs + i] += dS * q(t, h, i);
                    dqkv_ref[size_t(s) * 3 * C + 2 * C + h * hs + i] += P[t * T + s] * dout[size_t(t) * C + h * hs + i];
                }
            }
        }
    }
    CHECK(relative_error(out, out_ref) < 1e-12);
    CHECK(relative_error(att, att_ref) < 1e-12);  // zero above the diagonal, like the reference
    CHECK(relative_error(dqkv, dqkv_ref) < 1e-12);
}

TEST_CASE("cpu kernels: the one-pass classifier gives the same losses and gradient in place and out of place",
          "[classifier]") {
    const int N = 5, V = 300, Vp = 304;
    const std::vector<float> logits = random_vector<float>(size_t(N) * Vp, 14, -5, 5);
    const std::vector<int> targets = {0, 299, 17, 150, 3};
    const std::vector<float> weights = {1, 0, 2, 0.5f, 1};
    std::vector<float> losses(N), dlogits(logits.size(), 7.0f), in_place = logits, in_place_losses(N), forward(N);
    cpu::classifier_forward_backward(losses.data(), dlogits.data(), logits.data(), targets.data(), weights.data(),
                                     4.5f, N, V, Vp);
    cpu::classifier_forward_backward(in_place_losses.data(), in_place.data(), in_place.data(), targets.data(),
                                     weights.data(), 4.5f, N, V, Vp);
    cpu::classifier_forward(forward.data(), logits.data(), targets.data(), N, V, Vp);
    CHECK(same_bits(losses, in_place_losses));
    CHECK(same_bits(dlogits, in_place));
    CHECK(same_bits(losses, forward));  // the forward alone computes the loss the same way
    for (int i = 0; i < N; i++) {
        double sum = 0;  // each row of the gradient sums to zero: softmax sums to one, minus the one-hot
        for (int v = 0; v < Vp; v++) sum += dlogits[size_t(i) * Vp + v];
        CHECK(std::abs(sum) < 1e-6);
        for (int v = V; v < Vp; v++) CHECK(dlogits[size_t(i) * Vp + v] == 0);  // padding
    }
}
