// Kernel lab: the adapter regularisers of O-LoRA and N-LoRA for one adapted linear (lora/METHODS.md sections 5
// and 6; the CPU reference is lora/cpu/regularizers.h). A_t (r,in) and Bt_t (r,out) are the trainable branch's
// down projection and transposed up projection, A_old (k,in) the earlier branches' down projections, stacked:
//   orthogonality: M = A_old A_t^T (k,r); L = weight * sum |M| (or sum M^2); dA_t += weight * sign(M)^T A_old (or 2 M)
//   L2 norms:      L = weight * (||A_t|| + ||Bt_t||); dX += weight * X / ||X||
//   L1 of update:  P = Bt_t^T A_t (out,in); L = weight * sum |P|; dBt_t += weight * A_t S^T, dA_t += weight * Bt_t S,
//                  S = sign(P); the rr form (in == out): Q = A_t Bt_t^T (r,r), dA_t += weight * S Bt_t,
//                  dBt_t += weight * S^T A_t
// A standalone program: a CPU reference (plain loops, double), the shipped version, a correctness check against the
// reference, a run-to-run bit-identity check and timings at GPT-2 124M's shapes: the qkv linear (in = 768,
// out = 2304, r = 8) after 14 tasks (k = 112 earlier rows) and, for the rr form, attn_proj (768 -> 768).
// The inputs are multiples of 1/16 in [-1, 1], so that every product and sum of the sign-based losses is exact in
// float whatever the order: the signs (zeros included) then agree exactly with the reference, which a random
// float input would not guarantee (an entry of P within rounding of 0 flips its sign and a whole row of dA).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/regularizers
// Exits non-zero when the shipped version disagrees with the reference or is not bit-identical run to run.
// It links model/cuda/global_norm.o (cuda::sum_of_squares, for the L2 norms; the Makefile's lab rules).
//
// Versions:
//   1. lora/cuda/regularizers.cu (included below, not copied): cuBLAS for the products, one kernel for the sign (or
//      2 M) with per-block partial sums in double, one block summing the partials in a fixed order, no atomics.
//      The regularisers run once per adapted linear and step, on matrices of r rows: microseconds next to the
//      model's milliseconds, so no other version was tried.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "lora/cuda/regularizers.cu"

// ---------------------------------------------------------------------------------------------------------
// CPU reference (double): each returns the loss and accumulates the gradients (from zero)

double sign_of(double x) { return double((x > 0) - (x < 0)); }

double orthogonality_cpu(const std::vector<float>& A_old, const std::vector<float>& A_t, std::vector<double>& dA,
                         int k, int r, int in, double weight, bool squared) {
    double loss = 0;
    for (int p = 0; p < k; p++)
        for (int q = 0; q < r; q++) {
            double m = 0;
            for (int c = 0; c < in; c++) m += double(A_old[size_t(p) * in + c]) * A_t[size_t(q) * in + c];
            loss += squared ? m * m : std::abs(m);
            const double g = squared ? 2 * m : sign_of(m);
            for (int c = 0; c < in; c++) dA[size_t(q) * in + c] += weight * g * A_old[size_t(p) * in + c];
        }
    return weight * loss;
}

double l2_cpu(const std::vector<float>& A, const std::vector<float>& Bt, std::vector<double>& dA,
              std::vector<double>& dBt, double weight) {
    auto norm = [](const std::vector<float>& x) {
        double total = 0;
        for (float v : x) total += double(v) * v;
        return std::sqrt(total);
    };
    const double a = norm(A), b = norm(Bt);
    for (size_t i = 0; i < A.size(); i++) dA[i] += a > 0 ? weight * A[i] / a : 0.0;
    for (size_t i = 0; i < Bt.size(); i++) dBt[i] += b > 0 ? weight * Bt[i] / b : 0.0;
    return weight * (a + b);
}

// full: P (out,in) = Bt^T A; rr: Q (r,r) = A Bt^T (in == out)
double l1_update_cpu(const std::vector<float>& A, const std::vector<float>& Bt, std::vector<double>& dA,
                     std::vector<double>& dBt, int r, int in, int out, double weight, bool rr) {
    double loss = 0;
    if (rr) {
        for (int p = 0; p < r; p++)
            for (int q = 0; q < r; q++) {
                double v = 0;
                for (int c = 0; c < in; c++) v += double(A[size_t(p) * in + c]) * Bt[size_t(q) * in + c];
                loss += std::abs(v);
                const double s = weight * sign_of(v);
                for (int c = 0; c < in; c++) {
                    dA[size_t(p) * in + c] += s * Bt[size_t(q) * in + c];
                    dBt[size_t(q) * in + c] += s * A[size_t(p) * in + c];
                }
            }
        return weight * loss;
    }
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double v = 0;
            for (int k = 0; k < r; k++) v += double(Bt[size_t(k) * out + o]) * A[size_t(k) * in + i];
            loss += std::abs(v);
            const double s = weight * sign_of(v);
            for (int k = 0; k < r; k++) {
                dBt[size_t(k) * out + o] += s * A[size_t(k) * in + i];
                dA[size_t(k) * in + i] += s * Bt[size_t(k) * out + o];
            }
        }
    return weight * loss;
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

// count multiples of 1/16 in [-1, 1]
std::vector<float> sixteenths(size_t count, uint64_t seed) {
    std::vector<float> values = random_floats(count, seed);
    for (float& v : values) v = std::round(v * 16.0f) / 16.0f;
    return values;
}

std::vector<float> to_float(const std::vector<double>& values) {
    return std::vector<float>(values.begin(), values.end());
}

double loss_error(double loss, double expected) {
    return std::abs(loss - expected) / std::max(std::abs(expected), 1e-300);
}

// One regulariser, checked and timed. run(dA, dBt) calls the shipped version, accumulating into the device
// gradients (dBt unused by the orthogonality loss), and returns the loss.
template <typename Run>
float check(const char* what, Run run, double expected_loss, const std::vector<double>& expected_dA,
            const std::vector<double>& expected_dBt, double tolerance, bool& ok) {
    float* dA = to_device(std::vector<float>(expected_dA.size()));
    float* dBt = to_device(std::vector<float>(expected_dBt.size()));
    const double loss = run(dA, dBt);
    const std::vector<float> gA = download(dA, expected_dA.size()), gBt = download(dBt, expected_dBt.size());
    CHECK_CUDA(cudaMemset(dA, 0, expected_dA.size() * sizeof(float)));
    CHECK_CUDA(cudaMemset(dBt, 0, expected_dBt.size() * sizeof(float)));
    const double again = run(dA, dBt);
    const bool identical = std::memcmp(&loss, &again, sizeof loss) == 0 &&
                           download(dA, expected_dA.size()) == gA && download(dBt, expected_dBt.size()) == gBt;
    double error = std::max(loss_error(loss, expected_loss), relative_error(gA, to_float(expected_dA)));
    if (!expected_dBt.empty()) error = std::max(error, relative_error(gBt, to_float(expected_dBt)));
    // the gradients accumulate over the timing calls; only the time matters there
    const float ms = time_ms([&] { run(dA, dBt); });
    ok &= identical;
    ok &= print_result(what, error, tolerance, ms, 0.0, repeatability(identical, true));
    CHECK_CUDA(cudaFree(dA));
    CHECK_CUDA(cudaFree(dBt));
    return ms;
}

int main() {
    print_device();
    const int r = 8, in = 768, out = 2304, k = 14 * r;
    const float weight = 0.5f;
    bool ok = true;
    std::string shipped;

    const std::vector<float> A_old = sixteenths(size_t(k) * in, 1), A_t = sixteenths(size_t(r) * in, 2),
                             Bt_t = sixteenths(size_t(r) * out, 3), Bt_square = sixteenths(size_t(r) * in, 4);
    float *d_A_old = to_device(A_old), *d_A_t = to_device(A_t), *d_Bt_t = to_device(Bt_t),
          *d_Bt_square = to_device(Bt_square);
    std::printf("regularizers: r=%d in=%d out=%d k=%d (earlier rows)\n", r, in, out, k);

    for (bool squared : {false, true}) {
        std::vector<double> dA(size_t(r) * in, 0.0);
        const double loss = orthogonality_cpu(A_old, A_t, dA, k, r, in, weight, squared);
        const float ms = check(
            squared ? "orthogonality, squared" : "orthogonality, abs",
            [&](float* g, float*) { return cuda::orthogonality_loss(d_A_old, d_A_t, g, k, r, in, weight, squared); },
            loss, dA, {}, 1e-6, ok);
        if (!squared) shipped = format("orth %.3f ms", ms);
    }
    {
        std::vector<double> dA(size_t(r) * in, 0.0), dBt(size_t(r) * out, 0.0);
        const double loss = l2_cpu(A_t, Bt_t, dA, dBt, weight);
        const float ms = check(
            "L2 norms",
            [&](float* gA, float* gBt) { return cuda::l2_norm_loss(d_A_t, d_Bt_t, gA, gBt, r, in, out, weight); },
            loss, dA, dBt, 1e-6, ok);
        shipped += format(" | l2 %.3f ms", ms);
    }
    {
        std::vector<double> dA(size_t(r) * in, 0.0), dBt(size_t(r) * out, 0.0);
        const double loss = l1_update_cpu(A_t, Bt_t, dA, dBt, r, in, out, weight, false);
        const float ms = check(
            "L1 of the update, full",
            [&](float* gA, float* gBt) {
                return cuda::l1_update_loss(d_A_t, d_Bt_t, gA, gBt, r, in, out, weight, false);
            },
            loss, dA, dBt, 1e-6, ok);
        shipped += format(" | l1 %.3f ms", ms);
    }
    {
        std::vector<double> dA(size_t(r) * in, 0.0), dBt(size_t(r) * in, 0.0);
        const double loss = l1_update_cpu(A_t, Bt_square, dA, dBt, r, in, in, weight, true);
        const float ms = check(
            "L1 of the update, rr (768 -> 768)",
            [&](float* gA, float* gBt) {
                return cuda::l1_update_loss(d_A_t, d_Bt_square, gA, gBt, r, in, in, weight, true);
            },
            loss, dA, dBt, 1e-6, ok);
        shipped += format(" | l1 rr %.3f ms", ms);
    }

    for (float* p : {d_A_old, d_A_t, d_Bt_t, d_Bt_square}) CHECK_CUDA(cudaFree(p));
    return finish("regularizers", ok, shipped);
}
