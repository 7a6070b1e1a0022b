// CUDA device discovery: the runtime answers even on a machine with no GPU or driver.
#include <cuda_runtime.h>

#include "model/device.h"

int cuda_device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error
        return 0;
    }
    return count;
}

std::string cuda_unavailable_reason() {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    cudaGetLastError();
    if (status != cudaSuccess) return std::string("CUDA: ") + cudaGetErrorString(status);
    return count == 0 ? "CUDA: no device" : "CUDA device present";
}
