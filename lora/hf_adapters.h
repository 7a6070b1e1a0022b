// A run's adapters out to Hugging Face: merged into the base model's weights (`train export-hf --merge`) or as
// PEFT LoRA adapters (`train export-peft`).
//
// Both need the adapters as a fixed update of the base, W' = W + (alpha / r) sum_b B_b A_b over the branches b
// (lora/METHODS.md section 1, every branch at weight 1). That is what SeqLoRA, IncLoRA, Replay, MTL, O-LoRA and
// N-LoRA evaluate with, and I-LoRA with its slow (or fast) adapter. GainLoRA weighs each branch by a gate computed
// from the prompt and AM-LoRA by an attention over the branches' outputs: their update depends on the input, so
// they are refused.
//
// PEFT's form of clora's linears (GPT-2's Conv1D modules, fan_in_fan_out): module m of layer l is
//   base_model.model.transformer.h.<l>.<attn.c_attn | attn.c_proj | mlp.c_fc | mlp.c_proj>.lora_A.weight (R, in)
//   ... .lora_B.weight (out, R)
// with lora_A = clora's A and lora_B = clora's Bt transposed; PEFT's scale is lora_alpha / r.
#pragma once
#include <string>
#include <vector>

#include "lora/adapter_file.h"
#include "model/gpt2_config.h"

struct FixedAdapters {
    LoraConfig config;
    int num_layers = 0, channels = 0, branches = 0;
    std::vector<float> values;  // the "lora" layout (model/lora_adapters.h, lora_layout) for `branches` branches
    std::string source;         // the adapter file's tensor they came from: "lora" or "ilora/slow"
};

// The adapters a method evaluates with: "lora", or I-LoRA's slow adapter "ilora/slow" (its fast one with
// ilora_fast). Fails naming the method for GainLoRA's gates and AM-LoRA's attention.
FixedAdapters fixed_adapters(const AdapterFile& file, bool ilora_fast);

// parameters (num_parameters(config),): every adapted weight W (out, in) += (alpha / r) Bt^T A. Fails unless the
// adapters' layers and channels are the model's.
void merge_adapters(std::vector<float>& parameters, const GPT2Config& config, const FixedAdapters& adapters);

// DIR/adapter_config.json and DIR/adapter_model.safetensors: every branch as one PEFT adapter of rank
// R = branches x r and lora_alpha = branches x alpha (the same scale alpha / r, so exactly the sum of the branches);
// with several branches also DIR/task<k>/ (k = 1..branches), branch k alone at rank r. Returns the folders written.
std::vector<std::string> write_peft_adapters(const std::string& dir, const FixedAdapters& adapters);
