// The whole model on the CPU backend: gradient check in double precision on a tiny odd-sized config,
// loss weights, bad input.
#include "model/backend_cpu.h"
#include "model/gpt2.h"
#include "model/initialisation.h"
#include "test/small_model.h"
#include "test/gradient_check.h"

namespace {
// L=2, C=36, NH=4, V=67 (Vp=128), maxT=9: odd sizes so that no shape lines up by accident.
GPT2Config tiny_config() { return test_config(2, 36, 4, 67, 9); }

// Random parameters large enough that every path carries a real gradient.
std::vector<float> lively_parameters(const GPT2Config& c, uint64_t seed) {
    std::vector<float> values = gpt2_random_parameters(c, seed);
    std::vector<float> noise = random_vector<float>(values.size(), seed + 1, -0.15, 0.15);
    size_t padded_start = size_t(c.vocab_size) * c.channels, padded_end = size_t(c.padded_vocab_size) * c.channels;
    for (size_t i = 0; i < values.size(); i++)
        if (i < padded_start || i >= padded_end) values[i] += noise[i];
    return values;
}
}  // namespace

TEST_CASE("model: whole-model gradient matches finite differences in double precision") {
    const GPT2Config config = tiny_config();
    const int B = 2, T = 7;
    std::vector<float> initial = lively_parameters(config, 42);
    GPT2<CpuBackend<double>> model(config, initial.data());
    std::vector<int> inputs = {5, 66, 0, 13, 13, 40, 2, 61, 7, 7, 30, 1, 65, 12};
    std::vector<int> targets = {66, 0, 13, 13, 40, 2, 9, 7, 7, 30, 1, 65, 12, 4};
    std::vector<float> weights = {0, 0, 1, 1, 1, 1, 1, 0, 1, 2, 1, 0.5f, 1, 1};  // prompt positions weigh 0

    gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
    gpt2_zero_grad(model);
    gpt2_backward(model);
    std::vector<double> analytic(model.gradients_memory, model.gradients_memory + model.num_parameters);

    std::vector<double> parameters(model.parameters_memory, model.parameters_memory + model.num_parameters);
    auto loss = [&] {
        std::copy(parameters.begin(), parameters.end(), model.parameters_memory);
        gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
        return double(model.mean_loss);
    };
    // mean_loss is a float: use the double per-position losses for a precise objective
    auto precise_loss = [&] {
        loss();
        double total = 0, weight_sum = 0;
        for (int i = 0; i < B * T; i++) total += weights[i] * model.acts.losses[i], weight_sum += weights[i];
        return total / weight_sum;
    };
    std::vector<double> numeric = numerical_gradient(parameters, precise_loss);

    auto sizes = parameter_sizes(config);
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        double error = relative_error(analytic.data() + offset, numeric.data() + offset, sizes[i]);
        INFO("tensor " << PARAMETER_NAMES[i] << " relative error " << error);
        CHECK(error < GRADIENT_TOLERANCE);
        offset += sizes[i];
    }
    // padded vocabulary rows never receive gradient
    for (size_t i = size_t(config.vocab_size) * config.channels; i < sizes[0]; i++) REQUIRE(analytic[i] == 0);
}

TEST_CASE("model: loss weights select positions, zero weights drop them") {
    const GPT2Config config = tiny_config();
    const int B = 1, T = 6;
    std::vector<float> initial = lively_parameters(config, 7);
    GPT2<CpuBackend<float>> model(config, initial.data());
    std::vector<int> inputs = {1, 2, 3, 4, 5, 6}, targets = {2, 3, 4, 5, 6, 7};
    gpt2_forward(model, inputs.data(), targets.data(), nullptr, B, T);
    std::vector<float> losses(model.acts.losses, model.acts.losses + T);
    double all = 0;
    for (float l : losses) all += l;
    CHECK(std::abs(model.mean_loss - all / T) < 1e-5);

    std::vector<float> answer_only = {0, 0, 0, 1, 1, 1};
    gpt2_forward(model, inputs.data(), targets.data(), answer_only.data(), B, T);
    CHECK(std::abs(model.mean_loss - (losses[3] + losses[4] + losses[5]) / 3) < 1e-5);

    std::vector<float> negative = {1, 1, -1, 1, 1, 1};
    CHECK_THROWS_WITH(gpt2_forward(model, inputs.data(), targets.data(), negative.data(), B, T),
                      Catch::Contains("loss weight -1") && Catch::Contains("position 2"));
}

TEST_CASE("model: token ids out of range and oversized batches are rejected") {
    const GPT2Config config = tiny_config();
    std::vector<float> initial = gpt2_random_parameters(config, 1);
    GPT2<CpuBackend<float>> model(config, initial.data());
    std::vector<int> good = {1, 2, 3}, bad = {1, 67, 3};
    CHECK_THROWS_WITH(gpt2_forward(model, bad.data(), nullptr, nullptr, 1, 3),
                      Catch::Contains("token id 67") && Catch::Contains("vocabulary size 67"));
    CHECK_THROWS_WITH(gpt2_forward(model, good.data(), bad.data(), nullptr, 1, 3), Catch::Contains("targets"));
    std::vector<int> long_input(10, 1);
    CHECK_THROWS_WITH(gpt2_forward(model, long_input.data(), nullptr, nullptr, 1, 10),
                      Catch::Contains("max_seq_len 9"));
}

TEST_CASE("model: clipping scales the update to the clip norm, weight decay only on matrices") {
    const GPT2Config config = tiny_config();
    std::vector<float> initial = lively_parameters(config, 3);
    GPT2<CpuBackend<double>> model(config, initial.data());
    gpt2_zero_grad(model);
    // zero gradients: an AdamW step then changes only what weight decay touches
    AdamWSettings settings;
    settings.learning_rate = 0.1f, settings.weight_decay = 0.5f;
    gpt2_update(model, settings, 1);
    std::vector<float> after = model.parameters_to_host();
    auto sizes = parameter_sizes(config);
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        double expected_factor = parameter_is_matrix(i) ? 1 - 0.1 * 0.5 : 1.0;
        INFO("tensor " << PARAMETER_NAMES[i]);
        for (size_t k = offset; k < offset + sizes[i]; k++) REQUIRE(std::abs(after[k] - initial[k] * expected_factor) < 1e-6);
        offset += sizes[i];
    }
    // a gradient of norm 10 clipped to 1: the norm is reported before clipping
    for (size_t k = 0; k < model.num_parameters; k++) model.gradients_memory[k] = 0;
    model.gradients_memory[0] = 6, model.gradients_memory[1] = 8;
    CHECK(std::abs(gpt2_update(model, settings, 2) - 10.0) < 1e-9);
}
