// Hugging Face GPT-2 in and out: a folder with transformers' config.json and model.safetensors (or a sharded
// model.safetensors.index.json) <-> clora's parameters (model/parameters.h, llm.c's layout).
//
// transformers' names (with or without the "transformer." prefix of GPT2LMHeadModel) and clora's tensors:
//   wte.weight (V, C)                  -> wte (Vp, C), rows V..Vp-1 zero
//   wpe.weight (maxT, C)               -> wpe
//   h.l.ln_1.weight / .bias            -> ln1w[l] / ln1b[l]           (ln_2 -> ln2w / ln2b, ln_f -> lnfw / lnfb)
//   h.l.attn.c_attn.weight (C, 3C)     -> qkvw[l] (3C, C)             Conv1D stores (in, out): transposed
//   h.l.attn.c_proj.weight (C, C)      -> attprojw[l] (C, C)          transposed
//   h.l.mlp.c_fc.weight (C, 4C)        -> fcw[l] (4C, C)              transposed
//   h.l.mlp.c_proj.weight (4C, C)      -> fcprojw[l] (C, 4C)          transposed
//   the biases as they are; lm_head.weight absent or equal to wte (clora's classifier is tied); the buffers
//   h.l.attn.bias and h.l.attn.masked_bias ignored.
#pragma once
#include <string>
#include <vector>

#include "model/gpt2_config.h"

struct HfModel {
    GPT2Config config;
    std::vector<float> parameters;  // (num_parameters(config),) in checkpoint layout
    std::vector<std::string> notes;  // what the import set aside (buffers, an lm_head equal to wte)
};

// Reads DIR/config.json and the tensors. Fails naming the field or the tensor on what clora cannot represent:
// activation_function other than gelu_new / gelu_pytorch_tanh, scale_attn_by_inverse_layer_idx,
// reorder_and_upcast_attn, scale_attn_weights false, add_cross_attention, n_inner other than 4 x n_embd,
// layer_norm_epsilon other than 1e-5, an lm_head that differs from wte, a missing or unexpected tensor, a shape
// that disagrees with the config, a non-finite value; the file errors of data/safetensors.h.
HfModel read_hf_gpt2(const std::string& dir);

// Writes DIR/config.json (a GPT2LMHeadModel's) and DIR/model.safetensors (fp32, transformers' own names and
// layout, lm_head tied so not stored), so that GPT2LMHeadModel.from_pretrained(DIR) finds every tensor and no
// other. The folder is created when missing; its two files are replaced atomically.
void write_hf_gpt2(const std::string& dir, const GPT2Config& config, const float* parameters);
