// Tests of the greedy-decoding and dropout kernels: the KV-cache attention step (model/cpu/kv_attention.h,
// model/cuda/kv_attention.cu), the argmax of each row of logits (model/cpu/argmax.h, model/cuda/argmax.cu) and
// the dropout mask (model/cpu/dropout.h, model/cuda/dropout.cu, model/dropout_hash.h).
// CPU tests ([decode]): the attention step against the full causal attention, argmax on hand-made rows, the
// dropout mask's statistics and seeds. GPU tests ("cuda kernels: ..."): each CUDA kernel against its CPU
// reference (T = float) on fresh random inputs, outputs poisoned first; without a GPU they report themselves
// as skipped.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "model/cpu/argmax.h"
#include "model/cpu/attention.h"
#include "model/cpu/dropout.h"
#include "model/cpu/kv_attention.h"
#include "test/cuda_test_support.h"

using Catch::Matchers::Contains;

namespace {

struct StepShape {
    int B, C, NH, max_T;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// CPU

TEST_CASE("decode kernels: attention steps over a sequence reproduce the full causal attention",
          "[decode][kv_attention]") {
    // hs = 9, 16 and 64; the cache longer than the sequence (max_T > T) or exactly as long
    const struct {
        int B, T, C, NH, max_T;
    } shapes[] = {{2, 9, 36, 4, 12}, {3, 7, 48, 3, 7}, {1, 5, 128, 2, 8}};
    for (const auto& s : shapes) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH << " max_T=" << s.max_T);
        const size_t C = s.C;
        std::vector<double> qkv = random_vector<double>(s.B * s.T * 3 * C, 1, -2, 2);
        std::vector<double> full(s.B * s.T * C), att(size_t(s.B) * s.NH * s.T * s.T);
        cpu::attention_forward(full.data(), att.data(), qkv.data(), s.B, s.T, s.C, s.NH);

        // the caches start as garbage: every row read must have been written by a step
        std::vector<double> key_cache(s.B * s.max_T * C, std::nan("")), value_cache(key_cache);
        std::vector<double> row(s.B * 3 * C), out(s.B * C);
        double worst = 0;
        for (int t = 0; t < s.T; t++) {
            for (int b = 0; b < s.B; b++)
                std::copy_n(qkv.begin() + (size_t(b) * s.T + t) * 3 * C, 3 * C, row.begin() + b * 3 * C);
            std::fill(out.begin(), out.end(), std::nan(""));
            cpu::attention_step_forward(out.data(), key_cache.data(), value_cache.data(), row.data(), t, s.B, s.C,
                                        s.NH, s.max_T);
            for (int b = 0; b < s.B; b++)
                for (size_t c = 0; c < C; c++) {
                    const double error = std::abs(out[b * C + c] - full[(size_t(b) * s.T + t) * C + c]);
                    worst = std::isnan(error) ? INFINITY : std::max(worst, error);
                }
        }
        CHECK(worst < 1e-12);

        // the caches hold every position's k and v; the rows past the sequence are untouched
        bool cache_ok = true;
        for (int b = 0; b < s.B; b++)
            for (int t = 0; t < s.max_T; t++)
                for (size_t c = 0; c < C; c++) {
                    const size_t at = (size_t(b) * s.max_T + t) * C + c;
                    if (t < s.T) {
                        const size_t source = (size_t(b) * s.T + t) * 3 * C + c;
                        cache_ok &= key_cache[at] == qkv[source + C] && value_cache[at] == qkv[source + 2 * C];
                    } else {
                        cache_ok &= std::isnan(key_cache[at]) && std::isnan(value_cache[at]);
                    }
                }
        CHECK(cache_ok);
    }
}

TEST_CASE("decode kernels: attention step fails for a position outside the cache", "[decode][kv_attention]") {
    const int B = 1, C = 8, NH = 2, max_T = 4;
    std::vector<float> qkv(B * 3 * C, 0.5f), cache(B * max_T * C), values(cache), out(B * C);
    for (int position : {-1, max_T, max_T + 10})
        REQUIRE_THROWS_WITH(cpu::attention_step_forward(out.data(), cache.data(), values.data(), qkv.data(), position,
                                                        B, C, NH, max_T),
                            Contains("position " + std::to_string(position)) && Contains("4 positions"));
    cpu::attention_step_forward(out.data(), cache.data(), values.data(), qkv.data(), max_T - 1, B, C, NH, max_T);
}

TEST_CASE("decode kernels: argmax picks the first largest logit and ignores the padding", "[decode][argmax]") {
    const int N = 5, V = 5, Vp = 7;
    // clang-format off
    const std::vector<double> logits = {
        1, 3, 3, 2, 0,      9, 9,   // a tie: the lower index; the padding is larger and ignored
        -1, -1, -1, -1, -1, 5, 0,   // all equal: index 0
        0, 1, 2, 3, 4,      100, 0, // the last real column
        7, -2, 7.5, 7.5, -8, 0, 50, // a tie in the middle
        -INFINITY, -INFINITY, -3, -INFINITY, -3, 1, 1,
    };
    // clang-format on
    const std::vector<int> expected = {1, 0, 4, 2, 2};
    std::vector<int> out(N, -7);
    cpu::argmax_rows(out.data(), logits.data(), N, V, Vp);
    CHECK(out == expected);

    std::vector<float> logits_float(logits.begin(), logits.end());
    std::fill(out.begin(), out.end(), -7);
    cpu::argmax_rows(out.data(), logits_float.data(), N, V, Vp);
    CHECK(out == expected);

    // V = 1: always 0
    std::fill(out.begin(), out.end(), -7);
    cpu::argmax_rows(out.data(), logits.data(), N, 1, Vp);
    CHECK(out == std::vector<int>(N, 0));

    REQUIRE_THROWS_WITH(cpu::argmax_rows(out.data(), logits.data(), N, Vp + 1, Vp), Contains("argmax"));
    REQUIRE_THROWS_WITH(cpu::argmax_rows(out.data(), logits.data(), N, 0, Vp), Contains("argmax"));
}

TEST_CASE("decode kernels: dropout mask keeps a fraction 1-p, scaled by 1/(1-p)", "[decode][dropout]") {
    const size_t count = 100000;
    for (float p : {0.05f, 0.1f, 0.3f, 0.5f, 0.9f}) {
        INFO("p=" << p);
        std::vector<double> mask(count, -1.0);
        cpu::dropout_mask(mask.data(), count, 1234, p);
        const double keep_value = 1.0 / (1.0 - double(p));
        size_t kept = 0;
        bool values_ok = true;
        for (double m : mask) {
            kept += m != 0.0;
            values_ok &= m == 0.0 || m == keep_value;
        }
        CHECK(values_ok);
        CHECK(std::abs(double(kept) / count - (1.0 - p)) < 0.01);

        // float and double keep the same elements
        std::vector<float> mask_float(count, -1.0f);
        cpu::dropout_mask(mask_float.data(), count, 1234, p);
        bool same_elements = true;
        for (size_t i = 0; i < count; i++) same_elements &= (mask[i] != 0.0) == (mask_float[i] != 0.0f);
        CHECK(same_elements);
    }
}

TEST_CASE("decode kernels: dropout mask is a function of the seed; p = 0 keeps everything", "[decode][dropout]") {
    const size_t count = 100000;
    std::vector<float> a(count), b(count), c(count);
    cpu::dropout_mask(a.data(), count, 42, 0.1f);
    cpu::dropout_mask(b.data(), count, 42, 0.1f);
    cpu::dropout_mask(c.data(), count, 43, 0.1f);
    CHECK(bit_identical(a, b));
    size_t differing = 0;
    for (size_t i = 0; i < count; i++) differing += a[i] != c[i];
    // two independent masks with p = 0.1 differ at about 2 p (1 - p) = 18% of the elements
    CHECK(differing > count / 10);
    CHECK(differing < count / 4);

    // a prefix of a longer mask is the shorter mask: element i depends only on (seed, i)
    std::vector<float> prefix(1000);
    cpu::dropout_mask(prefix.data(), prefix.size(), 42, 0.1f);
    CHECK(std::equal(prefix.begin(), prefix.end(), a.begin()));

    cpu::dropout_mask(a.data(), count, 42, 0.0f);
    CHECK(std::all_of(a.begin(), a.end(), [](float m) { return m == 1.0f; }));

    for (float p : {1.0f, -0.1f, 1.5f, std::numeric_limits<float>::quiet_NaN()})
        REQUIRE_THROWS_WITH(cpu::dropout_mask(a.data(), count, 42, p), Contains("dropout: probability"));
}

// ---------------------------------------------------------------------------------------------------------
// CUDA against the CPU reference

GPU_TEST_CASE("cuda kernels: attention step matches the CPU reference", "[kv_attention]") {
    // hs = 16 and 64 (GPT-2's), B = 1 and 5; hs = 300 (more channels than threads); a position past the default
    // 48 KiB of shared memory
    const StepShape shapes[] = {{1, 64, 4, 37},    {5, 64, 4, 1024}, {5, 768, 12, 1024}, {1, 128, 2, 9},
                                {2, 600, 2, 40},   {1, 32, 2, 20000}};
    uint64_t seed = 100;
    for (const StepShape& s : shapes) {
        const size_t C = s.C, cache_size = size_t(s.B) * s.max_T * C;
        for (int position : {0, 1, s.max_T / 2, s.max_T - 1}) {
            if (position >= s.max_T) continue;
            INFO("B=" << s.B << " C=" << s.C << " NH=" << s.NH << " max_T=" << s.max_T << " position=" << position);
            // the caches as earlier steps left them: random values in rows < position (and elsewhere)
            std::vector<float> qkv = random_vector<float>(size_t(s.B) * 3 * C, seed++, -2, 2);
            std::vector<float> key_cache = random_vector<float>(cache_size, seed++, -2, 2);
            std::vector<float> value_cache = random_vector<float>(cache_size, seed++, -2, 2);
            DeviceBuffer<float> d_qkv(qkv), d_keys(key_cache), d_values(value_cache), d_out(size_t(s.B) * C);
            std::vector<float> out(size_t(s.B) * C);
            cpu::attention_step_forward(out.data(), key_cache.data(), value_cache.data(), qkv.data(), position, s.B,
                                        s.C, s.NH, s.max_T);

            d_out.poison();
            cuda::attention_step_forward(d_out.data, d_keys.data, d_values.data, d_qkv.data, position, s.B, s.C,
                                         s.NH, s.max_T);
            std::vector<float> gpu_out = d_out.download();
            CHECK(relative_error(gpu_out, out) < FP32_TOLERANCE);
            CHECK(bit_identical(d_keys.download(), key_cache));
            CHECK(bit_identical(d_values.download(), value_cache));

            // deterministic: a second run gives the same bits
            d_out.poison();
            cuda::attention_step_forward(d_out.data, d_keys.data, d_values.data, d_qkv.data, position, s.B, s.C,
                                         s.NH, s.max_T);
            CHECK(bit_identical(d_out.download(), gpu_out));
        }
    }
}

GPU_TEST_CASE("cuda kernels: attention steps over a sequence match the full causal attention", "[kv_attention]") {
    const int B = 3, T = 50, C = 96, NH = 6, max_T = 64;
    std::vector<float> qkv = random_vector<float>(size_t(B) * T * 3 * C, 200, -2, 2);
    std::vector<float> full(size_t(B) * T * C), att(size_t(B) * NH * T * T);
    cpu::attention_forward(full.data(), att.data(), qkv.data(), B, T, C, NH);

    DeviceBuffer<float> d_keys(size_t(B) * max_T * C), d_values(size_t(B) * max_T * C), d_out(size_t(B) * C);
    d_keys.poison();  // rows the steps have not written yet must never be read
    d_values.poison();
    std::vector<float> gpu(full.size()), row(size_t(B) * 3 * C);
    DeviceBuffer<float> d_row(row.size());
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++)
            std::copy_n(qkv.begin() + (size_t(b) * T + t) * 3 * C, 3 * C, row.begin() + size_t(b) * 3 * C);
        d_row.upload(row);
        d_out.poison();
        cuda::attention_step_forward(d_out.data, d_keys.data, d_values.data, d_row.data, t, B, C, NH, max_T);
        std::vector<float> out = d_out.download();
        for (int b = 0; b < B; b++)
            std::copy_n(out.begin() + size_t(b) * C, C, gpu.begin() + (size_t(b) * T + t) * C);
    }
    CHECK(relative_error(gpu, full) < FP32_TOLERANCE);
}

GPU_TEST_CASE("cuda kernels: attention step fails for a position outside the cache", "[kv_attention]") {
    DeviceBuffer<float> qkv(3 * 8), keys(4 * 8), values(4 * 8), out(8);
    for (int position : {-1, 4})
        REQUIRE_THROWS_WITH(cuda::attention_step_forward(out.data, keys.data, values.data, qkv.data, position, 1, 8, 2,
                                                         4),
                            Contains("position " + std::to_string(position)));
}

GPU_TEST_CASE("cuda kernels: argmax matches the CPU reference", "[argmax]") {
    const struct {
        int N, V, Vp;
    } shapes[] = {{7, 50257, 50304}, {3, 5, 8}, {4, 1, 1}, {6, 1000, 1024}, {2, 2049, 2049}};
    uint64_t seed = 300;
    for (const auto& s : shapes) {
        INFO("N=" << s.N << " V=" << s.V << " Vp=" << s.Vp);
        std::vector<float> logits = random_vector<float>(size_t(s.N) * s.Vp, seed++, -4, 4);
        for (int i = 0; i < s.N; i++) {
            float* z = logits.data() + size_t(i) * s.Vp;
            for (int v = s.V; v < s.Vp; v++) z[v] = 100.0f;  // larger padding: must be ignored
            // ties at the maximum: in row i the maximum appears at a few spread-out columns
            if (i % 2 == 1) {
                const float top = *std::max_element(z, z + s.V) + 1.0f;
                for (int v : {s.V - 1, s.V / 2, s.V / 3 + 1, s.V / 7}) z[std::min(v, s.V - 1)] = top;
            }
        }
        std::vector<int> expected(s.N);
        cpu::argmax_rows(expected.data(), logits.data(), s.N, s.V, s.Vp);

        DeviceBuffer<float> d_logits(logits);
        DeviceBuffer<int> d_out(s.N);
        d_out.poison();
        cuda::argmax_rows(d_out.data, d_logits.data, s.N, s.V, s.Vp);
        CHECK(d_out.download() == expected);
    }

    // all equal (and all -inf): index 0
    std::vector<float> flat(3 * 1024, 2.5f);
    std::fill(flat.begin() + 2048, flat.end(), -INFINITY);
    DeviceBuffer<float> d_flat(flat);
    DeviceBuffer<int> d_out(3);
    d_out.poison();
    cuda::argmax_rows(d_out.data, d_flat.data, 3, 1000, 1024);
    CHECK(d_out.download() == std::vector<int>{0, 0, 0});
}

GPU_TEST_CASE("cuda kernels: dropout mask is bit-identical to the CPU's", "[dropout]") {
    for (size_t count : {size_t(1), size_t(1000), size_t(100003), size_t(3) * 1024 * 768 + 5})
        for (float p : {0.0f, 0.05f, 0.1f, 0.5f, 0.95f})
            for (uint64_t seed : {uint64_t(0), uint64_t(42), uint64_t(0xFFFFFFFFFFFFFFFFULL)}) {
                INFO("count=" << count << " p=" << p << " seed=" << seed);
                std::vector<float> mask(count);
                cpu::dropout_mask(mask.data(), count, seed, p);
                DeviceBuffer<float> d_mask(count);
                d_mask.poison();
                cuda::dropout_mask(d_mask.data, count, seed, p);
                CHECK(bit_identical(d_mask.download(), mask));
            }
    DeviceBuffer<float> d_mask(4);
    REQUIRE_THROWS_WITH(cuda::dropout_mask(d_mask.data, 4, 1, 1.0f), Contains("dropout: probability"));
}
