// The activations of one forward pass and the activation gradients of one backward, each carved out of one
// allocation, as llm.c. B = batch, T = sequence length, L, C, NH, Vp from the config.
//
// Memory is kept to what the backward reads:
//   - the linears' outputs attproj and fcproj are read by no backward (only by the residual sums): one layer's
//     worth, overwritten by every layer;
//   - the inputs of qkv, fc and fc_proj (ln1, ln2, fch_gelu) are read only by their weight gradients and by
//     adapters on those linears: with a frozen base and no adapter there, one layer's worth as well
//     (ActivationKeep);
//   - the gradients: the backward needs one layer's at a time, plus the residual stream's (ActivationGradients);
//     the logits' gradient overwrites the logits;
//   - the logits, with the classifier in chunks (GPT2::logits_chunk_rows), are one chunk's rows.
// The other per-layer tensors are kept for every layer (L,B,T,...).
#pragma once
#include <array>
#include <cstddef>

#include "model/gpt2_config.h"

// Which linear inputs the forward keeps for every layer (true) or for the current layer only (false), and how many
// rows of logits it holds at once.
struct ActivationKeep {
    bool ln1 = true;       // the input of qkv
    bool ln2 = true;       // the input of fc
    bool fch_gelu = true;  // the input of fc_proj
    size_t logits_rows = 0;  // 0: all B*T; else one chunk of rows
    bool operator==(const ActivationKeep& other) const {
        return ln1 == other.ln1 && ln2 == other.ln2 && fch_gelu == other.fch_gelu && logits_rows == other.logits_rows;
    }
    bool operator!=(const ActivationKeep& other) const { return !(*this == other); }
};

// Layer l's slice of a per-layer activation with `width` elements per layer: its own, or the one-layer scratch.
template <typename T>
T* layer_slice(T* tensor, bool every_layer, int l, size_t width) {
    return tensor + (every_layer ? size_t(l) * width : 0);
}

constexpr int NUM_ACTIVATION_TENSORS = 21;

template <typename T>
struct ActivationTensors {
    T* encoded;    // (B,T,C)      wte + wpe
    T* ln1;        // (L,B,T,C)    or (B,T,C): ActivationKeep
    T* ln1_mean;   // (L,B,T)
    T* ln1_rstd;   // (L,B,T)
    T* qkv;        // (L,B,T,3C)
    T* atty;       // (L,B,T,C)    attention output, heads merged
    T* att;        // (L, Backend::attention_state_size(B,NH,T)) what the attention forward keeps for the
                   // backward: the probabilities (L,B,NH,T,T) on the CPU, the rows' log-sum-exp (L,B,NH,T) on CUDA
    T* attproj;    // (B,T,C)      one layer's
    T* residual2;  // (L,B,T,C)    residual + attention
    T* ln2;        // (L,B,T,C)    or (B,T,C): ActivationKeep
    T* ln2_mean;   // (L,B,T)
    T* ln2_rstd;   // (L,B,T)
    T* fch;        // (L,B,T,4C)
    T* fch_gelu;   // (L,B,T,4C)   or (B,T,4C): ActivationKeep
    T* fcproj;     // (B,T,C)      one layer's
    T* residual3;  // (L,B,T,C)    residual2 + MLP: the block's output
    T* lnf;        // (B,T,C)
    T* lnf_mean;   // (B,T)
    T* lnf_rstd;   // (B,T)
    T* logits;     // (B,T,Vp)     or (logits_rows,Vp): ActivationKeep; overwritten by their gradient
    T* losses;     // (B,T)        per-position cross-entropy
};

// The sizes depend on the backend only through Backend::attention_state_size (the `att` field).
template <class Backend>
std::array<size_t, NUM_ACTIVATION_TENSORS> activation_sizes(const GPT2Config& c, int B, int T,
                                                            ActivationKeep keep = {}) {
    size_t L = c.num_layers, C = c.channels, Vp = c.padded_vocab_size, BT = size_t(B) * T;
    size_t att = L * Backend::attention_state_size(B, c.num_heads, T);
    auto layers = [L](bool every_layer) { return every_layer ? L : 1; };
    return {BT * C,
            layers(keep.ln1) * BT * C,  // ln1
            L * BT,
            L * BT,
            L * BT * 3 * C,
            L * BT * C,  // atty: the attention backward reads it
            att,
            BT * C,  // attproj
            L * BT * C,
            layers(keep.ln2) * BT * C,  // ln2
            L * BT,
            L * BT,
            L * BT * 4 * C,                      // fch: the GELU backward reads it
            layers(keep.fch_gelu) * BT * 4 * C,  // fch_gelu
            BT * C,                              // fcproj
            L * BT * C,
            BT * C,
            BT,
            BT,
            (keep.logits_rows > 0 ? keep.logits_rows : BT) * Vp,  // logits
            BT};
}

template <class Backend>
size_t num_activations(const GPT2Config& c, int B, int T, ActivationKeep keep = {}) {
    size_t total = 0;
    for (size_t size : activation_sizes<Backend>(c, B, T, keep)) total += size;
    return total;
}

template <class Backend, typename T>
ActivationTensors<T> carve_activations(T* memory, const GPT2Config& c, int B, int T_, ActivationKeep keep = {}) {
    std::array<size_t, NUM_ACTIVATION_TENSORS> sizes = activation_sizes<Backend>(c, B, T_, keep);
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

// The gradients the backward writes, for one (B, T). dlogits overwrite the forward's logits (acts.logits).
// The residual stream's gradient lives in two (B,T,C) halves that swap roles: layer l's output gradient is half
// l % 2, its input gradient the other half (layer 0's: the encoder output's). Every other gradient is one layer's,
// in one block that each layer zeroes before it accumulates into it.
template <typename T>
struct ActivationGradients {
    T* lnf;        // (B,T,C)
    T* stream;     // (2,B,T,C)
    T* layer;      // the start of one layer's block, LAYER_GRADIENT_WIDTH (B,T,C)-sized slices:
    T* residual2;  // (B,T,C)
    T* fcproj;     // (B,T,C)
    T* fch_gelu;   // (B,T,4C)
    T* fch;        // (B,T,4C)
    T* ln2;        // (B,T,C)
    T* attproj;    // (B,T,C)
    T* atty;       // (B,T,C)
    T* qkv;        // (B,T,3C)
    T* ln1;        // (B,T,C)

    T* output_of(int l, size_t BTC) const { return stream + size_t(l % 2) * BTC; }    // dL/d(block l's output)
    T* input_of(int l, size_t BTC) const { return stream + size_t(1 - l % 2) * BTC; }  // dL/d(block l's input)
};

constexpr size_t LAYER_GRADIENT_WIDTH = 1 + 1 + 4 + 4 + 1 + 1 + 1 + 3 + 1;  // in units of (B,T,C)

inline size_t num_activation_gradients(const GPT2Config& c, int B, int T) {
    return size_t(B) * T * c.channels * (1 + 2 + LAYER_GRADIENT_WIDTH);
}

template <typename T>
ActivationGradients<T> carve_activation_gradients(T* memory, const GPT2Config& c, int B, int T_) {
    const size_t BTC = size_t(B) * T_ * c.channels;
    ActivationGradients<T> d;
    d.lnf = memory;
    d.stream = d.lnf + BTC;
    d.layer = d.stream + 2 * BTC;
    d.residual2 = d.layer;
    d.fcproj = d.residual2 + BTC;
    d.fch_gelu = d.fcproj + BTC;
    d.fch = d.fch_gelu + 4 * BTC;
    d.ln2 = d.fch + 4 * BTC;
    d.attproj = d.ln2 + BTC;
    d.atty = d.attproj + BTC;
    d.qkv = d.atty + BTC;
    d.ln1 = d.qkv + 3 * BTC;
    return d;
}
