// The tiny GPT-2 of the tests that run LoRA inside the whole model on the CPU backend (test_lora_model.cpp,
// test_label_ranking.cpp, test_ilora.cpp): odd sizes, and a base whose every path carries a real gradient.
#pragma once
#include <cstdint>
#include <vector>

#include "model/gpt2_config.h"
#include "model/initialisation.h"
#include "test/test_support.h"

// L=2, C=12, NH=3, V=29 (Vp=128), maxT=12: odd sizes.
inline GPT2Config small_config() {
    GPT2Config c;
    c.max_seq_len = 12, c.vocab_size = 29, c.padded_vocab_size = padded_vocab(29);
    c.num_layers = 2, c.num_heads = 3, c.channels = 12;
    return c;
}

// Random base parameters, larger than GPT-2's init, so that every path carries a real gradient and the logits
// differ from token to token.
inline std::vector<float> lively_base(const GPT2Config& c, uint64_t seed) {
    std::vector<float> values = gpt2_random_parameters(c, seed);
    std::vector<float> noise = random_vector<float>(values.size(), seed + 1, -0.2, 0.2);
    for (size_t i = 0; i < values.size(); i++) values[i] += noise[i];
    return values;
}
