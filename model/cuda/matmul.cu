// Linear layers through cuBLAS, plus the bias kernels.
// cuBLAS is column-major: a row-major (r, c) matrix is, to cuBLAS, its (c, r) transpose with leading
// dimension c. Each call below is written as the row-major product it computes.
#include <cuda_bf16.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/matmul_precision.h"

cublasHandle_t cublas_handle() {
    static cublasHandle_t handle = [] {
        cublasHandle_t created;
        CUBLAS_CHECK(cublasCreate(&created));
        // default math: true fp32 (no TF32), so that kernels match the CPU reference to 1e-5
        CUBLAS_CHECK(cublasSetMathMode(created, CUBLAS_DEFAULT_MATH));
        return created;
    }();
    return handle;
}

namespace {

// out (count) = inp rounded to bf16, to nearest even
__global__ void to_bf16_kernel(__nv_bfloat16* __restrict__ out, const float* __restrict__ inp, size_t count) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) out[index] = __float2bfloat16_rn(inp[index]);
}

// out (N,OC) += bias (OC) broadcast over rows
__global__ void add_bias_kernel(float* __restrict__ out, const float* __restrict__ bias, int N, int OC) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < size_t(N) * OC) out[index] += bias[index % OC];
}

// dbias (OC) += column sums of dout (N,OC), deterministically: a block of 32 x 8 threads owns 32 columns;
// thread row y sums rows y, y+8, y+16, ... in order, then the 8 partial sums are added in a fixed order.
__global__ void bias_backward_kernel(float* __restrict__ dbias, const float* __restrict__ dout, int N, int OC) {
    __shared__ float partial[8][32];
    int column = blockIdx.x * 32 + threadIdx.x;
    float sum = 0.0f;
    if (column < OC)
        for (int row = threadIdx.y; row < N; row += 8) sum += dout[size_t(row) * OC + column];
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && column < OC) {
        float total = 0.0f;
        for (int y = 0; y < 8; y++) total += partial[y][threadIdx.x];
        dbias[column] += total;
    }
}

}  // namespace

namespace cuda {

namespace {
MatmulPrecision current_precision = MatmulPrecision::fp32;  // set once by the CLI before any product
}  // namespace

void set_matmul_precision(MatmulPrecision precision) { current_precision = precision; }
MatmulPrecision matmul_precision() { return current_precision; }

void gemm(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
          const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
    if (current_precision == MatmulPrecision::fp32) {
        CUBLAS_CHECK(cublasSgemm(handle, op_a, op_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc));
        return;
    }
    // fp32 operands and output, bf16 tensor-core multiplies, fp32 accumulation
    CUBLAS_CHECK(cublasGemmEx(handle, op_a, op_b, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C,
                              CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC) {
    const float one = 1.0f, zero = 0.0f;
    // out (N,OC) = inp (N,C) W^T: column-major out^T (OC,N) = W_cm^T (OC,C) inp_cm (C,N), W_cm = W as (C,OC)
    gemm(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, C, inp, C, &zero, out,
                             OC);
    if (bias) {
        size_t count = size_t(N) * OC;
        add_bias_kernel<<<ceil_div(count, 256), 256>>>(out, bias, N, OC);
        CUDA_CHECK_LAUNCH();
    }
}

void to_bf16(bf16_bits* out, const float* inp, size_t count) {
    if (count == 0) return;
    to_bf16_kernel<<<ceil_div(count, 256), 256>>>(reinterpret_cast<__nv_bfloat16*>(out), inp, count);
    CUDA_CHECK_LAUNCH();
}

void matmul_forward_bf16(float* out, const bf16_bits* inp, const bf16_bits* weight, const float* bias, int N, int C,
                         int OC) {
    const float one = 1.0f, zero = 0.0f;
    // as matmul_forward, on bf16 operands: fp32 output, fp32 accumulation (no rounding of the operands left to do)
    CUBLAS_CHECK(cublasGemmEx(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, CUDA_R_16BF, C, inp,
                              CUDA_R_16BF, C, &zero, out, CUDA_R_32F, OC, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (bias) {
        size_t count = size_t(N) * OC;
        add_bias_kernel<<<ceil_div(count, 256), 256>>>(out, bias, N, OC);
        CUDA_CHECK_LAUNCH();
    }
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
    const float one = 1.0f;
    if (dinp)  // dinp (N,C) += dout (N,OC) W (OC,C): column-major dinp^T (C,N) += W_cm (C,OC) dout_cm (OC,N)
        gemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight, C, dout, OC, &one,
                                 dinp, C);
    if (dweight)  // dW (OC,C) += dout^T inp: column-major dW^T (C,OC) += inp_cm (C,N) dout_cm^T (N,OC)
        gemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout, OC, &one,
                                 dweight, C);
    if (dbias) {
        bias_backward_kernel<<<ceil_div(OC, 32), dim3(32, 8)>>>(dbias, dout, N, OC);
        CUDA_CHECK_LAUNCH();
    }
}

}  // namespace cuda
