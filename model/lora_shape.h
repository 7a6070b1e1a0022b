// The shape of one multi-branch LoRA linear (lora/METHODS.md section 1), shared by the CPU
// reference (model/cpu/lora_linear.h) and the CUDA version (model/cuda/lora_kernels.h).
#pragma once

// `branches` LoRA branches of rank `rank` stacked at one linear: R = branches * rank intermediate channels.
// Branches numbered below first_trainable_branch are frozen: the backward computes no dA / dB for them.
struct LoraShape {
    int N;                       // rows (tokens)
    int C;                       // d_in
    int OC;                      // d_out
    int branches;                // stacked branches
    int rank;                    // r, per branch
    int first_trainable_branch;  // 0 .. branches (branches = all frozen)
};
