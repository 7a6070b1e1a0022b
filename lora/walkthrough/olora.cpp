// The walkthrough's second program (lora/walkthrough/README.md, part 2): O-LoRA's orthogonality loss on one
// linear with an old, frozen branch and a new one.
//
// It runs clora's CPU reference (cpu::orthogonality_loss, lora/cpu/regularizers.h) and checks, in double
// precision, what the walkthrough says of it:
//   1. L_orth = sum |A_old A_t^T|, written out with plain loops;
//   2. its gradient sign(A_old A_t^T)^T A_old agrees with finite differences;
//   3. descending on L_orth alone drives the overlap A_old A_t^T to zero while A_t keeps most of its norm;
//   4. then the new branch reads nothing along the old branch's directions (A_t A_old^T c = 0 for any c), but an
//      input outside them still moves it: orthogonal A's are not orthogonal inputs.
// Prints each check and exits 1 if one fails. `make test` runs it.
#include <cmath>
#include <cstdio>
#include <vector>

#include "lora/cpu/regularizers.h"
#include "lora/walkthrough/values.h"

namespace {

double frobenius(const std::vector<double>& x) {
    double total = 0;
    for (double v : x) total += v * v;
    return std::sqrt(total);
}

// M (k, r) = A_old (k, d_in) A_t^T
std::vector<double> overlap(const std::vector<double>& A_old, const std::vector<double>& A_t, int k, int r, int in) {
    std::vector<double> M(k * r, 0.0);
    for (int p = 0; p < k; p++)
        for (int q = 0; q < r; q++)
            for (int i = 0; i < in; i++) M[p * r + q] += A_old[p * in + i] * A_t[q * in + i];
    return M;
}

// A_t (r, d_in) times the input x (d_in)
std::vector<double> down(const std::vector<double>& A_t, const std::vector<double>& x, int r, int in) {
    std::vector<double> u(r, 0.0);
    for (int q = 0; q < r; q++)
        for (int i = 0; i < in; i++) u[q] += A_t[q * in + i] * x[i];
    return u;
}

bool report(const char* what, double value, bool ok) {
    std::printf("  %-66s %.2e  %s\n", what, value, ok ? "ok" : "FAILED");
    return ok;
}

}  // namespace

int main() {
    // d_in 8; the old branch (task 1) has k = r = 2 rows, the new one (task 2) r = 2
    const int in = 8, k = 2, r = 2;
    const std::vector<double> A_old = values(k * in, 1);
    std::vector<double> A_t = values(r * in, 2);
    std::printf("O-LoRA: d_in %d, old branch %d rows, new branch r %d\n", in, k, r);
    bool ok = true;

    // 1. the loss
    std::vector<double> dA(r * in, 0.0);
    const double L = cpu::orthogonality_loss(A_old.data(), A_t.data(), dA.data(), k, r, in, 1.0, false);
    double by_hand = 0;
    for (double m : overlap(A_old, A_t, k, r, in)) by_hand += std::fabs(m);
    ok &= report("1. L_orth = sum |A_old A_t^T| (plain loops): L", L, std::fabs(L - by_hand) < 1e-12);

    // 2. the gradient against central finite differences (no entry of M is near 0 here)
    double largest = 0;
    const double step = 1e-6;
    for (int i = 0; i < r * in; i++) {
        std::vector<double> plus = A_t, minus = A_t;
        plus[i] += step;
        minus[i] -= step;
        const double numeric = (cpu::orthogonality_loss(A_old.data(), plus.data(), (double*)nullptr, k, r, in, 1.0, false) -
                                cpu::orthogonality_loss(A_old.data(), minus.data(), (double*)nullptr, k, r, in, 1.0,
                                                        false)) / (2 * step);
        largest = std::fmax(largest, std::fabs(numeric - dA[i]));
    }
    ok &= report("2. dA_t = sign(A_old A_t^T)^T A_old vs finite differences: max diff", largest, largest < 1e-8);

    // 3. gradient descent on L_orth alone, with a step that shrinks (the loss has kinks where M_pq = 0)
    const double norm_before = frobenius(A_t), overlap_before = frobenius(overlap(A_old, A_t, k, r, in));
    for (int t = 0; t < 2000; t++) {
        std::vector<double> g(r * in, 0.0);
        cpu::orthogonality_loss(A_old.data(), A_t.data(), g.data(), k, r, in, 1.0, false);
        const double lr = 0.02 / std::sqrt(1.0 + t);
        for (int i = 0; i < r * in; i++) A_t[i] -= lr * g[i];
    }
    const double overlap_after = frobenius(overlap(A_old, A_t, k, r, in)), norm_after = frobenius(A_t);
    std::printf("  overlap ||A_old A_t^T||_F: %.3f before, %.2e after; ||A_t||_F: %.3f before, %.3f after\n",
                overlap_before, overlap_after, norm_before, norm_after);
    ok &= report("3. the overlap falls below 1% of where it started", overlap_after / overlap_before,
                 overlap_after < 0.01 * overlap_before);
    ok &= report("3. A_t keeps most of its norm: ||A_t|| after / before", norm_after / norm_before,
                 norm_after > 0.5 * norm_before);

    // 4. what orthogonality buys: blindness along A_old's rows, not along the old task's inputs
    const std::vector<double> c = values(k, 3);
    std::vector<double> along_old(in, 0.0);  // x = A_old^T c: a direction the old branch reads
    for (int p = 0; p < k; p++)
        for (int i = 0; i < in; i++) along_old[i] += A_old[p * in + i] * c[p];
    const std::vector<double> elsewhere = values(in, 4);  // any other input
    const double read_old = frobenius(down(A_t, along_old, r, in)) / frobenius(along_old);
    const double read_other = frobenius(down(A_t, elsewhere, r, in)) / frobenius(elsewhere);
    ok &= report("4. |A_t x| / |x| for x = A_old^T c (the old branch's directions)", read_old, read_old < 0.01);
    ok &= report("4. |A_t x| / |x| for another x (the new branch still reads it)", read_other, read_other > 0.1);
    std::printf("%s\n", ok ? "olora: every check holds" : "olora: FAILED");
    return ok ? 0 : 1;
}
