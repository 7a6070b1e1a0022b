// The 16 parameter tensors of GPT-2 in llm.c's order and layout, carved out of one allocation.
// Linear weights are (out, in) as in PyTorch: y = x W^T + b. The output projection is tied to wte.
#pragma once
#include <array>
#include <cstddef>

#include "model/gpt2_config.h"

constexpr int NUM_PARAMETER_TENSORS = 16;

template <typename T>
struct ParameterTensors {
    T* wte;       // (Vp, C)   token embedding, also the output classifier; rows V..Vp-1 are padding
    T* wpe;       // (maxT, C) position embedding
    T* ln1w;      // (L, C)
    T* ln1b;      // (L, C)
    T* qkvw;      // (L, 3C, C)
    T* qkvb;      // (L, 3C)
    T* attprojw;  // (L, C, C)
    T* attprojb;  // (L, C)
    T* ln2w;      // (L, C)
    T* ln2b;      // (L, C)
    T* fcw;       // (L, 4C, C)
    T* fcb;       // (L, 4C)
    T* fcprojw;   // (L, C, 4C)
    T* fcprojb;   // (L, C)
    T* lnfw;      // (C)
    T* lnfb;      // (C)

    // The tensors in file order, for loops over all of them.
    std::array<T*, NUM_PARAMETER_TENSORS> list() const {
        return {wte, wpe, ln1w, ln1b, qkvw, qkvb, attprojw, attprojb,
                ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb};
    }
};

inline const char* const PARAMETER_NAMES[NUM_PARAMETER_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

// Element counts of the 16 tensors, in file order.
inline std::array<size_t, NUM_PARAMETER_TENSORS> parameter_sizes(const GPT2Config& config) {
    size_t Vp = config.padded_vocab_size, C = config.channels, L = config.num_layers, maxT = config.max_seq_len;
    return {Vp * C, maxT * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
            L * C,  L * C,    L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C};
}

inline size_t num_parameters(const GPT2Config& config) {
    size_t total = 0;
    for (size_t size : parameter_sizes(config)) total += size;
    return total;
}

// Weight decay applies to the 2-D tensors only (embeddings and linear weights), as in GPT-2 training.
inline bool parameter_is_matrix(int tensor_index) {
    switch (tensor_index) {
        case 0: case 1: case 4: case 6: case 10: case 12: return true;
        default: return false;
    }
}

// Points each tensor into one contiguous block of num_parameters(config) elements.
template <typename T>
ParameterTensors<T> carve_parameters(T* memory, const GPT2Config& config) {
    std::array<size_t, NUM_PARAMETER_TENSORS> sizes = parameter_sizes(config);
    T* pointers[NUM_PARAMETER_TENSORS];
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        pointers[i] = memory;
        memory += sizes[i];
    }
    ParameterTensors<T> p;
    p.wte = pointers[0]; p.wpe = pointers[1]; p.ln1w = pointers[2]; p.ln1b = pointers[3];
    p.qkvw = pointers[4]; p.qkvb = pointers[5]; p.attprojw = pointers[6]; p.attprojb = pointers[7];
    p.ln2w = pointers[8]; p.ln2b = pointers[9]; p.fcw = pointers[10]; p.fcb = pointers[11];
    p.fcprojw = pointers[12]; p.fcprojb = pointers[13]; p.lnfw = pointers[14]; p.lnfb = pointers[15];
    return p;
}
