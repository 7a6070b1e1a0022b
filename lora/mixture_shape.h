// The shape of one adapted linear's attention over its branches (AM-LoRA, lora/METHODS.md section 9),
// shared by the CPU reference (lora/cpu/attention_mixture.h) and the CUDA version
// (lora/cuda/attention_mixture_kernels.h).
#pragma once

// One adapted linear's attention mixture: N rows, `branches` branches of rank `rank`, d_out OC, attention size dim.
struct MixtureShape {
    int N;
    int OC;
    int branches;
    int rank;
    int dim;                     // d_a
    int first_trainable_branch;  // 0 .. branches
    bool softmax;                // the softmax + entropy variant; else sigmoid + L1
};
