// GPU tests of the cuBLAS matmul and of the whole model on the CUDA backend against the CPU reference:
// a few training steps give the same losses, and the PyTorch fixture passes `verify` on the GPU.
// Without a GPU every test here reports itself as skipped.
#include "model/backend_cpu.h"
#include "model/cpu/matmul.h"
#include "model/backend_cuda.h"
#include "model/checkpoint.h"
#include "model/debug_state.h"
#include "model/gpt2.h"
#include "model/initialisation.h"
#include "model/verify.h"
#include "test/cuda_test_support.h"

GPU_TEST_CASE("cuda kernels: matmul forward and backward match the CPU reference", "[matmul]") {
    struct Shape {
        int N, C, OC;
    } shapes[] = {{1, 1, 1}, {7, 36, 108}, {33, 771, 67}, {64 * 33, 768, 2304}};
    for (const Shape& s : shapes) {
        INFO("N=" << s.N << " C=" << s.C << " OC=" << s.OC);
        std::vector<float> inp = random_vector<float>(size_t(s.N) * s.C, 1), weight = random_vector<float>(size_t(s.OC) * s.C, 2);
        std::vector<float> bias = random_vector<float>(s.OC, 3), dout = random_vector<float>(size_t(s.N) * s.OC, 4);
        // gradients accumulate: both sides start from the same values
        std::vector<float> dinp = random_vector<float>(inp.size(), 5), dweight = random_vector<float>(weight.size(), 6);
        std::vector<float> dbias = random_vector<float>(bias.size(), 7);

        std::vector<float> out(size_t(s.N) * s.OC);
        cpu::matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), s.N, s.C, s.OC);
        DeviceBuffer<float> d_inp(inp), d_weight(weight), d_bias(bias), d_dout(dout), d_out(out.size());
        d_out.poison();
        cuda::matmul_forward(d_out.data, d_inp.data, d_weight.data, d_bias.data, s.N, s.C, s.OC);
        CHECK(relative_error(d_out.download(), out) < FP32_TOLERANCE);

        DeviceBuffer<float> d_dinp(dinp), d_dweight(dweight), d_dbias(dbias);
        cpu::matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(), s.N, s.C,
                             s.OC);
        cuda::matmul_backward(d_dinp.data, d_dweight.data, d_dbias.data, d_dout.data, d_inp.data, d_weight.data, s.N, s.C,
                              s.OC);
        CHECK(relative_error(d_dinp.download(), dinp) < FP32_TOLERANCE);
        CHECK(relative_error(d_dweight.download(), dweight) < FP32_TOLERANCE);
        CHECK(relative_error(d_dbias.download(), dbias) < FP32_TOLERANCE);

        // frozen weight: only dinp changes
        std::vector<float> before = d_dweight.download();
        cuda::matmul_backward(d_dinp.data, nullptr, nullptr, d_dout.data, d_inp.data, d_weight.data, s.N, s.C, s.OC);
        CHECK(d_dweight.download() == before);
    }
}

GPU_TEST_CASE("cuda model: a few training steps on the GPU give the CPU's losses within 1e-4, whole or chunked"
              " logits") {
    GPT2Config config;
    config.max_seq_len = 32, config.vocab_size = 67, config.padded_vocab_size = padded_vocab(67);
    config.num_layers = 2, config.num_heads = 4, config.channels = 36;
    const int B = 3, T = 29;
    std::vector<float> parameters = gpt2_random_parameters(config, 11);
    std::vector<int> tokens(B * T + 1);
    for (size_t i = 0; i < tokens.size(); i++) tokens[i] = int((i * 37 + i / 5) % 67);
    std::vector<int> inputs(tokens.begin(), tokens.end() - 1), targets(tokens.begin() + 1, tokens.end());
    std::vector<float> weights(B * T, 1.0f);
    for (int t = 0; t < 5; t++) weights[t] = 0.0f;  // a masked prompt

    // the GPU's classifier whole, then in chunks of 20 of the 87 rows (the last one short); the CPU's whole
    for (int chunk : {0, 20}) {
        INFO("GPU logits in chunks of " << chunk << " rows (0: whole)");
        GPT2<CpuBackend<float>> cpu_model(config, parameters.data());
        GPT2<CudaBackend> gpu_model(config, parameters.data());
        gpu_model.logits_chunk_rows = chunk;
        AdamWSettings settings;
        settings.learning_rate = 1e-3f, settings.weight_decay = 0.1f;
        for (int step = 1; step <= 5; step++) {
            gpt2_forward(cpu_model, inputs.data(), targets.data(), weights.data(), B, T);
            gpt2_forward(gpu_model, inputs.data(), targets.data(), weights.data(), B, T);
            INFO("step " << step << " cpu " << cpu_model.mean_loss << " gpu " << gpu_model.mean_loss);
            CHECK(std::abs(gpu_model.mean_loss - cpu_model.mean_loss) / cpu_model.mean_loss < 1e-4);
            gpt2_zero_grad(cpu_model);
            gpt2_zero_grad(gpu_model);
            gpt2_backward(cpu_model);
            gpt2_backward(gpu_model);
            if (step == 1) CHECK(relative_error(gpu_model.gradients_to_host(), cpu_model.gradients_to_host()) < 1e-4);
            gpt2_update(cpu_model, settings, step);
            gpt2_update(gpu_model, settings, step);
        }
        CHECK(relative_error(gpu_model.parameters_to_host(), cpu_model.parameters_to_host()) < 1e-4);
    }
}

GPU_TEST_CASE("cuda model: the same seed gives bit-identical losses on the GPU") {
    GPT2Config config = config_from_spec("2:64:4:256:64");
    std::vector<float> parameters = gpt2_random_parameters(config, 3);
    std::vector<int> inputs(4 * 64), targets(4 * 64);
    for (size_t i = 0; i < inputs.size(); i++) inputs[i] = int(i * 7 % 256), targets[i] = int(i * 11 % 256);
    std::vector<float> runs[2];
    for (auto& losses : runs) {
        GPT2<CudaBackend> model(config, parameters.data());
        for (int step = 1; step <= 3; step++) {
            gpt2_forward(model, inputs.data(), targets.data(), nullptr, 4, 64);
            losses.push_back(model.mean_loss);
            gpt2_zero_grad(model);
            gpt2_backward(model);
            gpt2_update(model, AdamWSettings(), step);
        }
    }
    CHECK(runs[0] == runs[1]);
}

GPU_TEST_CASE("cuda model: the PyTorch fixture passes verify on the GPU") {
    VerifyReport report = run_verify("test/fixtures/gpt2_tiny.bin", "test/fixtures/gpt2_tiny_state.bin", "cuda", 1e-4);
    for (const VerifyRow& row : report.rows) {
        INFO(row.name << " relative error " << row.relative_error);
        CHECK(row.ok);
    }
}
