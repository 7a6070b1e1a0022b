// A frozen base stored in bf16 (GPT2::bf16_base, model/bf16.h): the rounding; the bf16 copy of the parameters and
// which matrix each product reads from it; LoRA training on it against fp32 storage (the CPU backend's emulation);
// and on a GPU, the CUDA path against that emulation (skipped without one).
#include <cmath>
#include <limits>

#include "model/backend_cpu.h"
#include "model/cpu/matmul.h"
#include "model/backend_cuda.h"
#include "model/bf16.h"
#include "model/initialisation.h"
#include "test/cuda_test_support.h"
#include "test/lora_training_steps.h"

namespace {

// Values that exercise the rounding: random ones over many binades, exact bf16 values, and the ties between them.
std::vector<float> rounding_cases() {
    std::vector<float> values = random_vector<float>(4096, 21, -4.0, 4.0);
    for (float& v : random_vector<float>(4096, 22, -30.0, 30.0)) values.push_back(std::ldexp(1.0f, int(v)) * 1.37f);
    for (int mantissa = 0; mantissa < 128; mantissa++) {
        const float exact = 1.0f + mantissa * 0x1p-7f;
        values.push_back(exact);
        values.push_back(-(exact + 0x1p-8f));  // halfway to the next bf16
    }
    values.push_back(0.0f);
    values.push_back(-0.0f);
    values.push_back(std::numeric_limits<float>::infinity());
    values.push_back(std::numeric_limits<float>::denorm_min());
    return values;
}

}  // namespace

TEST_CASE("bf16: rounding to nearest even, exact widening, NaN kept") {
    CHECK(float_to_bf16(1.0f) == 0x3F80);
    CHECK(float_to_bf16(-2.0f) == 0xC000);
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the tie goes to the even mantissa; 1 + 3 * 2^-8 goes up
    CHECK(float_to_bf16(1.0f + 0x1p-8f) == 0x3F80);
    CHECK(float_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82);
    CHECK(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81);  // past halfway: up
    CHECK(float_to_bf16(1.0f + 0x1p-8f - 0x1p-20f) == 0x3F80);  // short of it: down
    CHECK(bf16_to_float(0x3F81) == 1.0f + 0x1p-7f);
    CHECK(std::isnan(round_to_bf16(std::nanf(""))));
    CHECK(round_to_bf16(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());
    for (uint32_t bits = 0; bits < 65536; bits++) {  // every bf16 but NaN widens and rounds back to itself
        const float wide = bf16_to_float(bf16_bits(bits));
        if (!std::isnan(wide)) REQUIRE(float_to_bf16(wide) == bits);
    }
}

TEST_CASE("bf16 base: the copy holds every parameter rounded; each product reads its own matrix and rounded input") {
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 11);
    GPT2<CpuBackend<float>> model(config, base.data());
    model.bf16_base = true;
    const int N = 5, C = config.channels;
    const std::vector<float> inp = random_vector<float>(size_t(N) * C, 12);
    std::vector<float> out(size_t(N) * 4 * C);
    const float* fc1 = model.params.fcw + size_t(4) * C * C;  // layer 1's fc matrix (4C, C)
    CHECK_THROWS_WITH(model.base_matmul_forward(out.data(), inp.data(), fc1, nullptr, N, C, 4 * C),
                      Catch::Contains("frozen base only"));
    model.frozen_base = true;
    model.base_matmul_forward(out.data(), inp.data(), fc1, model.params.fcb + 4 * C, N, C, 4 * C);
    for (size_t i = 0; i < base.size(); i++) REQUIRE(model.parameters_bf16[i] == float_to_bf16(base[i]));

    // the reference, from the checkpoint layout: fcw is tensor 10, layer 1 starts 4C*C into it
    const auto sizes = parameter_sizes(config);
    size_t fcw = 0, fcb = 0;
    for (int t = 0; t < 10; t++) fcw += sizes[t];
    fcb = fcw + sizes[10];
    std::vector<float> rounded_inp(inp.size()), rounded_weight(size_t(4) * C * C), expected(out.size());
    for (size_t i = 0; i < inp.size(); i++) rounded_inp[i] = round_to_bf16(inp[i]);
    for (size_t i = 0; i < rounded_weight.size(); i++) rounded_weight[i] = round_to_bf16(base[fcw + 4 * C * C + i]);
    cpu::matmul_forward(expected.data(), rounded_inp.data(), rounded_weight.data(), base.data() + fcb + 4 * C, N, C,
                        4 * C);
    CHECK(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)) == 0);
    std::vector<float> fp32(out.size());
    cpu::matmul_forward(fp32.data(), inp.data(), base.data() + fcw + 4 * C * C, base.data() + fcb + 4 * C, N, C, 4 * C);
    CHECK(relative_error(out, fp32) > 1e-4);  // rounded: not the fp32 product
    CHECK(relative_error(out, fp32) < 1e-2);

    CHECK_THROWS_WITH(model.base_matmul_forward(out.data(), inp.data(), inp.data(), nullptr, N, C, 4 * C),
                      Catch::Contains("not one of the model's parameters"));
}

TEST_CASE("bf16 base: LoRA training on a base stored in bf16 stays within the bf16 tolerance of fp32 storage") {
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 7);
    auto [fp32_losses, fp32_adapters] = train_adapters<CpuBackend<float>>(config, base);
    auto [bf16_losses, bf16_adapters] = train_adapters<CpuBackend<float>>(config, base, true);
    for (size_t i = 0; i < fp32_losses.size(); i++) {
        INFO("step " << i + 1 << ": " << bf16_losses[i] << " against " << fp32_losses[i]);
        CHECK(std::abs(bf16_losses[i] - fp32_losses[i]) < 1e-2 * fp32_losses[i]);
        CHECK(bf16_losses[i] != fp32_losses[i]);  // the base's products did read rounded operands
    }
    CHECK(bf16_losses.back() < bf16_losses.front());  // and the adapters learned
    const double error = relative_error(bf16_adapters, fp32_adapters);
    INFO("adapters' relative error " << error);
    CHECK(error < 1e-2);
}

GPU_TEST_CASE("cuda kernels: to_bf16 rounds as the CPU, bit for bit; the bf16 product matches the CPU's emulation",
              "[matmul]") {
    const std::vector<float> values = rounding_cases();
    DeviceBuffer<float> d_values(values);
    DeviceBuffer<bf16_bits> d_rounded(values.size());
    d_rounded.poison();
    cuda::to_bf16(d_rounded.data, d_values.data, values.size());
    const std::vector<bf16_bits> rounded = d_rounded.download();
    for (size_t i = 0; i < values.size(); i++) {
        INFO("value " << values[i]);
        REQUIRE(rounded[i] == float_to_bf16(values[i]));
    }

    const int N = 96, C = 768, OC = 2304;  // qkv's shape
    auto rounded_random = [](size_t count, uint64_t seed) {
        std::vector<bf16_bits> x(count);
        const std::vector<float> values = random_vector<float>(count, seed);
        for (size_t i = 0; i < count; i++) x[i] = float_to_bf16(values[i]);
        return x;
    };
    const std::vector<bf16_bits> inp = rounded_random(size_t(N) * C, 30), weight = rounded_random(size_t(OC) * C, 31);
    const std::vector<float> bias = random_vector<float>(OC, 32);
    std::vector<float> expected(size_t(N) * OC);
    CpuBackend<float>::matmul_forward_bf16(expected.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
    DeviceBuffer<bf16_bits> d_inp(inp), d_weight(weight);
    DeviceBuffer<float> d_bias(bias), d_out(expected.size());
    d_out.poison();
    cuda::matmul_forward_bf16(d_out.data, d_inp.data, d_weight.data, d_bias.data, N, C, OC);
    const double error = relative_error(d_out.download(), expected);
    INFO("relative error " << error);
    CHECK(error < 1e-4);  // the same operands: only the fp32 accumulation order differs
}

GPU_TEST_CASE("cuda model: LoRA training on a base stored in bf16 matches the CPU's emulation within the bf16"
              " tolerance") {
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 7);
    auto [cpu_losses, cpu_adapters] = train_adapters<CpuBackend<float>>(config, base, true);
    MatmulPrecisionScope bf16(MatmulPrecision::bf16);  // as `train cl` on CUDA
    auto [fp32_storage_losses, fp32_storage_adapters] = train_adapters<CudaBackend>(config, base);
    auto [gpu_losses, gpu_adapters] = train_adapters<CudaBackend>(config, base, true);
    for (size_t i = 0; i < cpu_losses.size(); i++)
        CHECK(std::abs(gpu_losses[i] - cpu_losses[i]) < BF16_TOLERANCE * cpu_losses[i]);
    CHECK(relative_error(gpu_adapters, cpu_adapters) < BF16_TOLERANCE);
    CHECK(gpu_adapters != fp32_storage_adapters);  // the bf16 copy did run: not the fp32-storage path
}
