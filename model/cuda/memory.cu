// Device memory and host <-> device copies, every call checked. Every allocation of clora's own goes through
// device_allocate, which counts its bytes (current and peak, for the benchmarks: dev/bench/train_step.cu); what
// cuBLAS, NCCL and the CUDA context allocate for themselves is not counted.
#include <algorithm>
#include <unordered_map>

#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/memory_use.h"

namespace cuda {

namespace {

struct AllocationCounter {
    std::unordered_map<void*, size_t> sizes;  // live allocations: address -> bytes
    size_t current = 0, peak = 0;
};
// never destroyed: static objects free device memory in their destructors, in any order at exit
AllocationCounter& allocation_counter() {
    static AllocationCounter* counter = new AllocationCounter;
    return *counter;
}

}  // namespace

DeviceMemoryUse device_memory_use() { return {allocation_counter().current, allocation_counter().peak}; }
void reset_device_memory_peak() { allocation_counter().peak = allocation_counter().current; }

size_t device_memory_used() {
    size_t free = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return total - free;
}

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
    AllocationCounter& counter = allocation_counter();
    counter.sizes[memory] = bytes;
    counter.current += bytes;
    counter.peak = std::max(counter.peak, counter.current);
    return memory;
}

void device_free(void* memory) {
    if (!memory) return;
    cudaFree(memory);  // not checked: called from destructors, possibly while unwinding
    AllocationCounter& counter = allocation_counter();
    auto found = counter.sizes.find(memory);
    if (found == counter.sizes.end()) return;
    counter.current -= found->second;
    counter.sizes.erase(found);
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
