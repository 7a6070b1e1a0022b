// I-LoRA's elementwise kernels on the GPU (lora/cuda/consistency.cu), declared in plain C++ (no CUDA types) like
// kernels.h, so that the method (lora/methods/ilora.h), compiled by the host compiler, can call them. Every pointer
// is device memory; the math is written out in the CPU reference lora/cpu/consistency.h, which each kernel is
// tested against (test/test_ilora.cpp). Both kernels are deterministic: no atomics, fixed-order reductions.
#pragma once
#include <cstddef>

namespace cuda {

// dh (N,C) = 2 w[n] (h_fast - h_slow), overwritten; row_losses (N) = w[n] sum_c (h_fast - h_slow)^2, overwritten.
// h_fast, h_slow (N,C); row_weights (N). One block per row; the row's sum is a fixed tree over the block.
void consistency_loss(float* dh, float* row_losses, const float* h_fast, const float* h_slow,
                      const float* row_weights, int N, int C);

// slow (count) = lambda * slow + (1 - lambda) * fast, elementwise.
void ema_update(float* slow, const float* fast, size_t count, float lambda);

// destination (count) = source (count), both device memory (the slow model's final hidden states kept for a step).
void copy_on_device(float* destination, const float* source, size_t count);

}  // namespace cuda
