// The one cuBLAS call every CUDA matrix product uses, in the process-wide precision (model/precision.h):
//   fp32: cublasSgemm with CUBLAS_DEFAULT_MATH (true fp32, no TF32): matches the CPU reference to 1e-5.
//   bf16: cublasGemmEx on the same fp32 operands and storage with CUBLAS_COMPUTE_32F_FAST_16BF: cuBLAS rounds the
//         operands to bf16 for the tensor cores and accumulates in fp32 (DESIGN.md's bf16 tolerance, 1e-2 relative).
// Storage stays fp32 in both modes (weights, activations, gradients, optimizer state); only the product's math changes.
// (A frozen base stored in bf16 multiplies bf16 operands directly instead: matmul_forward_bf16, GPT2::bf16_base.)
// Defined in matmul.cu (so the kernel lab, which links matmul.o, has it too).
// Used by the model's linears and the LoRA shrink / expand (matmul.cu, lora_linear.cu). The products among the
// trained LoRA tensors alone (the regularizers, AM-LoRA's attention) stay cublasSgemm: fp32, and small.
#pragma once
#include <cublas_v2.h>

#include "model/precision.h"

namespace cuda {

// Column-major C (m,n) = alpha op(A) op(B) + beta C, exactly cublasSgemm's arguments, in the current precision.
void gemm(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
          const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc);

}  // namespace cuda
