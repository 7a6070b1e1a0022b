#include "model/device.h"

#include <cstdio>

#include "data/file_io.h"

const char* device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

Device resolve_device(const std::string& flag) {
    if (flag == "cpu") return Device::cpu;
    if (flag != "cuda" && flag != "auto") fail("--device '" + flag + "': expected cpu, cuda or auto");
    int gpus = cuda_device_count();
    if (flag == "cuda") {
        if (gpus == 0) fail("--device cuda: no usable GPU (" + cuda_unavailable_reason() + ")");
        if (!CUDA_BACKEND_BUILT)
            fail("--device cuda: this build has no CUDA kernels yet; run with --device cpu");
        return Device::cuda;
    }
    if (gpus > 0 && CUDA_BACKEND_BUILT) return Device::cuda;
    std::fprintf(stderr, "device: auto -> cpu (%s)\n",
                 gpus == 0 ? cuda_unavailable_reason().c_str() : "this build has no CUDA kernels yet");
    return Device::cpu;
}
