// The adapter regularisers of O-LoRA and N-LoRA on the GPU (lora/cuda/regularizers.cu), declared in plain C++
// (no CUDA types) like kernels.h. Same arguments, shapes and math as the CPU reference lora/cpu/regularizers.h,
// which each is tested against (test/test_lora_regularizers.cpp); every pointer is device memory, the loss comes
// back to the host (each call synchronises once for it). Gradients ACCUMULATE into dA_t / dBt_t, which may be null.
// Deterministic: cuBLAS products and fixed-order reductions in double, no atomics.
#pragma once

namespace cuda {

// M = A_old (k,in) A_t^T (in,r), (k,r): L = weight * sum |M| (squared: sum M^2);
// dA_t (r,in) += weight * sign(M)^T A_old (squared: weight * 2 M^T A_old). k = 0: 0, nothing added.
double orthogonality_loss(const float* A_old, const float* A_t, float* dA_t, int k, int r, int in, float weight,
                          bool squared);

// L = weight * (||A_t||_F + ||Bt_t||_F); dA_t += weight * A_t / ||A_t||_F, dBt_t += weight * Bt_t / ||Bt_t||_F
// (nothing for a norm of 0). A_t (r,in), Bt_t (r,out).
double l2_norm_loss(const float* A_t, const float* Bt_t, float* dA_t, float* dBt_t, int r, int in, int out,
                    float weight);

// Full form: S = sign(Bt_t^T A_t) (out,in), L = weight * sum |Bt_t^T A_t|; dBt_t += weight * A_t S^T,
// dA_t += weight * Bt_t S. rr form (in == out, else fails): S = sign(A_t Bt_t^T) (r,r), L = weight * sum |A_t Bt_t^T|;
// dA_t += weight * S Bt_t, dBt_t += weight * S^T A_t.
double l1_update_loss(const float* A_t, const float* Bt_t, float* dA_t, float* dBt_t, int r, int in, int out,
                      float weight, bool rr);

}  // namespace cuda
