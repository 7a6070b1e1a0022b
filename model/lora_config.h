// Which linears of GPT-2 carry LoRA adapters, and the adapters' rank, alpha and dropout
// (lora/METHODS.md section 1).
#pragma once
#include <string>

#include "model/gpt2_config.h"

// The four adaptable linears of a GPT-2 block, in the order the forward meets them.
enum LoraModule { LORA_QKV, LORA_ATTN_PROJ, LORA_FC, LORA_FC_PROJ, NUM_LORA_MODULES };

// "qkv", "attn_proj", "fc", "fc_proj"
const char* lora_module_name(int module);

// d_in and d_out of a module: qkv C -> 3C, attn_proj C -> C, fc C -> 4C, fc_proj 4C -> C. Fails unless
// 1 <= C <= MAX_LORA_CHANNELS (4C must fit an int).
struct LinearShape {
    int in, out;
};
constexpr int MAX_LORA_CHANNELS = 1 << 16;  // GPT-2 configs' own bound (model/gpt2_config.cpp)
LinearShape lora_module_shape(int module, const GPT2Config& config);

struct LoraConfig {
    int rank = 8;
    float alpha = 32;
    float dropout = 0.1f;         // LoRA dropout probability on the adapter's input, training only
    unsigned modules = 1u << LORA_QKV;  // bit m set: module m is adapted (in every layer)

    float scale() const { return alpha / float(rank); }
    bool adapts(int module) const { return (modules >> module) & 1u; }
};

// "qkv,fc" -> a module mask; "all" = the four. Fails naming an unknown module.
unsigned parse_lora_modules(const std::string& list);
// The inverse: "qkv,fc".
std::string lora_modules_string(unsigned modules);
// Fails on a rank outside 1..MAX_LORA_RANK, alpha <= 0 or not finite, dropout outside [0, 1), no module or an
// unknown module bit.
constexpr int MAX_LORA_RANK = 1 << 16;
void validate_lora_config(const LoraConfig& config);
