// GPU tests of the hand-written CUDA kernels (encoder, layernorm, GELU, residual, optimizer) against their CPU
// references (model/cpu/*.h, T = float), on fresh random inputs at several sizes, odd ones included. Outputs
// that a kernel overwrites are poisoned first; outputs that accumulate start from the same random values on
// both sides. The kernels meant to be deterministic are also run twice and must agree bit for bit.
// Without a GPU every test here reports itself as skipped.
#include <algorithm>
#include <cstring>

#include "model/cpu/adamw.h"
#include "model/cpu/encoder.h"
#include "model/cpu/gelu.h"
#include "model/cpu/global_norm.h"
#include "model/cpu/layernorm.h"
#include "model/cpu/residual.h"
#include "test/cuda_test_support.h"

namespace {

// count token ids in [0, V): with V small against count, ids repeat
std::vector<int> random_tokens(size_t count, int V, uint64_t seed) {
    std::vector<double> unit = random_vector<double>(count, seed, 0.0, 1.0);
    std::vector<int> tokens(count);
    for (size_t i = 0; i < count; i++) tokens[i] = std::min(V - 1, int(unit[i] * V));
    return tokens;
}

struct RowShape {
    int N, C;
};
// rows x channels: one row, a few, and 64*33 rows; a small C, GPT-2's 768, and an odd 771
const RowShape row_shapes[] = {{1, 36}, {1, 768}, {1, 771}, {7, 36}, {7, 768}, {7, 771}, {64 * 33, 36},
                               {64 * 33, 768}, {64 * 33, 771}};
// flat sizes for the elementwise kernels
const size_t flat_sizes[] = {1, 7, 64 * 33, 4 * 768 * 33 + 5};

}  // namespace

GPU_TEST_CASE("cuda kernels: encoder forward and backward match the CPU reference, with repeated tokens", "[encoder]") {
    struct Shape {
        int B, T, C, V;
    } shapes[] = {{1, 1, 1, 1}, {2, 5, 36, 11}, {3, 7, 771, 50}, {4, 64, 768, 300}, {8, 33, 20, 5}};
    for (const Shape& s : shapes) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " V=" << s.V);
        const int maxT = s.T + 3;  // wpe has rows beyond T, which neither side may touch
        const size_t BTC = size_t(s.B) * s.T * s.C;
        std::vector<int> tokens = random_tokens(size_t(s.B) * s.T, s.V, 1);
        std::vector<float> wte = random_vector<float>(size_t(s.V) * s.C, 2);
        std::vector<float> wpe = random_vector<float>(size_t(maxT) * s.C, 3);
        std::vector<float> dout = random_vector<float>(BTC, 4);

        std::vector<float> out(BTC);
        cpu::encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), s.B, s.T, s.C);
        DeviceBuffer<int> d_tokens(tokens);
        DeviceBuffer<float> d_wte(wte), d_wpe(wpe), d_dout(dout), d_out(BTC);
        d_out.poison();
        cuda::encoder_forward(d_out.data, d_tokens.data, d_wte.data, d_wpe.data, s.B, s.T, s.C);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);

        // gradients accumulate: both sides start from the same values
        std::vector<float> dwte = random_vector<float>(wte.size(), 5), dwpe = random_vector<float>(wpe.size(), 6);
        DeviceBuffer<float> d_dwte(dwte), d_dwpe(dwpe);
        cpu::encoder_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), s.B, s.T, s.C);
        cuda::encoder_backward(d_dwte.data, d_dwpe.data, d_dout.data, d_tokens.data, s.B, s.T, s.C);
        CHECK(relative_error(d_dwte.download(), dwte) < FP32_TOLERANCE);
        CHECK(relative_error(d_dwpe.download(), dwpe) < FP32_TOLERANCE);

        // frozen wte, then frozen wpe: the null one is skipped, the other still accumulates
        std::vector<float> dwte_before = d_dwte.download();
        cpu::encoder_backward<float>(nullptr, dwpe.data(), dout.data(), tokens.data(), s.B, s.T, s.C);
        cuda::encoder_backward(nullptr, d_dwpe.data, d_dout.data, d_tokens.data, s.B, s.T, s.C);
        CHECK(relative_error(d_dwpe.download(), dwpe) < FP32_TOLERANCE);
        CHECK(d_dwte.download() == dwte_before);
        std::vector<float> dwpe_before = d_dwpe.download();
        cpu::encoder_backward<float>(dwte.data(), nullptr, dout.data(), tokens.data(), s.B, s.T, s.C);
        cuda::encoder_backward(d_dwte.data, nullptr, d_dout.data, d_tokens.data, s.B, s.T, s.C);
        CHECK(relative_error(d_dwte.download(), dwte) < FP32_TOLERANCE);
        CHECK(d_dwpe.download() == dwpe_before);
    }
}

GPU_TEST_CASE("cuda kernels: encoder backward is deterministic (two runs agree bit for bit)", "[encoder]") {
    const int B = 8, T = 256, C = 768, V = 97;  // many repeats of each token
    std::vector<int> tokens = random_tokens(size_t(B) * T, V, 7);
    DeviceBuffer<int> d_tokens(tokens);
    DeviceBuffer<float> d_dout(random_vector<float>(size_t(B) * T * C, 8));
    std::vector<float> dwte = random_vector<float>(size_t(V) * C, 9), dwpe = random_vector<float>(size_t(T) * C, 10);
    std::vector<float> runs[2][2];
    for (auto& run : runs) {
        DeviceBuffer<float> d_dwte(dwte), d_dwpe(dwpe);
        cuda::encoder_backward(d_dwte.data, d_dwpe.data, d_dout.data, d_tokens.data, B, T, C);
        run[0] = d_dwte.download();
        run[1] = d_dwpe.download();
    }
    CHECK(bit_identical(runs[0][0], runs[1][0]));
    CHECK(bit_identical(runs[0][1], runs[1][1]));
}

GPU_TEST_CASE("cuda kernels: layernorm forward matches the CPU reference", "[layernorm]") {
    for (const RowShape& s : row_shapes) {
        INFO("N=" << s.N << " C=" << s.C);
        const size_t NC = size_t(s.N) * s.C;
        std::vector<float> inp = random_vector<float>(NC, 11, -2.0, 3.0);  // rows with a non-zero mean
        std::vector<float> weight = random_vector<float>(s.C, 12), bias = random_vector<float>(s.C, 13);
        std::vector<float> out(NC), mean(s.N), rstd(s.N);
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), s.N, s.C);

        DeviceBuffer<float> d_inp(inp), d_weight(weight), d_bias(bias), d_out(NC), d_mean(s.N), d_rstd(s.N);
        d_out.poison();
        d_mean.poison();
        d_rstd.poison();
        cuda::layernorm_forward(d_out.data, d_mean.data, d_rstd.data, d_inp.data, d_weight.data, d_bias.data, s.N,
                                s.C);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);
        CHECK(relative_error(d_mean.download(), mean) < FP32_TOLERANCE);
        CHECK(relative_error(d_rstd.download(), rstd) < FP32_TOLERANCE);
    }
}

GPU_TEST_CASE("cuda kernels: layernorm backward matches the CPU reference, and skips frozen weight and bias",
              "[layernorm]") {
    for (const RowShape& s : row_shapes) {
        INFO("N=" << s.N << " C=" << s.C);
        const size_t NC = size_t(s.N) * s.C;
        std::vector<float> inp = random_vector<float>(NC, 14, -2.0, 3.0), dout = random_vector<float>(NC, 15);
        std::vector<float> weight = random_vector<float>(s.C, 16), bias = random_vector<float>(s.C, 17);
        std::vector<float> out(NC), mean(s.N), rstd(s.N);
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), s.N, s.C);
        // gradients accumulate: both sides start from the same values
        std::vector<float> dinp = random_vector<float>(NC, 18);
        std::vector<float> dweight = random_vector<float>(s.C, 19), dbias = random_vector<float>(s.C, 20);

        DeviceBuffer<float> d_inp(inp), d_dout(dout), d_weight(weight), d_mean(mean), d_rstd(rstd);
        DeviceBuffer<float> d_dinp(dinp), d_dweight(dweight), d_dbias(dbias);
        cpu::layernorm_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(),
                                mean.data(), rstd.data(), s.N, s.C);
        cuda::layernorm_backward(d_dinp.data, d_dweight.data, d_dbias.data, d_dout.data, d_inp.data, d_weight.data,
                                 d_mean.data, d_rstd.data, s.N, s.C);
        CHECK(relative_error(d_dinp.download(), dinp) < FP32_TOLERANCE);
        CHECK(relative_error(d_dweight.download(), dweight) < FP32_TOLERANCE);
        CHECK(relative_error(d_dbias.download(), dbias) < FP32_TOLERANCE);

        // frozen bias: dinp and dweight still accumulate, dbias is untouched
        std::vector<float> dbias_before = d_dbias.download();
        cpu::layernorm_backward<float>(dinp.data(), dweight.data(), nullptr, dout.data(), inp.data(), weight.data(),
                                       mean.data(), rstd.data(), s.N, s.C);
        cuda::layernorm_backward(d_dinp.data, d_dweight.data, nullptr, d_dout.data, d_inp.data, d_weight.data,
                                 d_mean.data, d_rstd.data, s.N, s.C);
        CHECK(relative_error(d_dinp.download(), dinp) < FP32_TOLERANCE);
        CHECK(relative_error(d_dweight.download(), dweight) < FP32_TOLERANCE);
        CHECK(d_dbias.download() == dbias_before);

        // both frozen: only dinp
        std::vector<float> dweight_before = d_dweight.download();
        cpu::layernorm_backward<float>(dinp.data(), nullptr, nullptr, dout.data(), inp.data(), weight.data(),
                                       mean.data(), rstd.data(), s.N, s.C);
        cuda::layernorm_backward(d_dinp.data, nullptr, nullptr, d_dout.data, d_inp.data, d_weight.data, d_mean.data,
                                 d_rstd.data, s.N, s.C);
        CHECK(relative_error(d_dinp.download(), dinp) < FP32_TOLERANCE);
        CHECK(d_dweight.download() == dweight_before);
        CHECK(d_dbias.download() == dbias_before);
    }
}

GPU_TEST_CASE("cuda kernels: layernorm backward is deterministic (two runs agree bit for bit)", "[layernorm]") {
    const int N = 64 * 33, C = 771;
    const size_t NC = size_t(N) * C;
    std::vector<float> inp = random_vector<float>(NC, 21, -2.0, 3.0), dout = random_vector<float>(NC, 22);
    std::vector<float> weight = random_vector<float>(C, 23), bias = random_vector<float>(C, 24);
    std::vector<float> out(NC), mean(N), rstd(N);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N, C);
    DeviceBuffer<float> d_inp(inp), d_dout(dout), d_weight(weight), d_mean(mean), d_rstd(rstd);
    std::vector<float> dinp = random_vector<float>(NC, 25), dweight = random_vector<float>(C, 26),
                       dbias = random_vector<float>(C, 27);
    std::vector<float> runs[2][3];
    for (auto& run : runs) {
        DeviceBuffer<float> d_dinp(dinp), d_dweight(dweight), d_dbias(dbias);
        cuda::layernorm_backward(d_dinp.data, d_dweight.data, d_dbias.data, d_dout.data, d_inp.data, d_weight.data,
                                 d_mean.data, d_rstd.data, N, C);
        run[0] = d_dinp.download();
        run[1] = d_dweight.download();
        run[2] = d_dbias.download();
    }
    for (int i = 0; i < 3; i++) CHECK(bit_identical(runs[0][i], runs[1][i]));
}

GPU_TEST_CASE("cuda kernels: fused residual + layernorm forward matches residual_forward then layernorm_forward",
              "[layernorm][residual]") {
    for (const RowShape& s : row_shapes) {
        INFO("N=" << s.N << " C=" << s.C);
        const size_t NC = size_t(s.N) * s.C;
        std::vector<float> a = random_vector<float>(NC, 28, -2.0, 3.0), b = random_vector<float>(NC, 29);
        std::vector<float> weight = random_vector<float>(s.C, 30), bias = random_vector<float>(s.C, 31);
        std::vector<float> residual(NC), out(NC), mean(s.N), rstd(s.N);
        cpu::residual_forward(residual.data(), a.data(), b.data(), NC);
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), residual.data(), weight.data(), bias.data(), s.N,
                               s.C);

        DeviceBuffer<float> d_a(a), d_b(b), d_weight(weight), d_bias(bias);
        DeviceBuffer<float> d_residual(NC), d_out(NC), d_mean(s.N), d_rstd(s.N);
        d_residual.poison();
        d_out.poison();
        d_mean.poison();
        d_rstd.poison();
        cuda::fused_residual_layernorm_forward(d_residual.data, d_out.data, d_mean.data, d_rstd.data, d_a.data,
                                               d_b.data, d_weight.data, d_bias.data, s.N, s.C);
        CHECK(relative_error(d_residual.download(), residual) < FP32_TOLERANCE);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);
        CHECK(relative_error(d_mean.download(), mean) < FP32_TOLERANCE);
        CHECK(relative_error(d_rstd.download(), rstd) < FP32_TOLERANCE);
    }
}

GPU_TEST_CASE("cuda kernels: gelu forward and backward match the CPU reference", "[gelu]") {
    for (size_t N : flat_sizes) {
        INFO("N=" << N);
        std::vector<float> inp = random_vector<float>(N, 32, -5.0, 5.0), dout = random_vector<float>(N, 33);
        std::vector<float> out(N);
        cpu::gelu_forward(out.data(), inp.data(), N);
        DeviceBuffer<float> d_inp(inp), d_dout(dout), d_out(N);
        d_out.poison();
        cuda::gelu_forward(d_out.data, d_inp.data, N);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);

        std::vector<float> dinp = random_vector<float>(N, 34);  // accumulates
        DeviceBuffer<float> d_dinp(dinp);
        cpu::gelu_backward(dinp.data(), inp.data(), dout.data(), N);
        cuda::gelu_backward(d_dinp.data, d_inp.data, d_dout.data, N);
        CHECK(relative_error(d_dinp.download(), dinp) < FP32_TOLERANCE);
    }
}

GPU_TEST_CASE("cuda kernels: residual forward and backward, and scale, match the CPU reference", "[residual]") {
    for (size_t N : flat_sizes) {
        INFO("N=" << N);
        std::vector<float> a = random_vector<float>(N, 35), b = random_vector<float>(N, 36);
        std::vector<float> dout = random_vector<float>(N, 37), out(N);
        cpu::residual_forward(out.data(), a.data(), b.data(), N);
        DeviceBuffer<float> d_a(a), d_b(b), d_dout(dout), d_out(N);
        d_out.poison();
        cuda::residual_forward(d_out.data, d_a.data, d_b.data, N);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);

        std::vector<float> da = random_vector<float>(N, 38), db = random_vector<float>(N, 39);  // accumulate
        DeviceBuffer<float> d_da(da), d_db(db);
        cpu::residual_backward(da.data(), db.data(), dout.data(), N);
        cuda::residual_backward(d_da.data, d_db.data, d_dout.data, N);
        CHECK(relative_error(d_da.download(), da) < FP32_TOLERANCE);
        CHECK(relative_error(d_db.download(), db) < FP32_TOLERANCE);

        cpu::scale(a.data(), 0.375f, N);  // in place, as the model rescales a gradient
        cuda::scale(d_a.data, 0.375f, N);
        CHECK(d_a.download() == a);       // one rounding of the same product: bit-identical
    }
}

GPU_TEST_CASE("cuda kernels: sum of squares matches the CPU reference and is deterministic", "[global_norm]") {
    const size_t sizes[] = {1, 7, 64 * 33, 3 * 1024 * 1024 + 7};
    for (size_t N : sizes) {
        INFO("N=" << N);
        std::vector<float> x = random_vector<float>(N, 40);
        DeviceBuffer<float> d_x(x);
        double expected = cpu::sum_of_squares(x.data(), N);
        double first = cuda::sum_of_squares(d_x.data, N), second = cuda::sum_of_squares(d_x.data, N);
        CHECK(std::abs(first - expected) / expected < FP32_TOLERANCE);
        // both sides sum exact squares in double: the orders differ, but by far less than float rounding
        CHECK(std::abs(first - expected) / expected < 1e-9);
        CHECK(std::memcmp(&first, &second, sizeof(double)) == 0);
    }
}

GPU_TEST_CASE("cuda kernels: adamw update matches the CPU reference", "[adamw]") {
    const size_t sizes[] = {1, 7, 64 * 33, (1 << 20) + 3};
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f, grad_scale = 0.5f;
    for (size_t N : sizes)
        for (int t : {1, 7}) {
            INFO("N=" << N << " t=" << t);
            std::vector<float> params = random_vector<float>(N, 41), grads = random_vector<float>(N, 42);
            std::vector<float> m = random_vector<float>(N, 43, -0.1, 0.1);
            std::vector<float> v = random_vector<float>(N, 44, 0.0, 0.01);  // second moments: non-negative
            DeviceBuffer<float> d_params(params), d_grads(grads), d_m(m), d_v(v);
            cpu::adamw_update(params.data(), grads.data(), m.data(), v.data(), N, lr, beta1, beta2, eps, weight_decay,
                              t, grad_scale);
            cuda::adamw_update(d_params.data, d_grads.data, d_m.data, d_v.data, N, lr, beta1, beta2, eps, weight_decay,
                               t, grad_scale);
            CHECK(relative_error(d_params.download(), params) < FP32_TOLERANCE);
            CHECK(relative_error(d_m.download(), m) < FP32_TOLERANCE);
            CHECK(relative_error(d_v.download(), v) < FP32_TOLERANCE);
        }
}
