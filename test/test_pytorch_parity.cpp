// Parity with PyTorch on the committed fixtures: logits, loss and gradients through `verify`, the losses of 10 AdamW
// steps, and a masked loss (dev/pytorch_reference.py); and LoRA adapters on every linear of the frozen base against
// Hugging Face PEFT's (dev/peft_reference.py).
#include "model/lora_adapters.h"
#include "model/backend_cpu.h"
#include "model/checkpoint.h"
#include "model/debug_state.h"
#include "model/gpt2.h"
#include "model/verify.h"
#include "test/peft_fixture.h"
#include "test/test_support.h"

namespace {
const std::string MODEL = "test/fixtures/gpt2_tiny.bin";
const std::string STATE = "test/fixtures/gpt2_tiny_state.bin";
const std::string TRAINING = "test/fixtures/gpt2_tiny_training.txt";
}  // namespace

TEST_CASE("pytorch parity: verify matches logits, loss and all 16 gradients within 1e-4") {
    VerifyReport report = run_verify(MODEL, STATE, "cpu", 1e-4);
    REQUIRE(report.rows.size() == 2 + NUM_PARAMETER_TENSORS);
    for (const VerifyRow& row : report.rows) {
        INFO(row.name << " relative error " << row.relative_error);
        CHECK(row.ok);
    }
}

TEST_CASE("pytorch parity: 10 AdamW steps give PyTorch's losses") {
    Checkpoint checkpoint = read_checkpoint(MODEL);
    DebugState state = read_debug_state(STATE, checkpoint.config);
    auto settings_file = read_key_values(TRAINING);
    AdamWSettings settings;
    settings.learning_rate = float(settings_file.at("learning_rate")[0]);
    settings.beta1 = float(settings_file.at("beta1")[0]);
    settings.beta2 = float(settings_file.at("beta2")[0]);
    settings.eps = float(settings_file.at("eps")[0]);
    settings.weight_decay = float(settings_file.at("weight_decay")[0]);
    settings.grad_clip = float(settings_file.at("grad_clip")[0]);
    const std::vector<double>& expected = settings_file.at("losses");
    REQUIRE(expected.size() == 10);

    GPT2<CpuBackend<float>> model(checkpoint.config, checkpoint.parameters.data());
    for (int step = 0; step < 10; step++) {
        gpt2_forward(model, state.inputs.data(), state.targets.data(), nullptr, state.batch_size, state.seq_len);
        INFO("step " << step << ": ours " << model.mean_loss << ", PyTorch " << expected[step]);
        CHECK(std::abs(model.mean_loss - expected[step]) / expected[step] < 1e-4);
        gpt2_zero_grad(model);
        gpt2_backward(model);
        gpt2_update(model, settings, step + 1);
    }
    CHECK(expected[9] < expected[0]);  // the fixture itself trains
}

TEST_CASE("pytorch parity: the loss with zero-weighted positions matches PyTorch's masked mean") {
    Checkpoint checkpoint = read_checkpoint(MODEL);
    DebugState state = read_debug_state(STATE, checkpoint.config);
    auto values = read_key_values(TRAINING);
    std::vector<float> weights(values.at("loss_weights").begin(), values.at("loss_weights").end());
    REQUIRE(weights.size() == state.inputs.size());
    GPT2<CpuBackend<float>> model(checkpoint.config, checkpoint.parameters.data());
    gpt2_forward(model, state.inputs.data(), state.targets.data(), weights.data(), state.batch_size, state.seq_len);
    double expected = values.at("masked_loss")[0];
    CHECK(std::abs(model.mean_loss - expected) / expected < 1e-5);
    CHECK(std::abs(expected - state.loss) > 1e-3);  // the mask changes the loss: the check can fail
}

TEST_CASE("pytorch parity: LoRA on every linear of a frozen base gives PEFT's loss and adapter gradients") {
    Checkpoint checkpoint = read_checkpoint(MODEL);
    DebugState state = read_debug_state(STATE, checkpoint.config);
    auto values = read_key_values(PEFT_LORA);
    const LoraConfig lora = peft_fixture_config(values);
    GPT2<CpuBackend<float>> model(checkpoint.config, checkpoint.parameters.data());
    LoraAdapters<CpuBackend<float>> adapters(checkpoint.config, lora);
    lora_add_branch(adapters, 1);
    const int r = lora.rank;
    auto tensor = [&](const std::string& kind, const LoraSlot& s) { return peft_fixture_tensor(values, kind, s, r); };
    const std::vector<float> parameters = peft_fixture_parameters(values, adapters.slots, adapters.num_parameters, r);
    adapters.parameters_from_host(parameters);
    model.lora = &adapters;
    model.frozen_base = true;
    gpt2_forward(model, state.inputs.data(), state.targets.data(), nullptr, state.batch_size, state.seq_len);
    const double expected = values.at("loss")[0];
    INFO("ours " << model.mean_loss << ", PEFT " << expected << ", without the adapters " << values.at("base_loss")[0]);
    CHECK(std::abs(model.mean_loss - expected) / expected < 1e-5);
    CHECK(std::abs(expected - values.at("base_loss")[0]) > 1e-2);  // the adapters change the loss: the check can fail
    lora_zero_grad(adapters);
    gpt2_backward(model);
    for (const LoraSlot& s : adapters.slots) {
        INFO("layer " << s.layer << " " << lora_module_name(s.module));
        const std::vector<double> dA = tensor("dA", s), dB = tensor("dB", s);
        std::vector<double> ours_dBt(dB.size());  // ours, transposed to PEFT's (out, r)
        for (int o = 0; o < s.shape.out; o++)
            for (int k = 0; k < r; k++) ours_dBt[size_t(o) * r + k] = adapters.gradients[s.Bt + size_t(k) * s.shape.out + o];
        CHECK(relative_error(adapters.gradients + s.A, dA.data(), dA.size()) < 1e-4);
        CHECK(relative_error(ours_dBt, dB) < 1e-4);
    }
}
