// Time on the GPU: the milliseconds that `calls` calls of launch() take, between two CUDA events on the default
// stream. Used by the cuBLAS peak the benchmarks measure against (model/cuda/gemm_peak.cu) and by the kernel lab
// (dev/cuda/lab_common.h).
#pragma once
#include <cuda_runtime.h>

#include "model/cuda/cuda_check.h"

template <typename Launch>
float event_time_ms(int calls, Launch&& launch) {
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < calls; i++) launch();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    return ms;
}
