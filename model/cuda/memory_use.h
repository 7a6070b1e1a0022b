// What clora's own device memory holds (model/cuda/memory.cu counts every device_allocate / device_free), for the
// benchmarks (dev/bench/train_step.cu). Not counted: cuBLAS's workspace, NCCL's buffers, the CUDA context
// (cudaMemGetInfo sees those).
#pragma once
#include <cstddef>

namespace cuda {

// current: bytes of the live allocations; peak: the most held at once since the start of the process or the
// last reset_device_memory_peak (which sets peak to current).
struct DeviceMemoryUse {
    size_t current = 0, peak = 0;
};
DeviceMemoryUse device_memory_use();
void reset_device_memory_peak();
// The device's memory in use as the driver sees it (cudaMemGetInfo: total - free): this process's allocations,
// its CUDA context and cuBLAS workspace, and any other process on the same GPU.
size_t device_memory_used();

}  // namespace cuda
