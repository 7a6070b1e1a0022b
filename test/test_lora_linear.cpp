// Tests of the multi-branch LoRA linear's adapter path: the CPU reference (model/cpu/lora_linear.h) against a
// direct loop formula and finite differences in double precision, with and without dropout and block weights,
// with frozen branches; and the CUDA version (model/cuda/lora_linear.cu) against the CPU reference in float.
// Outputs a kernel overwrites are poisoned first; outputs that accumulate start from the same random values on
// both sides. Without a GPU the "cuda kernels: " tests report themselves as skipped.
#include <algorithm>
#include <cstring>

#include "model/cpu/lora_linear.h"
#include "model/cuda/lora_kernels.h"
#include "test/cuda_test_support.h"
#include "test/gradient_check.h"

namespace {

using Vec = std::vector<double>;

// One adapted linear's inputs at one shape, random: inp (N,C), A (R,C), Bt (R,OC), and when asked for, an inverted
// dropout mask (N,C) (0 with probability 1/4, else 4/3) and block weights (N,branches) in [0,1).
template <typename T>
struct LoraInputs {
    LoraShape shape;
    int R;
    T scale = T(4);  // alpha / r, e.g. 32 / 8
    std::vector<T> inp, A, Bt, dropout_mask, block_weights;  // the last two are empty when not used

    LoraInputs(LoraShape s, bool dropout, bool weights, uint64_t seed) : shape(s), R(s.branches * s.rank) {
        inp = random_vector<T>(size_t(s.N) * s.C, seed);
        A = random_vector<T>(size_t(R) * s.C, seed + 1);
        Bt = random_vector<T>(size_t(R) * s.OC, seed + 2);
        if (dropout) {
            dropout_mask = random_vector<T>(size_t(s.N) * s.C, seed + 3, 0, 1);
            for (T& m : dropout_mask) m = m < T(0.25) ? T(0) : T(1 / 0.75);
        }
        if (weights) block_weights = random_vector<T>(size_t(s.N) * s.branches, seed + 4, 0, 1);
    }
    const T* mask() const { return dropout_mask.empty() ? nullptr : dropout_mask.data(); }
    const T* weights() const { return block_weights.empty() ? nullptr : block_weights.data(); }
};

// after - before, elementwise: what an accumulating kernel added
Vec change(const Vec& after, const Vec& before) {
    Vec difference(after.size());
    for (size_t i = 0; i < after.size(); i++) difference[i] = after[i] - before[i];
    return difference;
}

// columns [first, last) of a row-major (rows, cols) matrix, row by row
template <typename T>
std::vector<T> columns(const std::vector<T>& matrix, int cols, int first, int last) {
    std::vector<T> window;
    for (size_t row = 0; row < matrix.size() / cols; row++)
        window.insert(window.end(), matrix.begin() + row * cols + first, matrix.begin() + row * cols + last);
    return window;
}

// rows [first, last) of a row-major (rows, cols) matrix
template <typename T>
std::vector<T> rows(const std::vector<T>& matrix, int cols, int first, int last) {
    return std::vector<T>(matrix.begin() + size_t(first) * cols, matrix.begin() + size_t(last) * cols);
}

const bool on_off[] = {false, true};

}  // namespace

TEST_CASE("lora linear: forward matches the loop formula, with and without dropout and block weights",
          "[lora_linear]") {
    const LoraShape s{5, 7, 9, 3, 2, 2};
    for (bool dropout : on_off)
        for (bool weights : on_off) {
            INFO("dropout " << dropout << " block weights " << weights);
            LoraInputs<double> x(s, dropout, weights, 1);
            const Vec start = random_vector<double>(size_t(s.N) * s.OC, 10);
            Vec out = start, hidden(size_t(s.N) * x.R, 123.0);  // hidden is overwritten
            cpu::lora_forward(out.data(), hidden.data(), x.inp.data(), x.A.data(), x.Bt.data(), x.weights(), x.mask(),
                              x.scale, s);
            Vec expected_out = start, expected_hidden(hidden.size());
            for (int n = 0; n < s.N; n++) {
                for (int j = 0; j < x.R; j++) {  // hidden[n,j] = sum_c (inp .* mask)[n,c] A[j,c]
                    double sum = 0;
                    for (int c = 0; c < s.C; c++)
                        sum += x.inp[n * s.C + c] * (dropout ? x.dropout_mask[n * s.C + c] : 1.0) * x.A[j * s.C + c];
                    expected_hidden[n * x.R + j] = sum;
                }
                for (int o = 0; o < s.OC; o++)  // out[n,o] += scale sum_b w[n,b] sum_k Bt[b*r+k,o] hidden[n,b*r+k]
                    for (int b = 0; b < s.branches; b++) {
                        double w = weights ? x.block_weights[n * s.branches + b] : 1.0;
                        for (int k = 0; k < s.rank; k++) {
                            int j = b * s.rank + k;
                            expected_out[n * s.OC + o] += x.scale * w * x.Bt[j * s.OC + o] * expected_hidden[n * x.R + j];
                        }
                    }
            }
            CHECK(relative_error(hidden, expected_hidden) < 1e-14);
            CHECK(relative_error(out, expected_out) < 1e-14);
        }
}

TEST_CASE("lora linear: backward matches finite differences; frozen branches get exactly nothing", "[lora_linear]") {
    const LoraShape s{5, 7, 9, 3, 2, 2};  // branches 0 and 1 frozen, branch 2 trainable
    const int frozen = s.first_trainable_branch * s.rank;
    for (bool dropout : on_off)
        for (bool weights : on_off) {
            INFO("dropout " << dropout << " block weights " << weights);
            LoraInputs<double> x(s, dropout, weights, 2);
            const Vec r = random_vector<double>(size_t(s.N) * s.OC, 20);  // dout: loss = sum r .* out
            Vec out(r.size()), hidden(size_t(s.N) * x.R);
            auto loss = [&] {
                std::fill(out.begin(), out.end(), 0.0);
                cpu::lora_forward(out.data(), hidden.data(), x.inp.data(), x.A.data(), x.Bt.data(), x.weights(),
                                  x.mask(), x.scale, s);
                return project(out, r);
            };
            loss();  // hidden, for the backward
            // every gradient accumulates onto random values
            const Vec dinp0 = random_vector<double>(x.inp.size(), 21), dA0 = random_vector<double>(x.A.size(), 22);
            const Vec dB0 = random_vector<double>(x.Bt.size(), 23);
            const Vec dw0 = random_vector<double>(size_t(s.N) * s.branches, 24);
            Vec dinp = dinp0, dA = dA0, dB = dB0, dw = dw0;
            cpu::lora_backward(dinp.data(), dA.data(), dB.data(), weights ? dw.data() : nullptr, r.data(),
                               x.inp.data(), hidden.data(), x.A.data(), x.Bt.data(), x.weights(), x.mask(), x.scale, s);

            CHECK(relative_error(change(dinp, dinp0), numerical_gradient(x.inp, loss)) < GRADIENT_TOLERANCE);
            // A: the trainable rows match; the frozen rows are untouched
            Vec numerical_A = numerical_gradient(x.A, loss);
            CHECK(relative_error(rows(change(dA, dA0), s.C, frozen, x.R), rows(numerical_A, s.C, frozen, x.R)) <
                  GRADIENT_TOLERANCE);
            CHECK(rows(dA, s.C, 0, frozen) == rows(dA0, s.C, 0, frozen));
            // Bt: the trainable rows match; the frozen rows are untouched
            Vec numerical_B = numerical_gradient(x.Bt, loss);
            CHECK(relative_error(rows(change(dB, dB0), s.OC, frozen, x.R), rows(numerical_B, s.OC, frozen, x.R)) <
                  GRADIENT_TOLERANCE);
            CHECK(rows(dB, s.OC, 0, frozen) == rows(dB0, s.OC, 0, frozen));
            if (weights)
                CHECK(relative_error(change(dw, dw0), numerical_gradient(x.block_weights, loss)) < GRADIENT_TOLERANCE);
        }
}

TEST_CASE("lora linear: without block weights, d_block_weights is the gradient at weights of one", "[lora_linear]") {
    const LoraShape s{5, 7, 9, 3, 2, 0};
    for (bool dropout : on_off) {
        INFO("dropout " << dropout);
        LoraInputs<double> x(s, dropout, true, 3);
        std::fill(x.block_weights.begin(), x.block_weights.end(), 1.0);
        const Vec r = random_vector<double>(size_t(s.N) * s.OC, 30);
        Vec results[2];  // out, hidden and the four gradients, with null weights then explicit ones
        for (int explicit_ones = 0; explicit_ones < 2; explicit_ones++) {
            const double* w = explicit_ones ? x.weights() : nullptr;
            Vec out(r.size()), hidden(size_t(s.N) * x.R), dinp(x.inp.size()), dA(x.A.size()), dB(x.Bt.size());
            Vec dw(size_t(s.N) * s.branches);
            cpu::lora_forward(out.data(), hidden.data(), x.inp.data(), x.A.data(), x.Bt.data(), w, x.mask(), x.scale,
                              s);
            cpu::lora_backward(dinp.data(), dA.data(), dB.data(), dw.data(), r.data(), x.inp.data(), hidden.data(),
                               x.A.data(), x.Bt.data(), w, x.mask(), x.scale, s);
            for (const Vec* part : {&out, &hidden, &dinp, &dA, &dB, &dw})
                results[explicit_ones].insert(results[explicit_ones].end(), part->begin(), part->end());
        }
        CHECK(results[0] == results[1]);
    }
}

TEST_CASE("lora linear: each gradient may be skipped, and the others do not change", "[lora_linear]") {
    const LoraShape s{5, 7, 9, 3, 2, 1};
    LoraInputs<double> x(s, true, true, 4);
    const Vec r = random_vector<double>(size_t(s.N) * s.OC, 40);
    Vec out(r.size()), hidden(size_t(s.N) * x.R);
    cpu::lora_forward(out.data(), hidden.data(), x.inp.data(), x.A.data(), x.Bt.data(), x.weights(), x.mask(), x.scale,
                      s);
    auto backward = [&](Vec* dinp, Vec* dA, Vec* dB, Vec* dw) {
        cpu::lora_backward(dinp ? dinp->data() : nullptr, dA ? dA->data() : nullptr, dB ? dB->data() : nullptr,
                           dw ? dw->data() : nullptr, r.data(), x.inp.data(), hidden.data(), x.A.data(), x.Bt.data(),
                           x.weights(), x.mask(), x.scale, s);
    };
    Vec dinp(x.inp.size()), dA(x.A.size()), dB(x.Bt.size()), dw(size_t(s.N) * s.branches);
    backward(&dinp, &dA, &dB, &dw);
    Vec alone_dinp(dinp.size()), alone_dA(dA.size()), alone_dB(dB.size()), alone_dw(dw.size());
    backward(&alone_dinp, nullptr, nullptr, nullptr);
    backward(nullptr, &alone_dA, nullptr, nullptr);
    backward(nullptr, nullptr, &alone_dB, nullptr);
    backward(nullptr, nullptr, nullptr, &alone_dw);
    CHECK(alone_dinp == dinp);
    CHECK(alone_dA == dA);
    CHECK(alone_dB == dB);
    CHECK(alone_dw == dw);

    // every branch frozen: dA and dB untouched, dinp and d_block_weights as before
    LoraShape all_frozen = s;
    all_frozen.first_trainable_branch = s.branches;
    Vec frozen_dinp(dinp.size()), frozen_dA = dA, frozen_dB = dB, frozen_dw(dw.size());
    cpu::lora_backward(frozen_dinp.data(), frozen_dA.data(), frozen_dB.data(), frozen_dw.data(), r.data(),
                       x.inp.data(), hidden.data(), x.A.data(), x.Bt.data(), x.weights(), x.mask(), x.scale,
                       all_frozen);
    CHECK(frozen_dA == dA);
    CHECK(frozen_dB == dB);
    CHECK(frozen_dinp == dinp);
    CHECK(frozen_dw == dw);
}

TEST_CASE("lora linear: a new branch with B = 0 leaves the output unchanged", "[lora_linear]") {
    for (bool dropout : on_off)
        for (bool weights : on_off) {
            INFO("dropout " << dropout << " block weights " << weights);
            // one branch, B = 0: out is exactly what it was
            const LoraShape one{5, 7, 9, 1, 2, 0};
            LoraInputs<double> x(one, dropout, weights, 5);
            std::fill(x.Bt.begin(), x.Bt.end(), 0.0);
            const Vec start = random_vector<double>(size_t(one.N) * one.OC, 50);
            Vec out = start, hidden(size_t(one.N) * x.R);
            cpu::lora_forward(out.data(), hidden.data(), x.inp.data(), x.A.data(), x.Bt.data(), x.weights(), x.mask(),
                              x.scale, one);
            CHECK(out == start);

            // two old branches plus a new one whose Bt rows are zero: the old branches' output
            const LoraShape three{5, 7, 9, 3, 2, 2}, two{5, 7, 9, 2, 2, 2};
            LoraInputs<double> y(three, dropout, weights, 6);
            std::fill(y.Bt.begin() + 4 * three.OC, y.Bt.end(), 0.0);
            Vec out3 = start, hidden3(size_t(three.N) * y.R), out2 = start, hidden2(size_t(two.N) * 4);
            cpu::lora_forward(out3.data(), hidden3.data(), y.inp.data(), y.A.data(), y.Bt.data(), y.weights(),
                              y.mask(), y.scale, three);
            Vec A2 = rows(y.A, three.C, 0, 4), B2 = rows(y.Bt, three.OC, 0, 4), w2 = columns(y.block_weights, 3, 0, 2);
            cpu::lora_forward(out2.data(), hidden2.data(), y.inp.data(), A2.data(), B2.data(),
                              weights ? w2.data() : nullptr, y.mask(), y.scale, two);
            CHECK(relative_error(out3, out2) < 1e-14);
        }
}

GPU_TEST_CASE("cuda kernels: lora linear forward and backward match the CPU reference", "[lora_linear]") {
    // N, C, OC, branches, rank, first_trainable_branch: tiny, odd, all trainable, and GPT-2's qkv with 15 tasks
    const LoraShape shapes[] = {
        {1, 1, 1, 1, 1, 0}, {5, 7, 9, 3, 2, 2}, {33, 771, 67, 4, 3, 1}, {64, 36, 108, 2, 8, 0},
        {512, 768, 2304, 15, 8, 14}};
    for (const LoraShape& s : shapes)
        for (bool dropout : on_off)
            for (bool weights : on_off) {
                INFO("N=" << s.N << " C=" << s.C << " OC=" << s.OC << " branches=" << s.branches << " r=" << s.rank
                          << " first trainable=" << s.first_trainable_branch << " dropout " << dropout
                          << " block weights " << weights);
                LoraInputs<float> x(s, dropout, weights, 7);
                const int frozen = s.first_trainable_branch * s.rank;
                DeviceBuffer<float> d_inp(x.inp), d_A(x.A), d_B(x.Bt);
                DeviceBuffer<float> d_mask(std::max<size_t>(x.dropout_mask.size(), 1));
                DeviceBuffer<float> d_weights(std::max<size_t>(x.block_weights.size(), 1));
                if (dropout) d_mask.upload(x.dropout_mask);
                if (weights) d_weights.upload(x.block_weights);
                const float* mask = dropout ? d_mask.data : nullptr;
                const float* block_weights = weights ? d_weights.data : nullptr;

                // forward: out accumulates from the same random values, hidden is overwritten
                std::vector<float> out = random_vector<float>(size_t(s.N) * s.OC, 70), hidden(size_t(s.N) * x.R);
                DeviceBuffer<float> d_out(out), d_hidden(hidden.size());
                d_hidden.poison();
                cpu::lora_forward(out.data(), hidden.data(), x.inp.data(), x.A.data(), x.Bt.data(), x.weights(),
                                  x.mask(), x.scale, s);
                cuda::lora_forward(d_out.data, d_hidden.data, d_inp.data, d_A.data, d_B.data, block_weights, mask,
                                   x.scale, s);
                CHECK(relative_error(d_hidden.download(), hidden) < FP32_TOLERANCE);
                CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);

                // backward: all four gradients accumulate from the same random values; each side uses its own hidden
                std::vector<float> dout = random_vector<float>(size_t(s.N) * s.OC, 71);
                std::vector<float> dinp = random_vector<float>(x.inp.size(), 72);
                std::vector<float> dA = random_vector<float>(x.A.size(), 73);
                std::vector<float> dB = random_vector<float>(x.Bt.size(), 74);
                std::vector<float> dw = random_vector<float>(size_t(s.N) * s.branches, 75);
                DeviceBuffer<float> d_dout(dout), d_dinp(dinp), d_dA(dA), d_dB(dB), d_dw(dw);
                const std::vector<float> dA0 = dA, dB0 = dB, dinp0 = dinp, dw0 = dw;
                cpu::lora_backward(dinp.data(), dA.data(), dB.data(), dw.data(), dout.data(), x.inp.data(),
                                   hidden.data(), x.A.data(), x.Bt.data(), x.weights(), x.mask(), x.scale, s);
                cuda::lora_backward(d_dinp.data, d_dA.data, d_dB.data, d_dw.data, d_dout.data, d_inp.data,
                                    d_hidden.data, d_A.data, d_B.data, block_weights, mask, x.scale, s);
                const std::vector<float> gpu_dA = d_dA.download(), gpu_dB = d_dB.download();
                const std::vector<float> gpu_dinp = d_dinp.download(), gpu_dw = d_dw.download();
                CHECK(relative_error(gpu_dinp, dinp) < FP32_TOLERANCE);
                CHECK(relative_error(gpu_dA, dA) < FP32_TOLERANCE);
                CHECK(relative_error(gpu_dB, dB) < FP32_TOLERANCE);
                CHECK(relative_error(gpu_dw, dw) < FP32_TOLERANCE);
                // frozen branches: bit for bit what they were
                CHECK(bit_identical(rows(gpu_dA, s.C, 0, frozen), rows(dA0, s.C, 0, frozen)));
                CHECK(bit_identical(rows(gpu_dB, s.OC, 0, frozen), rows(dB0, s.OC, 0, frozen)));

                // deterministic: the same call from the same starting values gives the same bits
                d_dinp.upload(dinp0), d_dA.upload(dA0), d_dB.upload(dB0), d_dw.upload(dw0);
                cuda::lora_backward(d_dinp.data, d_dA.data, d_dB.data, d_dw.data, d_dout.data, d_inp.data,
                                    d_hidden.data, d_A.data, d_B.data, block_weights, mask, x.scale, s);
                CHECK(bit_identical(d_dinp.download(), gpu_dinp));
                CHECK(bit_identical(d_dA.download(), gpu_dA));
                CHECK(bit_identical(d_dB.download(), gpu_dB));
                CHECK(bit_identical(d_dw.download(), gpu_dw));
            }
}

GPU_TEST_CASE("cuda kernels: lora linear backward skips each unwanted gradient, the others unchanged",
              "[lora_linear]") {
    const LoraShape s{33, 771, 67, 4, 3, 1};
    for (bool dropout : on_off)
        for (bool weights : on_off) {
            INFO("dropout " << dropout << " block weights " << weights);
            LoraInputs<float> x(s, dropout, weights, 8);
            DeviceBuffer<float> d_inp(x.inp), d_A(x.A), d_B(x.Bt), d_hidden(size_t(s.N) * x.R);
            DeviceBuffer<float> d_out(size_t(s.N) * s.OC), d_dout(random_vector<float>(size_t(s.N) * s.OC, 80));
            DeviceBuffer<float> d_mask(std::max<size_t>(x.dropout_mask.size(), 1));
            DeviceBuffer<float> d_weights(std::max<size_t>(x.block_weights.size(), 1));
            if (dropout) d_mask.upload(x.dropout_mask);
            if (weights) d_weights.upload(x.block_weights);
            const float* mask = dropout ? d_mask.data : nullptr;
            const float* block_weights = weights ? d_weights.data : nullptr;
            cuda::lora_forward(d_out.data, d_hidden.data, d_inp.data, d_A.data, d_B.data, block_weights, mask, x.scale,
                               s);

            DeviceBuffer<float> all[4] = {DeviceBuffer<float>(x.inp.size()), DeviceBuffer<float>(x.A.size()),
                                          DeviceBuffer<float>(x.Bt.size()),
                                          DeviceBuffer<float>(size_t(s.N) * s.branches)};
            cuda::lora_backward(all[0].data, all[1].data, all[2].data, all[3].data, d_dout.data, d_inp.data,
                                d_hidden.data, d_A.data, d_B.data, block_weights, mask, x.scale, s);
            for (int wanted = 0; wanted < 4; wanted++) {
                INFO("only gradient " << wanted << " (dinp, dA, dB, d_block_weights)");
                DeviceBuffer<float> alone(all[wanted].count);
                float* outputs[4] = {nullptr, nullptr, nullptr, nullptr};
                outputs[wanted] = alone.data;
                cuda::lora_backward(outputs[0], outputs[1], outputs[2], outputs[3], d_dout.data, d_inp.data,
                                    d_hidden.data, d_A.data, d_B.data, block_weights, mask, x.scale, s);
                CHECK(bit_identical(alone.download(), all[wanted].download()));
            }
        }
}
