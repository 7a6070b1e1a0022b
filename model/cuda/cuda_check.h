// Checked CUDA and cuBLAS calls: a failure throws Error naming the call, the file and the line.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "data/file_io.h"

inline void cuda_check(cudaError_t status, const char* call, const char* file, int line) {
    if (status != cudaSuccess)
        fail(std::string("CUDA error: ") + cudaGetErrorString(status) + " in " + call + " at " + file + ":" +
             std::to_string(line));
}

inline void cublas_check(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS)
        fail(std::string("cuBLAS error: ") + cublasGetStatusString(status) + " in " + call + " at " + file + ":" +
             std::to_string(line));
}

#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check((call), #call, __FILE__, __LINE__)
// After every kernel launch: launch-configuration errors surface here, at the launch that caused them.
#define CUDA_CHECK_LAUNCH() cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

// One cuBLAS handle per process (created on first use), shared by the matmul and attention kernels.
cublasHandle_t cublas_handle();

inline int ceil_div(size_t a, size_t b) { return int((a + b - 1) / b); }
