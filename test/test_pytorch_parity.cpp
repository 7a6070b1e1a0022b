// Parity with PyTorch on the committed fixtures: logits, loss and gradients through `verify`, the losses of 10 AdamW
// steps, and a masked loss (dev/pytorch_reference.py); and LoRA adapters on every linear of the frozen base against
// Hugging Face PEFT's (dev/peft_reference.py).
#include <fstream>
#include <map>
#include <sstream>

#include "lora/adapters.h"
#include "model/backend_cpu.h"
#include "model/checkpoint.h"
#include "model/debug_state.h"
#include "model/gpt2.h"
#include "model/verify.h"
#include "test/test_support.h"

namespace {
const std::string MODEL = "test/fixtures/gpt2_tiny.bin";
const std::string STATE = "test/fixtures/gpt2_tiny_state.bin";
const std::string TRAINING = "test/fixtures/gpt2_tiny_training.txt";
const std::string PEFT_LORA = "test/fixtures/peft_lora.txt";

// "key v1 v2 ..." lines
std::map<std::string, std::vector<double>> read_key_values(const std::string& path) {
    std::ifstream file(path);
    REQUIRE(file.good());
    std::map<std::string, std::vector<double>> values;
    std::string line;
    while (std::getline(file, line)) {
        std::istringstream in(line);
        std::string key;
        if (!(in >> key)) continue;
        double value;
        while (in >> value) values[key].push_back(value);
    }
    return values;
}
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
    LoraConfig lora;
    lora.modules = parse_lora_modules("all");
    lora.rank = int(values.at("rank")[0]);
    lora.alpha = float(values.at("alpha")[0]);
    lora.dropout = 0.0f;
    GPT2<CpuBackend<float>> model(checkpoint.config, checkpoint.parameters.data());
    LoraAdapters<CpuBackend<float>> adapters(checkpoint.config, lora);
    lora_add_branch(adapters, 1);
    // PEFT's lora_A (r, in) is clora's A; its lora_B (out, r) is clora's Bt (r, out) transposed
    const int r = lora.rank;
    auto tensor = [&](const std::string& kind, const LoraSlot& s) {
        const std::vector<double>& v = values.at(kind + "." + std::to_string(s.layer) + "." + lora_module_name(s.module));
        REQUIRE(v.size() == size_t(r) * (kind.back() == 'A' ? s.shape.in : s.shape.out));
        return v;
    };
    std::vector<float> parameters(adapters.num_parameters);
    for (const LoraSlot& s : adapters.slots) {
        const std::vector<double> A = tensor("A", s), B = tensor("B", s);
        for (size_t i = 0; i < A.size(); i++) parameters[s.A + i] = float(A[i]);
        for (int o = 0; o < s.shape.out; o++)
            for (int k = 0; k < r; k++) parameters[s.Bt + size_t(k) * s.shape.out + o] = float(B[size_t(o) * r + k]);
    }
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
