// GPT-2 hyperparameters, as in llm.c's checkpoint header.
#pragma once
#include <string>

struct GPT2Config {
    int max_seq_len = 0;        // maxT, the number of learned positions (1024 for GPT-2)
    int vocab_size = 0;         // V, real tokens (50257 for GPT-2)
    int padded_vocab_size = 0;  // Vp, V rounded up so that matrix shapes are friendly (50304 for GPT-2)
    int num_layers = 0;         // L
    int num_heads = 0;          // NH
    int channels = 0;           // C, divisible by NH
};

// llm.c pads the vocabulary to a multiple of 128.
inline int padded_vocab(int vocab_size) { return (vocab_size + 127) / 128 * 128; }

// Fails with "<where>: ..." when a field is out of range or inconsistent (C % NH, V <= Vp, ...).
void validate_config(const GPT2Config& config, const std::string& where);

// Parses llm.c's GPT-2 size names (d12 = 124M, d24, d36, d48) or an explicit "L:C:NH:V:maxT" spec,
// e.g. "2:36:4:67:16". Fails with a clear message on anything else.
GPT2Config config_from_spec(const std::string& spec);
std::string describe_config(const GPT2Config& config);
