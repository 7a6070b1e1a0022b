#include "model/initialisation.h"

#include <cmath>

#include "model/parameters.h"
#include "data/random.h"

std::vector<float> gpt2_random_parameters(const GPT2Config& config, uint64_t seed) {
    std::vector<float> values(num_parameters(config), 0.0f);
    auto sizes = parameter_sizes(config);
    ParameterTensors<float> p = carve_parameters(values.data(), config);
    Random random(seed);
    auto fill_normal = [&](float* tensor, size_t count, double std) {
        for (size_t i = 0; i < count; i++) tensor[i] = float(std * random.normal());
    };
    const double residual_std = 0.02 / std::sqrt(2.0 * config.num_layers);
    fill_normal(p.wte, size_t(config.vocab_size) * config.channels, 0.02);  // padded rows stay 0
    fill_normal(p.wpe, sizes[1], 0.02);
    fill_normal(p.qkvw, sizes[4], 0.02);
    fill_normal(p.attprojw, sizes[6], residual_std);
    fill_normal(p.fcw, sizes[10], 0.02);
    fill_normal(p.fcprojw, sizes[12], residual_std);
    for (float* weight : {p.ln1w, p.ln2w})
        for (size_t i = 0; i < sizes[2]; i++) weight[i] = 1.0f;
    for (size_t i = 0; i < sizes[14]; i++) p.lnfw[i] = 1.0f;
    return values;
}
