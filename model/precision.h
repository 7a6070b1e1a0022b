// --precision: the math of the CUDA backend's matrix products (model/cuda/matmul_precision.h says what each does).
//   fp32: true fp32 (the CPU reference's math, GPU-vs-CPU tests at 1e-5)
//   bf16: mixed precision: bf16 tensor-core multiplies with fp32 accumulation; weights, LoRA tensors, gradients
//         and AdamW state stay fp32 in memory (so full training keeps fp32 master weights); the training commands
//         add a bf16 copy of a frozen base for its forward products (GPT2::bf16_base, model/bf16.h)
//   auto: bf16 on CUDA, fp32 on the CPU (the CLI's default: mixed precision on for CUDA)
// The CPU reference is always fp32. The library's own default is fp32 (tests compare against the reference);
// `train pretrain` and `train cl` set the precision once, before any product; `train verify` always uses fp32.
#pragma once
#include <string>

#include "model/device.h"

enum class MatmulPrecision { fp32, bf16 };

namespace cuda {
// The process-wide precision of every CUDA matrix product (defined in model/cuda/matmul.cu).
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();
}  // namespace cuda

// The flag's value for a resolved device. Fails on an unknown value and on bf16 with the CPU backend.
MatmulPrecision resolve_precision(const std::string& flag, Device device);
const char* precision_name(MatmulPrecision precision);

// resolve_precision + cuda::set_matmul_precision; returns what was set.
MatmulPrecision apply_precision(const std::string& flag, Device device);
