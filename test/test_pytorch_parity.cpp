// Parity with PyTorch on the committed fixture (dev/pytorch_reference.py): logits, loss and gradients
// through `verify`, the losses of 10 AdamW steps, and a masked loss.
#include <fstream>
#include <map>
#include <sstream>

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
