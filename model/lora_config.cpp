#include "model/lora_config.h"

#include <cmath>
#include <sstream>

#include "data/file_io.h"

namespace {
const char* const MODULE_NAMES[NUM_LORA_MODULES] = {"qkv", "attn_proj", "fc", "fc_proj"};
}

const char* lora_module_name(int module) {
    return module >= 0 && module < NUM_LORA_MODULES ? MODULE_NAMES[module] : "(unknown module)";
}

LinearShape lora_module_shape(int module, const GPT2Config& config) {
    const int C = config.channels;
    if (C < 1 || C > MAX_LORA_CHANNELS)
        fail("LoRA: channels C = " + std::to_string(C) + " is outside 1.." + std::to_string(MAX_LORA_CHANNELS));
    switch (module) {
        case LORA_QKV: return {C, 3 * C};
        case LORA_ATTN_PROJ: return {C, C};
        case LORA_FC: return {C, 4 * C};
        default: return {4 * C, C};
    }
}

unsigned parse_lora_modules(const std::string& list) {
    if (list == "all") return (1u << NUM_LORA_MODULES) - 1;
    unsigned modules = 0;
    std::stringstream items(list);
    std::string item;
    while (std::getline(items, item, ',')) {
        int found = -1;
        for (int m = 0; m < NUM_LORA_MODULES; m++)
            if (item == MODULE_NAMES[m]) found = m;
        if (found < 0) fail("unknown LoRA module '" + item + "' (expected qkv, attn_proj, fc, fc_proj or all)");
        modules |= 1u << found;
    }
    if (!modules) fail("no LoRA module given (expected a list of qkv, attn_proj, fc, fc_proj, or all)");
    return modules;
}

std::string lora_modules_string(unsigned modules) {
    std::string list;
    for (int m = 0; m < NUM_LORA_MODULES; m++)
        if ((modules >> m) & 1u) list += (list.empty() ? "" : ",") + std::string(MODULE_NAMES[m]);
    return list;
}

void validate_lora_config(const LoraConfig& c) {
    if (c.rank < 1 || c.rank > MAX_LORA_RANK)
        fail("LoRA rank must be in 1.." + std::to_string(MAX_LORA_RANK) + ", got " + std::to_string(c.rank));
    if (!(c.alpha > 0) || !std::isfinite(c.alpha)) fail("LoRA alpha must be > 0, got " + std::to_string(c.alpha));
    if (!(c.dropout >= 0 && c.dropout < 1)) fail("LoRA dropout must be in [0, 1), got " + std::to_string(c.dropout));
    if (!c.modules || c.modules >> NUM_LORA_MODULES) fail("LoRA modules: invalid set " + std::to_string(c.modules));
}
