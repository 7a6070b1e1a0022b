// GPU tests of LoRA fine-tuning on a frozen base, end to end on the CUDA backend against the CPU reference:
// adapter training steps (dropout on, several branches) give the CPU's losses and adapters, and greedy decoding
// with the KV cache gives the CPU's tokens. Without a GPU every test here reports itself as skipped.
#include "lora/continual.h"
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "model/generate.h"
#include "model/initialisation.h"
#include "test/cl_test_support.h"
#include "test/cuda_test_support.h"

namespace {

GPT2Config lora_test_config() {
    GPT2Config c;
    c.max_seq_len = 24, c.vocab_size = 67, c.padded_vocab_size = padded_vocab(67);
    c.num_layers = 2, c.num_heads = 4, c.channels = 36;
    return c;
}

// Five AdamW steps of the newest of two branches on every module; returns the losses and the final adapters.
template <class Backend>
std::pair<std::vector<float>, std::vector<float>> train_adapters(const GPT2Config& config,
                                                                 const std::vector<float>& base) {
    GPT2<Backend> model(config, base.data());
    LoraConfig lora;
    lora.modules = parse_lora_modules("all");
    lora.rank = 4;
    LoraAdapters<Backend> adapters(config, lora);
    lora_add_branch(adapters, 1);
    lora_add_branch(adapters, 2);  // branch 0 frozen
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 3, -0.2, 0.2));
    model.lora = &adapters;
    model.frozen_base = true;
    const int B = 3, T = 20;
    std::vector<int> inputs(B * T), targets(B * T);
    for (int i = 0; i < B * T; i++) inputs[i] = (i * 29 + 3) % 67, targets[i] = (i * 31 + 5) % 67;
    std::vector<float> weights(B * T, 1.0f);
    for (int t = 0; t < 6; t++) weights[t] = 0.0f;
    AdamWSettings settings;
    settings.learning_rate = 1e-2f;
    std::vector<float> losses;
    for (int step = 1; step <= 5; step++) {
        adapters.training = true;
        adapters.dropout_seed = 100 + step;
        gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
        losses.push_back(model.mean_loss);
        lora_zero_grad(adapters);
        gpt2_backward(model);
        lora_update(adapters, settings, step, 1.0f);
    }
    return {losses, adapters.parameters_to_host()};
}

}  // namespace

TEST_CASE("cuda model: LoRA training steps on a frozen base give the CPU's losses and adapters") {
    REQUIRE_GPU_OR_SKIP();
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 7);
    auto [cpu_losses, cpu_adapters] = train_adapters<CpuBackend<float>>(config, base);
    auto [gpu_losses, gpu_adapters] = train_adapters<CudaBackend>(config, base);
    for (size_t i = 0; i < cpu_losses.size(); i++) CHECK(std::abs(gpu_losses[i] - cpu_losses[i]) < 1e-4 * cpu_losses[i]);
    CHECK(relative_error(gpu_adapters, cpu_adapters) < 1e-4);
}

TEST_CASE("cuda model: LoRA training steps with bf16 products stay within the bf16 tolerance of the CPU") {
    REQUIRE_GPU_OR_SKIP();
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 7);
    auto [cpu_losses, cpu_adapters] = train_adapters<CpuBackend<float>>(config, base);
    auto [fp32_losses, fp32_adapters] = train_adapters<CudaBackend>(config, base);
    MatmulPrecisionScope bf16(MatmulPrecision::bf16);
    auto [gpu_losses, gpu_adapters] = train_adapters<CudaBackend>(config, base);
    for (size_t i = 0; i < cpu_losses.size(); i++)
        CHECK(std::abs(gpu_losses[i] - cpu_losses[i]) < BF16_TOLERANCE * cpu_losses[i]);
    CHECK(relative_error(gpu_adapters, cpu_adapters) < BF16_TOLERANCE);
    CHECK(gpu_adapters != fp32_adapters);  // the bf16 products did run: not the fp32 path
}

TEST_CASE("cuda model: greedy decoding with the KV cache gives the CPU's tokens") {
    REQUIRE_GPU_OR_SKIP();
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 8);
    LoraConfig lora;
    lora.modules = parse_lora_modules("qkv,fc");
    const std::vector<float> adapter_values = [&] {
        LoraAdapters<CpuBackend<float>> shape(config, lora);
        lora_add_branch(shape, 1);
        return random_vector<float>(shape.num_parameters, 9, -0.5, 0.5);
    }();
    const std::vector<std::vector<int>> prompts = {{1, 2, 3}, {60}, {5, 9, 9, 9, 40, 2, 7}, {33, 34}};
    GenerationSettings settings;
    settings.max_new_tokens = 8;
    settings.batch_size = 3;
    settings.stops.assign(config.vocab_size, false);
    auto generate = [&](auto backend_tag) {
        using Backend = decltype(backend_tag);
        GPT2<Backend> model(config, base.data());
        LoraAdapters<Backend> adapters(config, lora);
        lora_add_branch(adapters, 1);
        adapters.parameters_from_host(adapter_values);
        model.lora = &adapters;
        return greedy_generate(model, prompts, settings, [](auto&) {});
    };
    CHECK(generate(CudaBackend{}) == generate(CpuBackend<float>{}));
}

TEST_CASE("cuda model: train cl on the GPU matches the CPU run on the synthetic benchmark") {
    REQUIRE_GPU_OR_SKIP();
    ContinualOptions o = synthetic_options("cuda_cl_cpu", {"inclora"});
    o.epochs = 2;
    MethodResult cpu = run_continual(o)[0];
    o.device = "cuda";
    o.out_dir = make_temp_dir("cuda_cl_gpu");
    MethodResult gpu = run_continual(o)[0];
    CHECK(relative_error(gpu.final_adapters, cpu.final_adapters) < 1e-3);
    for (size_t j = 0; j < cpu.accuracy.size(); j++)
        for (size_t i = 0; i < cpu.accuracy[j].size(); i++) CHECK(std::abs(gpu.accuracy[j][i] - cpu.accuracy[j][i]) <= 3.0);
}
