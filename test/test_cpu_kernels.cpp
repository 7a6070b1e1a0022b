// Finite-difference gradient checks, in double precision, of every CPU kernel's backward.
#include "model/backend_cpu.h"
#include "model/cpu/adamw.h"
#include "model/cpu/attention.h"
#include "model/cpu/classifier.h"
#include "model/cpu/encoder.h"
#include "model/cpu/gelu.h"
#include "model/cpu/global_norm.h"
#include "model/cpu/layernorm.h"
#include "model/cpu/matmul.h"
#include "model/cpu/residual.h"
#include "test/gradient_check.h"

using Vec = std::vector<double>;

TEST_CASE("cpu kernels: encoder backward matches finite differences", "[encoder]") {
    const int B = 2, T = 5, C = 7, V = 11;
    std::vector<int> tokens = {3, 1, 3, 10, 0, 7, 7, 2, 9, 3};  // repeats accumulate into one wte row
    Vec wte = random_vector<double>(V * C, 1), wpe = random_vector<double>(T * C, 2);
    Vec r = random_vector<double>(B * T * C, 3), out(B * T * C);
    auto loss = [&] {
        cpu::encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
        return project(out, r);
    };
    Vec dwte(V * C), dwpe(T * C);
    cpu::encoder_backward(dwte.data(), dwpe.data(), r.data(), tokens.data(), B, T, C);
    CHECK(relative_error(dwte, numerical_gradient(wte, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(dwpe, numerical_gradient(wpe, loss)) < GRADIENT_TOLERANCE);
}

TEST_CASE("cpu kernels: layernorm backward matches finite differences", "[layernorm]") {
    const int N = 6, C = 13;
    Vec x = random_vector<double>(N * C, 4, -2, 3), w = random_vector<double>(C, 5), b = random_vector<double>(C, 6);
    Vec r = random_vector<double>(N * C, 7), out(N * C), mean(N), rstd(N);
    auto loss = [&] {
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
        return project(out, r);
    };
    loss();
    for (int i = 0; i < N; i++) {  // the forward itself: each row normalised
        double m = 0;
        for (int c = 0; c < C; c++) m += (out[i * C + c] - b[c]) / w[c];
        CHECK(std::abs(m / C) < 1e-12);
    }
    Vec dx(N * C), dw(C), db(C);
    cpu::layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N,
                            C);
    CHECK(relative_error(dx, numerical_gradient(x, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(dw, numerical_gradient(w, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(db, numerical_gradient(b, loss)) < GRADIENT_TOLERANCE);
}

TEST_CASE("cpu kernels: matmul backward matches finite differences, and skips frozen weights", "[matmul]") {
    const int N = 5, C = 7, OC = 9;
    Vec x = random_vector<double>(N * C, 8), w = random_vector<double>(OC * C, 9), bias = random_vector<double>(OC, 10);
    Vec r = random_vector<double>(N * OC, 11), out(N * OC);
    auto loss = [&] {
        cpu::matmul_forward(out.data(), x.data(), w.data(), bias.data(), N, C, OC);
        return project(out, r);
    };
    loss();
    double expected = bias[2];  // one entry by hand: out[1,2] = sum_c x[1,c] w[2,c] + bias[2]
    for (int c = 0; c < C; c++) expected += x[1 * C + c] * w[2 * C + c];
    CHECK(std::abs(out[1 * OC + 2] - expected) < 1e-12);

    Vec dx(N * C), dw(OC * C), dbias(OC);
    cpu::matmul_backward(dx.data(), dw.data(), dbias.data(), r.data(), x.data(), w.data(), N, C, OC);
    CHECK(relative_error(dx, numerical_gradient(x, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(dw, numerical_gradient(w, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(dbias, numerical_gradient(bias, loss)) < GRADIENT_TOLERANCE);

    Vec dx_frozen(N * C);  // frozen weight and bias: only the input gradient, identical to before
    cpu::matmul_backward<double>(dx_frozen.data(), nullptr, nullptr, r.data(), x.data(), w.data(), N, C, OC);
    CHECK(relative_error(dx_frozen, dx) == 0);
}

TEST_CASE("cpu kernels: causal attention backward matches finite differences", "[attention]") {
    const int B = 2, T = 5, C = 12, NH = 3;
    Vec qkv = random_vector<double>(B * T * 3 * C, 12, -1.5, 1.5);
    Vec r = random_vector<double>(B * T * C, 13), out(B * T * C), att(B * NH * T * T);
    auto loss = [&] {
        cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
        return project(out, r);
    };
    loss();
    for (int row = 0; row < B * NH * T; row++) {  // probabilities: causal rows summing to one
        int t = row % T;
        double sum = 0;
        for (int s = 0; s < T; s++) {
            if (s > t) CHECK(att[row * T + s] == 0);
            sum += att[row * T + s];
        }
        CHECK(std::abs(sum - 1) < 1e-12);
    }
    // the first position attends only to itself: its output is its value
    for (int c = 0; c < C; c++) CHECK(std::abs(out[c] - qkv[2 * C + c]) < 1e-12);
    Vec dqkv(B * T * 3 * C);
    cpu::attention_backward(dqkv.data(), r.data(), qkv.data(), att.data(), B, T, C, NH);
    CHECK(relative_error(dqkv, numerical_gradient(qkv, loss)) < GRADIENT_TOLERANCE);
}

TEST_CASE("cpu kernels: gelu backward matches finite differences", "[gelu]") {
    const int N = 40;
    Vec x = random_vector<double>(N, 14, -4, 4), r = random_vector<double>(N, 15), out(N);
    auto loss = [&] {
        cpu::gelu_forward(out.data(), x.data(), N);
        return project(out, r);
    };
    loss();
    for (int i = 0; i < N; i++) {  // the tanh form, written out
        double v = x[i];
        CHECK(std::abs(out[i] - 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))) < 1e-14);
    }
    Vec dx(N);
    cpu::gelu_backward(dx.data(), x.data(), r.data(), N);
    CHECK(relative_error(dx, numerical_gradient(x, loss)) < GRADIENT_TOLERANCE);
}

TEST_CASE("cpu kernels: residual backward matches finite differences", "[residual]") {
    const int N = 17;
    Vec a = random_vector<double>(N, 16), b = random_vector<double>(N, 17), r = random_vector<double>(N, 18), out(N);
    auto loss = [&] {
        cpu::residual_forward(out.data(), a.data(), b.data(), N);
        return project(out, r);
    };
    Vec da(N), db(N);
    cpu::residual_backward(da.data(), db.data(), r.data(), N);
    CHECK(relative_error(da, numerical_gradient(a, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(db, numerical_gradient(b, loss)) < GRADIENT_TOLERANCE);
}

TEST_CASE("cpu kernels: weighted cross-entropy backward matches finite differences, padding ignored", "[classifier]") {
    const int N = 6, V = 9, Vp = 12;
    Vec logits = random_vector<double>(N * Vp, 19, -3, 3);
    std::vector<int> targets = {0, 8, 4, 4, 1, 7};
    std::vector<float> weights = {1, 0, 1, 0.5f, 0, 2};  // 0 = ignored position (a prompt token)
    double weight_sum = 4.5;
    Vec losses(N);
    auto loss = [&] {
        cpu::classifier_forward(losses.data(), logits.data(), targets.data(), N, V, Vp);
        double total = 0;
        for (int i = 0; i < N; i++) total += weights[i] * losses[i];
        return total / weight_sum;
    };
    loss();
    double z_max = -1e9, z_sum = 0;  // position 0 by hand, over the first V columns only
    for (int v = 0; v < V; v++) z_max = std::max(z_max, logits[v]);
    for (int v = 0; v < V; v++) z_sum += std::exp(logits[v] - z_max);
    CHECK(std::abs(losses[0] - (std::log(z_sum) + z_max - logits[targets[0]])) < 1e-12);

    Vec dlogits(N * Vp, 123.0);  // poisoned: the backward must overwrite everything
    cpu::classifier_backward(dlogits.data(), logits.data(), targets.data(), weights.data(), weight_sum, N, V, Vp);
    CHECK(relative_error(dlogits, numerical_gradient(logits, loss)) < GRADIENT_TOLERANCE);
    for (int i = 0; i < N; i++)
        for (int v = V; v < Vp; v++) CHECK(dlogits[i * Vp + v] == 0);
    for (int v = 0; v < Vp; v++) CHECK(dlogits[1 * Vp + v] == 0);  // weight 0: no gradient at all
}

TEST_CASE("cpu kernels: adamw step matches the formula, with and without weight decay", "[adamw]") {
    const int N = 5;
    Vec p = random_vector<double>(N, 20), g = random_vector<double>(N, 21);
    Vec m = random_vector<double>(N, 22), v = random_vector<double>(N, 23, 0, 1);
    Vec p0 = p, m0 = m, v0 = v;
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
    const int t = 3;
    cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), N, lr, b1, b2, eps, wd, t, scale);
    for (int i = 0; i < N; i++) {
        double gi = g[i] * scale;
        double mi = b1 * m0[i] + (1 - double(b1)) * gi, vi = b2 * v0[i] + (1 - double(b2)) * gi * gi;
        double mhat = mi / (1 - std::pow(double(b1), t)), vhat = vi / (1 - std::pow(double(b2), t));
        double expected = p0[i] - lr * (mhat / (std::sqrt(vhat) + eps) + double(wd) * p0[i]);
        CHECK(std::abs(m[i] - mi) < 1e-7);
        CHECK(std::abs(v[i] - vi) < 1e-7);
        CHECK(std::abs(p[i] - expected) < 1e-7);
    }
}

TEST_CASE("cpu kernels: sum of squares", "[global_norm]") {
    Vec x = {3, -4, 12};
    CHECK(cpu::sum_of_squares(x.data(), x.size()) == 169);
}
