// Device memory and host <-> device copies, every call checked.
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace cuda {

void* device_allocate(size_t bytes) {
    void* memory = nullptr;
    if (bytes == 0) bytes = 1;
    cudaError_t status = cudaMalloc(&memory, bytes);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        fail("GPU out of memory: cannot allocate " + std::to_string(bytes >> 20) + " MiB");
    }
    CUDA_CHECK(status);
    CUDA_CHECK(cudaMemset(memory, 0, bytes));
    return memory;
}

void device_free(void* memory) {
    if (memory) cudaFree(memory);  // not checked: called from destructors, possibly while unwinding
}

void device_zero(void* memory, size_t bytes) { CUDA_CHECK(cudaMemset(memory, 0, bytes)); }

void copy_to_device(void* destination, const void* source, size_t bytes) {
    CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* destination, const void* source, size_t bytes) {
    CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyDeviceToHost));
}

void synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace cuda
