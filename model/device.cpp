#include "model/device.h"

#include <cstdio>

#include "data/file_io.h"

const char* device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

Device resolve_device(const std::string& flag) {
    if (flag == "cpu") return Device::cpu;
    if (flag != "cuda" && flag != "auto") fail("--device '" + flag + "': expected cpu, cuda or auto");
    int gpus = cuda_device_count();
    if (gpus > 0) return Device::cuda;
    if (flag == "cuda") fail("--device cuda: no usable GPU (" + cuda_unavailable_reason() + ")");
    std::fprintf(stderr, "device: auto -> cpu (%s)\n", cuda_unavailable_reason().c_str());
    return Device::cpu;
}
