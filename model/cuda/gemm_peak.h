// The matrix-product peak this GPU reaches with cuBLAS, measured: the denominator of the benchmarks' model FLOP
// utilisation (dev/bench/train_step.cpp, --mode gemm).
#pragma once

namespace cuda {

enum class GemmPrecision {
    bf16,  // bf16 inputs and output, fp32 accumulation (tensor cores): cublasGemmEx, CUBLAS_COMPUTE_32F
    tf32,  // fp32 inputs and output, TF32 tensor-core products: CUBLAS_COMPUTE_32F_FAST_TF32
    fp32,  // fp32 throughout, no tensor cores: cublasSgemm in the default math mode
};
const char* gemm_precision_name(GemmPrecision precision);

// TFLOP/s of C (n,n) = A (n,n) B (n,n) in the given precision: 2 n^3 flops per product, the mean over `iterations`
// products timed with CUDA events after 3 warmup products. Inputs filled with small nonzero values.
double gemm_tflops(GemmPrecision precision, int n, int iterations);

}  // namespace cuda
