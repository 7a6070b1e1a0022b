// The walkthrough's first program (lora/walkthrough/README.md, part 1): one LoRA branch on one linear.
//
// It runs clora's CPU reference (cpu::lora_forward / cpu::lora_backward, model/cpu/lora_linear.h) on a tiny linear
// and checks, in double precision, what the walkthrough says of it:
//   1. a new branch (B = 0) changes nothing: y = W0 h + b;
//   2. the forward is y = W0 h + b + s B A h, written out with plain loops;
//   3. the backward's dA, dB and dh are the formulas of part 1, and they agree with finite differences.
// Prints each check and exits 1 if one fails. `make test` runs it.
#include <cmath>
#include <cstdio>
#include <vector>

#include "model/cpu/lora_linear.h"
#include "lora/walkthrough/values.h"

namespace {

double largest_difference(const std::vector<double>& a, const std::vector<double>& b) {
    double largest = 0;
    for (size_t i = 0; i < a.size(); i++) largest = std::fmax(largest, std::fabs(a[i] - b[i]));
    return largest;
}

bool report(const char* what, double difference, double tolerance) {
    const bool ok = difference <= tolerance;
    std::printf("  %-58s max |difference| %.1e  %s\n", what, difference, ok ? "ok" : "FAILED");
    return ok;
}

}  // namespace

int main() {
    // N = 3 tokens, d_in = 4, d_out = 5, rank r = 2, alpha = 4: scale s = alpha / r = 2
    const int N = 3, C = 4, OC = 5, r = 2;
    const double s = 4.0 / r;
    const LoraShape shape{N, C, OC, /*branches*/ 1, r, /*first_trainable_branch*/ 0};
    const std::vector<double> h = values(N * C, 1), W0 = values(OC * C, 2), b = values(OC, 3);
    const std::vector<double> A = values(r * C, 4);  // (r, d_in)
    std::vector<double> Bt(r * OC, 0.0);             // B^T (r, d_out): zero, a new branch

    // base (N, d_out) = h W0^T + b: every row is a token
    std::vector<double> base(N * OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double sum = b[o];
            for (int i = 0; i < C; i++) sum += W0[o * C + i] * h[n * C + i];
            base[n * OC + o] = sum;
        }
    std::printf("one LoRA branch: N %d tokens, d_in %d, d_out %d, r %d, s = alpha / r = %g\n", N, C, OC, r, s);
    bool ok = true;

    // 1. B = 0: the adapter's term is zero
    std::vector<double> y = base, hidden(N * r);
    cpu::lora_forward(y.data(), hidden.data(), h.data(), A.data(), Bt.data(), (const double*)nullptr,
                      (const double*)nullptr, s, shape);
    ok &= report("1. a new branch (B = 0) leaves y = W0 h + b", largest_difference(y, base), 0);

    // 2. a trained branch: y = W0 h + b + s B (A h)
    Bt = values(r * OC, 5);
    y = base;
    cpu::lora_forward(y.data(), hidden.data(), h.data(), A.data(), Bt.data(), (const double*)nullptr,
                      (const double*)nullptr, s, shape);
    std::vector<double> by_hand = base;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < r; k++) {
                double Ah = 0;  // (A h)_k
                for (int i = 0; i < C; i++) Ah += A[k * C + i] * h[n * C + i];
                by_hand[n * OC + o] += s * Bt[k * OC + o] * Ah;
            }
    ok &= report("2. y = W0 h + b + s B A h (plain loops)", largest_difference(y, by_hand), 1e-12);

    // 3. the backward of L = sum(G .* y) for a fixed G = dL/dy (N, d_out)
    const std::vector<double> G = values(N * OC, 6);
    std::vector<double> dh(N * C, 0.0), dA(r * C, 0.0), dBt(r * OC, 0.0);
    cpu::lora_backward(dh.data(), dA.data(), dBt.data(), (double*)nullptr, G.data(), h.data(), hidden.data(), A.data(),
                       Bt.data(), (const double*)nullptr, (const double*)nullptr, s, shape);
    // the formulas: with u = A h (per token) and g = s B^T G (per token),
    //   dB = s G u^T,   dA = g h^T,   dh (adapter's part) = A^T g
    std::vector<double> dA_formula(r * C, 0.0), dBt_formula(r * OC, 0.0), dh_formula(N * C, 0.0);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < r; k++) {
            double u = 0, g = 0;
            for (int i = 0; i < C; i++) u += A[k * C + i] * h[n * C + i];
            for (int o = 0; o < OC; o++) g += s * Bt[k * OC + o] * G[n * OC + o];
            for (int o = 0; o < OC; o++) dBt_formula[k * OC + o] += s * G[n * OC + o] * u;
            for (int i = 0; i < C; i++) dA_formula[k * C + i] += g * h[n * C + i];
            for (int i = 0; i < C; i++) dh_formula[n * C + i] += A[k * C + i] * g;
        }
    ok &= report("3. dB = s G (A h)^T", largest_difference(dBt, dBt_formula), 1e-12);
    ok &= report("3. dA = (s B^T G) h^T", largest_difference(dA, dA_formula), 1e-12);
    ok &= report("3. dh = A^T (s B^T G), the adapter's part", largest_difference(dh, dh_formula), 1e-12);

    // ... and against central finite differences of L(A) = sum(G .* y(A))
    auto loss = [&](const std::vector<double>& A_at) {
        std::vector<double> out = base, hid(N * r);
        cpu::lora_forward(out.data(), hid.data(), h.data(), A_at.data(), Bt.data(), (const double*)nullptr,
                          (const double*)nullptr, s, shape);
        double total = 0;
        for (size_t i = 0; i < out.size(); i++) total += G[i] * out[i];
        return total;
    };
    std::vector<double> dA_numeric(r * C);
    const double step = 1e-6;
    for (int i = 0; i < r * C; i++) {
        std::vector<double> plus = A, minus = A;
        plus[i] += step;
        minus[i] -= step;
        dA_numeric[i] = (loss(plus) - loss(minus)) / (2 * step);
    }
    ok &= report("3. dA against finite differences of L", largest_difference(dA, dA_numeric), 1e-8);
    std::printf("%s\n", ok ? "lora_branch: every check holds" : "lora_branch: FAILED");
    return ok ? 0 : 1;
}
