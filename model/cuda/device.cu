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
    if (status == cudaErrorNoDevice || (status == cudaSuccess && count == 0)) return "no GPU found";
    if (status == cudaErrorInsufficientDriver) return "no NVIDIA driver that runs this build";
    if (status != cudaSuccess) return std::string("CUDA: ") + cudaGetErrorString(status);
    return "CUDA device present";
}
