// The activations of one forward pass (and, with the same layout, their gradients), carved out of one
// allocation, as llm.c. B = batch, T = sequence length, L, C, NH, Vp from the config.
#pragma once
#include <array>
#include <cstddef>

#include "model/gpt2_config.h"

constexpr int NUM_ACTIVATION_TENSORS = 21;

template <typename T>
struct ActivationTensors {
    T* encoded;    // (B,T,C)      wte + wpe
    T* ln1;        // (L,B,T,C)
    T* ln1_mean;   // (L,B,T)
    T* ln1_rstd;   // (L,B,T)
    T* qkv;        // (L,B,T,3C)
    T* atty;       // (L,B,T,C)    attention output, heads merged
    T* att;        // (L, Backend::attention_state_size(B,NH,T)) what the attention forward keeps for the
                   // backward: the probabilities (L,B,NH,T,T) on the CPU, the rows' log-sum-exp (L,B,NH,T) on CUDA
    T* attproj;    // (L,B,T,C)
    T* residual2;  // (L,B,T,C)    residual + attention
    T* ln2;        // (L,B,T,C)
    T* ln2_mean;   // (L,B,T)
    T* ln2_rstd;   // (L,B,T)
    T* fch;        // (L,B,T,4C)
    T* fch_gelu;   // (L,B,T,4C)
    T* fcproj;     // (L,B,T,C)
    T* residual3;  // (L,B,T,C)    residual2 + MLP: the block's output
    T* lnf;        // (B,T,C)
    T* lnf_mean;   // (B,T)
    T* lnf_rstd;   // (B,T)
    T* logits;     // (B,T,Vp)     in the gradient struct: dlogits
    T* losses;     // (B,T)        per-position cross-entropy
};

// The sizes depend on the backend only through Backend::attention_state_size (the `att` field).
template <class Backend>
std::array<size_t, NUM_ACTIVATION_TENSORS> activation_sizes(const GPT2Config& c, int B, int T) {
    size_t L = c.num_layers, C = c.channels, Vp = c.padded_vocab_size, BT = size_t(B) * T;
    size_t att = L * Backend::attention_state_size(B, c.num_heads, T);
    return {BT * C,     L * BT * C,     L * BT,     L * BT,     L * BT * 3 * C, L * BT * C, att,
            L * BT * C, L * BT * C,     L * BT * C, L * BT,     L * BT,         L * BT * 4 * C, L * BT * 4 * C,
            L * BT * C, L * BT * C,     BT * C,     BT,         BT,             BT * Vp,    BT};
}

template <class Backend>
size_t num_activations(const GPT2Config& c, int B, int T) {
    size_t total = 0;
    for (size_t size : activation_sizes<Backend>(c, B, T)) total += size;
    return total;
}

template <class Backend, typename T>
ActivationTensors<T> carve_activations(T* memory, const GPT2Config& c, int B, int T_) {
    std::array<size_t, NUM_ACTIVATION_TENSORS> sizes = activation_sizes<Backend>(c, B, T_);
    ActivationTensors<T> a;
    T** fields[NUM_ACTIVATION_TENSORS] = {
        &a.encoded,  &a.ln1,    &a.ln1_mean, &a.ln1_rstd,  &a.qkv,       &a.atty, &a.att,
        &a.attproj,  &a.residual2, &a.ln2,   &a.ln2_mean,  &a.ln2_rstd,  &a.fch,  &a.fch_gelu,
        &a.fcproj,   &a.residual3, &a.lnf,   &a.lnf_mean,  &a.lnf_rstd,  &a.logits, &a.losses};
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) {
        *fields[i] = memory;
        memory += sizes[i];
    }
    return a;
}
