// The tests' tiny GPT-2s: a config of given sizes, the small one of the tests that run LoRA inside the whole model
// on the CPU backend (test_lora_model.cpp, test_label_ranking.cpp, test_ilora.cpp), a base whose every path
// carries a real gradient, and adapters on every module.
#pragma once
#include <cstdint>
#include <vector>

#include "model/gpt2_config.h"
#include "model/initialisation.h"
#include "model/lora_config.h"
#include "test/test_support.h"

// A GPT-2 of the given sizes, its vocabulary padded as GPT-2's is (model/gpt2_config.h, padded_vocab).
inline GPT2Config test_config(int layers, int channels, int heads, int vocab, int max_seq_len) {
    GPT2Config c;
    c.max_seq_len = max_seq_len, c.vocab_size = vocab, c.padded_vocab_size = padded_vocab(vocab);
    c.num_layers = layers, c.num_heads = heads, c.channels = channels;
    return c;
}

// L=2, C=12, NH=3, V=29 (Vp=128), maxT=12: odd sizes.
inline GPT2Config small_config() { return test_config(2, 12, 3, 29, 12); }

// Random base parameters, larger than GPT-2's init (uniform noise in [-noise, noise] added), so that every path
// carries a real gradient and the logits differ from token to token.
inline std::vector<float> lively_base(const GPT2Config& c, uint64_t seed, double noise_scale = 0.2) {
    std::vector<float> values = gpt2_random_parameters(c, seed);
    std::vector<float> noise = random_vector<float>(values.size(), seed + 1, -noise_scale, noise_scale);
    for (size_t i = 0; i < values.size(); i++) values[i] += noise[i];
    return values;
}

// Adapters of rank r on every adapted linear, alpha = 2r (scale 2).
inline LoraConfig every_module(int rank, float dropout = 0.0f) {
    LoraConfig config;
    config.rank = rank;
    config.alpha = 2.0f * rank;
    config.dropout = dropout;
    config.modules = parse_lora_modules("all");
    return config;
}
