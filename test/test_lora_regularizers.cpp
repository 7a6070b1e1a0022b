// Tests of the O-LoRA and N-LoRA regularisers: the CPU reference (lora/cpu/regularizers.h) against a direct loop
// formula and finite differences in double precision, and the CUDA version (lora/cuda/regularizers.cu)
// against the CPU reference in float, loss values included. Gradients accumulate: both sides start from the same
// random values, and what the kernel added is compared. Without a GPU the "cuda kernels: " tests report
// themselves as skipped.
#include <cmath>
#include <cstring>

#include "lora/cpu/regularizers.h"
#include "lora/cuda/regularizer_kernels.h"
#include "test/cuda_test_support.h"
#include "test/gradient_check.h"

namespace {

using Vec = std::vector<double>;

// after - before, elementwise: what an accumulating kernel added
Vec change(const Vec& after, const Vec& before) {
    Vec difference(after.size());
    for (size_t i = 0; i < after.size(); i++) difference[i] = after[i] - before[i];
    return difference;
}

// sum_{p,q} |M_pq| (or M_pq^2) with M = X (m,c) Y^T (c,n), by loops
double loop_entrywise_norm(const Vec& X, const Vec& Y, int m, int n, int c, bool squared) {
    double total = 0;
    for (int p = 0; p < m; p++)
        for (int q = 0; q < n; q++) {
            double sum = 0;
            for (int i = 0; i < c; i++) sum += X[p * c + i] * Y[q * c + i];
            total += squared ? sum * sum : std::abs(sum);
        }
    return total;
}

// X (rows,cols) row-major, transposed
Vec transpose(const Vec& X, int rows, int cols) {
    Vec t(X.size());
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) t[j * rows + i] = X[i * cols + j];
    return t;
}

}  // namespace

TEST_CASE("regularizers: orthogonality loss matches the loop formula and finite differences (abs, squared)",
          "[regularizers]") {
    const int k = 6, r = 3, in = 7;  // two earlier branches of rank 3
    const double weight = 0.7;
    for (bool squared : {false, true}) {
        INFO("squared " << squared);
        Vec A_old = random_vector<double>(size_t(k) * in, 1), A_t = random_vector<double>(size_t(r) * in, 2);
        auto loss = [&] {
            return cpu::orthogonality_loss<double>(A_old.data(), A_t.data(), nullptr, k, r, in, weight, squared);
        };
        // M = A_old A_t^T: sum over (p,q) of |M_pq| or M_pq^2
        CHECK(std::abs(loss() - weight * loop_entrywise_norm(A_old, A_t, k, r, in, squared)) < 1e-12);
        const Vec dA0 = random_vector<double>(A_t.size(), 3);
        Vec dA = dA0;
        const double value =
            cpu::orthogonality_loss<double>(A_old.data(), A_t.data(), dA.data(), k, r, in, weight, squared);
        CHECK(value == loss());
        CHECK(relative_error(change(dA, dA0), numerical_gradient(A_t, loss)) < GRADIENT_TOLERANCE);
    }
    // no earlier branch: no loss, nothing added
    Vec A_t = random_vector<double>(3 * 7, 4), dA = random_vector<double>(3 * 7, 5);
    const Vec dA0 = dA;
    CHECK(cpu::orthogonality_loss<double>(nullptr, A_t.data(), dA.data(), 0, 3, 7, 1.0, false) == 0);
    CHECK(dA == dA0);
}

TEST_CASE("regularizers: the L2 loss is the sum of Frobenius norms; its gradient matches finite differences",
          "[regularizers]") {
    const int r = 3, in = 7, out = 5;
    const double weight = 0.3;
    Vec A_t = random_vector<double>(size_t(r) * in, 10), Bt_t = random_vector<double>(size_t(r) * out, 11);
    auto loss = [&] {
        return cpu::l2_norm_loss<double>(A_t.data(), Bt_t.data(), nullptr, nullptr, r, in, out, weight);
    };
    double a2 = 0, b2 = 0;
    for (double x : A_t) a2 += x * x;
    for (double x : Bt_t) b2 += x * x;
    CHECK(std::abs(loss() - weight * (std::sqrt(a2) + std::sqrt(b2))) < 1e-12);
    const Vec dA0 = random_vector<double>(A_t.size(), 12), dB0 = random_vector<double>(Bt_t.size(), 13);
    Vec dA = dA0, dB = dB0;
    cpu::l2_norm_loss<double>(A_t.data(), Bt_t.data(), dA.data(), dB.data(), r, in, out, weight);
    CHECK(relative_error(change(dA, dA0), numerical_gradient(A_t, loss)) < GRADIENT_TOLERANCE);
    CHECK(relative_error(change(dB, dB0), numerical_gradient(Bt_t, loss)) < GRADIENT_TOLERANCE);

    // a fresh branch (B = 0): the norm of B is 0 and contributes neither loss nor gradient
    std::fill(Bt_t.begin(), Bt_t.end(), 0.0);
    dB = dB0;
    CHECK(std::abs(cpu::l2_norm_loss<double>(A_t.data(), Bt_t.data(), nullptr, dB.data(), r, in, out, weight) -
                   weight * std::sqrt(a2)) < 1e-12);
    CHECK(dB == dB0);
}

TEST_CASE("regularizers: the L1 loss of the update matches the loop formula and finite differences (full, rr)",
          "[regularizers]") {
    const int r = 3;
    const double weight = 0.4;
    SECTION("full: ||B_t A_t||_1 over the out x in update") {
        const int in = 7, out = 5;
        Vec A_t = random_vector<double>(size_t(r) * in, 20), Bt_t = random_vector<double>(size_t(r) * out, 21);
        auto loss = [&] {
            return cpu::l1_update_loss<double>(A_t.data(), Bt_t.data(), nullptr, nullptr, r, in, out, weight, false);
        };
        // (B_t A_t)[o,c] = sum_q Bt_t[q,o] A_t[q,c] = (Bt_t^T)(o,:) . (A_t^T)(c,:)
        CHECK(std::abs(loss() - weight * loop_entrywise_norm(transpose(Bt_t, r, out), transpose(A_t, r, in), out, in,
                                                             r, false)) < 1e-12);
        const Vec dA0 = random_vector<double>(A_t.size(), 22), dB0 = random_vector<double>(Bt_t.size(), 23);
        Vec dA = dA0, dB = dB0;
        cpu::l1_update_loss<double>(A_t.data(), Bt_t.data(), dA.data(), dB.data(), r, in, out, weight, false);
        CHECK(relative_error(change(dA, dA0), numerical_gradient(A_t, loss)) < GRADIENT_TOLERANCE);
        CHECK(relative_error(change(dB, dB0), numerical_gradient(Bt_t, loss)) < GRADIENT_TOLERANCE);
    }
    SECTION("rr: ||A_t B_t||_1 over the r x r product, square modules only") {
        const int c = 6;
        Vec A_t = random_vector<double>(size_t(r) * c, 30), Bt_t = random_vector<double>(size_t(r) * c, 31);
        auto loss = [&] {
            return cpu::l1_update_loss<double>(A_t.data(), Bt_t.data(), nullptr, nullptr, r, c, c, weight, true);
        };
        // (A_t B_t)[p,q] = sum_i A_t[p,i] Bt_t[q,i]
        CHECK(std::abs(loss() - weight * loop_entrywise_norm(A_t, Bt_t, r, r, c, false)) < 1e-12);
        const Vec dA0 = random_vector<double>(A_t.size(), 32), dB0 = random_vector<double>(Bt_t.size(), 33);
        Vec dA = dA0, dB = dB0;
        cpu::l1_update_loss<double>(A_t.data(), Bt_t.data(), dA.data(), dB.data(), r, c, c, weight, true);
        CHECK(relative_error(change(dA, dA0), numerical_gradient(A_t, loss)) < GRADIENT_TOLERANCE);
        CHECK(relative_error(change(dB, dB0), numerical_gradient(Bt_t, loss)) < GRADIENT_TOLERANCE);
        // a module that is not square
        Vec B_wide = random_vector<double>(size_t(r) * (c + 1), 34);
        CHECK_THROWS_WITH(cpu::l1_update_loss<double>(A_t.data(), B_wide.data(), nullptr, nullptr, r, c, c + 1,
                                                      weight, true),
                          Catch::Contains("square") && Catch::Contains("6 -> 7"));
    }
    SECTION("a fresh branch (B = 0) has no loss and no gradient") {
        const int in = 7, out = 5;
        Vec A_t = random_vector<double>(size_t(r) * in, 40), Bt_t(size_t(r) * out, 0.0);
        Vec dA(A_t.size(), 0.0), dB(Bt_t.size(), 0.0);
        CHECK(cpu::l1_update_loss<double>(A_t.data(), Bt_t.data(), dA.data(), dB.data(), r, in, out, weight, false) ==
              0);
        CHECK(dA == Vec(A_t.size(), 0.0));
        CHECK(dB == Vec(Bt_t.size(), 0.0));
    }
}

// The CUDA kernels against the CPU reference in float, at a small odd shape, at the synthetic benchmark's shapes
// and at GPT-2 124M's qkv (in 768, out 2304: the L1 product has 1.8M entries, every reduction block busy).
namespace {

struct RegularizerShape {
    int k, r, in, out;
};
const RegularizerShape cuda_shapes[] = {{6, 3, 7, 5}, {24, 8, 64, 192}, {8, 8, 256, 64}, {112, 8, 768, 2304}};

// Random adapter values in [-0.1, 0.1); dyadic: multiples of 1/8 in [-1/2, 1/2] instead. Products and sums of
// dyadic values at these sizes are exact in float whatever the summation order, so the GPU and the CPU see the same
// sign of every entry of M or P (0 included): the sign-based losses can then be compared at fp32 tolerance (with
// continuous values, an entry within rounding of 0 may take different signs on the two sides, which moves the
// gradient by a whole row of A or B).
std::vector<float> adapter_values(size_t count, uint64_t seed, bool dyadic) {
    if (!dyadic) return random_vector<float>(count, seed, -0.1, 0.1);
    std::vector<float> values = random_vector<float>(count, seed, -4.5, 4.5);
    for (float& v : values) v = std::round(v) / 8.0f;
    return values;
}

// Runs one regulariser on the GPU and on the CPU from the same inputs and the same starting gradients; checks the
// loss and what each added to the gradients, that a second GPU run is bit-identical, and that the loss alone (no
// gradient pointers) is the same.
template <class Gpu, class Cpu>
void compare_regularizer(const RegularizerShape& s, uint64_t seed, bool dyadic, Gpu gpu, Cpu cpu_run) {
    const std::vector<float> A_old = adapter_values(size_t(s.k) * s.in, seed, dyadic);
    const std::vector<float> A_t = adapter_values(size_t(s.r) * s.in, seed + 1, dyadic);
    const std::vector<float> Bt_t = adapter_values(size_t(s.r) * s.out, seed + 2, dyadic);
    const std::vector<float> dA0 = random_vector<float>(A_t.size(), seed + 3);
    const std::vector<float> dB0 = random_vector<float>(Bt_t.size(), seed + 4);

    std::vector<float> dA = dA0, dB = dB0;
    const double expected = cpu_run(A_old.data(), A_t.data(), Bt_t.data(), dA.data(), dB.data());

    DeviceBuffer<float> d_A_old(A_old), d_A_t(A_t), d_Bt_t(Bt_t), d_dA(dA0), d_dB(dB0);
    const double loss = gpu(d_A_old.data, d_A_t.data, d_Bt_t.data, d_dA.data, d_dB.data);
    CHECK(std::abs(loss - expected) <= FP32_TOLERANCE * std::abs(expected));
    const std::vector<float> gpu_dA = d_dA.download(), gpu_dB = d_dB.download();
    auto added = [](const std::vector<float>& after, const std::vector<float>& before) {
        Vec difference(after.size());
        for (size_t i = 0; i < after.size(); i++) difference[i] = double(after[i]) - double(before[i]);
        return difference;
    };
    CHECK(relative_error(added(gpu_dA, dA0), added(dA, dA0)) < FP32_TOLERANCE);
    CHECK(relative_error(added(gpu_dB, dB0), added(dB, dB0)) < FP32_TOLERANCE);

    // deterministic: the same inputs again give bit-identical losses and gradients
    d_dA.upload(dA0);
    d_dB.upload(dB0);
    CHECK(gpu(d_A_old.data, d_A_t.data, d_Bt_t.data, d_dA.data, d_dB.data) == loss);
    CHECK(bit_identical(d_dA.download(), gpu_dA));
    CHECK(bit_identical(d_dB.download(), gpu_dB));

    // the value alone: no gradient pointer, the same loss
    CHECK(gpu(d_A_old.data, d_A_t.data, d_Bt_t.data, nullptr, nullptr) == loss);
}

}  // namespace

GPU_TEST_CASE("cuda kernels: orthogonality loss matches the CPU reference (abs, squared)", "[regularizers]") {
    for (const RegularizerShape& s : cuda_shapes)
        for (bool squared : {false, true}) {
            INFO("k " << s.k << " r " << s.r << " in " << s.in << " squared " << squared);
            compare_regularizer(
                s, 100, !squared,
                [&](const float* A_old, const float* A_t, const float*, float* dA, float*) {
                    return cuda::orthogonality_loss(A_old, A_t, dA, s.k, s.r, s.in, 0.5f, squared);
                },
                [&](const float* A_old, const float* A_t, const float*, float* dA, float*) {
                    return cpu::orthogonality_loss<float>(A_old, A_t, dA, s.k, s.r, s.in, 0.5f, squared);
                });
        }
}

GPU_TEST_CASE("cuda kernels: L2 norm loss matches the CPU reference", "[regularizers]") {
    for (const RegularizerShape& s : cuda_shapes) {
        INFO("r " << s.r << " in " << s.in << " out " << s.out);
        compare_regularizer(
            s, 200, false,
            [&](const float*, const float* A_t, const float* Bt_t, float* dA, float* dB) {
                return cuda::l2_norm_loss(A_t, Bt_t, dA, dB, s.r, s.in, s.out, 0.3f);
            },
            [&](const float*, const float* A_t, const float* Bt_t, float* dA, float* dB) {
                return cpu::l2_norm_loss<float>(A_t, Bt_t, dA, dB, s.r, s.in, s.out, 0.3f);
            });
    }
}

GPU_TEST_CASE("cuda kernels: L1 update loss matches the CPU reference (full, rr)", "[regularizers]") {
    for (const RegularizerShape& s : cuda_shapes) {
        INFO("full: r " << s.r << " in " << s.in << " out " << s.out);
        compare_regularizer(
            s, 300, true,
            [&](const float*, const float* A_t, const float* Bt_t, float* dA, float* dB) {
                return cuda::l1_update_loss(A_t, Bt_t, dA, dB, s.r, s.in, s.out, 0.4f, false);
            },
            [&](const float*, const float* A_t, const float* Bt_t, float* dA, float* dB) {
                return cpu::l1_update_loss<float>(A_t, Bt_t, dA, dB, s.r, s.in, s.out, 0.4f, false);
            });
    }
    for (const RegularizerShape& s : cuda_shapes) {
        const RegularizerShape square{s.k, s.r, s.in, s.in};
        INFO("rr: r " << s.r << " in = out " << s.in);
        compare_regularizer(
            square, 400, true,
            [&](const float*, const float* A_t, const float* Bt_t, float* dA, float* dB) {
                return cuda::l1_update_loss(A_t, Bt_t, dA, dB, s.r, s.in, s.in, 0.4f, true);
            },
            [&](const float*, const float* A_t, const float* Bt_t, float* dA, float* dB) {
                return cpu::l1_update_loss<float>(A_t, Bt_t, dA, dB, s.r, s.in, s.in, 0.4f, true);
            });
    }
    DeviceBuffer<float> A(8 * 64), Bt(8 * 65);
    CHECK_THROWS_WITH(cuda::l1_update_loss(A.data, Bt.data, nullptr, nullptr, 8, 64, 65, 0.4f, true),
                      Catch::Contains("square"));
}
