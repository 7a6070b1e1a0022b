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
#include "test/lora_training_steps.h"

GPU_TEST_CASE("cuda model: LoRA training steps on a frozen base give the CPU's losses and adapters") {
    const GPT2Config config = lora_test_config();
    const std::vector<float> base = gpt2_random_parameters(config, 7);
    auto [cpu_losses, cpu_adapters] = train_adapters<CpuBackend<float>>(config, base);
    auto [gpu_losses, gpu_adapters] = train_adapters<CudaBackend>(config, base);
    for (size_t i = 0; i < cpu_losses.size(); i++) CHECK(std::abs(gpu_losses[i] - cpu_losses[i]) < 1e-4 * cpu_losses[i]);
    CHECK(relative_error(gpu_adapters, cpu_adapters) < 1e-4);
}

GPU_TEST_CASE("cuda model: LoRA training steps with bf16 products stay within the bf16 tolerance of the CPU") {
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

GPU_TEST_CASE("cuda model: greedy decoding with the KV cache gives the CPU's tokens") {
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

GPU_TEST_CASE("cuda model: train cl on the GPU matches the CPU run on the synthetic benchmark") {
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
