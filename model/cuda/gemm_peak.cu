// The measured matrix-product peak (model/cuda/gemm_peak.h): square cuBLAS products, timed with CUDA events.
#include <cuda_bf16.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/event_timer.cuh"
#include "model/cuda/gemm_peak.h"
#include "model/cuda/kernels.h"

namespace cuda {

namespace {

// x (count) = small values in [-1, 1) from the element index (a cheap hash: no zeros, which would understate the
// power draw and so overstate the peak)
template <typename T>
__global__ void fill_pattern_kernel(T* x, size_t count) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const unsigned hash = unsigned(i) * 2654435761u;
    x[i] = T(float(hash >> 8) / float(1u << 23) - 1.0f);
}

template <typename T>
void fill_pattern(T* x, size_t count) {
    fill_pattern_kernel<<<unsigned((count + 255) / 256), 256>>>(x, count);
    CUDA_CHECK(cudaGetLastError());
}

}  // namespace

const char* gemm_precision_name(GemmPrecision precision) {
    switch (precision) {
        case GemmPrecision::bf16: return "bf16";
        case GemmPrecision::tf32: return "tf32";
        case GemmPrecision::fp32: return "fp32";
    }
    return "?";
}

double gemm_tflops(GemmPrecision precision, int n, int iterations) {
    if (n < 1 || iterations < 1) fail("gemm_tflops: n and iterations must be positive");
    const bool half = precision == GemmPrecision::bf16;
    const size_t count = size_t(n) * n, bytes = count * (half ? sizeof(__nv_bfloat16) : sizeof(float));
    void* a = device_allocate(bytes);
    void* b = device_allocate(bytes);
    void* c = device_allocate(bytes);
    if (half) {
        fill_pattern(static_cast<__nv_bfloat16*>(a), count);
        fill_pattern(static_cast<__nv_bfloat16*>(b), count);
    } else {
        fill_pattern(static_cast<float*>(a), count);
        fill_pattern(static_cast<float*>(b), count);
    }
    cublasHandle_t handle;  // its own handle: the model's keeps its math mode
    CUBLAS_CHECK(cublasCreate(&handle));
    const float one = 1.0f, zero = 0.0f;
    auto product = [&] {
        if (precision == GemmPrecision::fp32) {
            CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, static_cast<float*>(a), n,
                                     static_cast<float*>(b), n, &zero, static_cast<float*>(c), n));
            return;
        }
        const cudaDataType type = half ? CUDA_R_16BF : CUDA_R_32F;
        const cublasComputeType_t compute = half ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
        CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, type, n, b, type, n, &zero, c,
                                  type, n, compute, CUBLAS_GEMM_DEFAULT));
    };
    for (int i = 0; i < 3; i++) product();
    const float ms = event_time_ms(iterations, product);
    CUBLAS_CHECK(cublasDestroy(handle));
    device_free(a);
    device_free(b);
    device_free(c);
    return 2.0 * double(n) * n * n * iterations / (double(ms) * 1e-3) / 1e12;
}

}  // namespace cuda
