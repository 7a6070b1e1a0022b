#include "model/device.h"

#include <cstdio>

#include "data/file_io.h"
#include "model/cuda/nccl.h"
#include "model/distributed.h"

const char* device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

Device resolve_device(const std::string& flag) {
    if (flag == "cpu") return Device::cpu;
    if (flag != "cuda" && flag != "auto") fail("--device '" + flag + "': expected cpu, cuda or auto");
    int gpus = cuda_device_count();
    if (gpus > 0) {
        // under a launcher each rank takes the GPU of its local rank: one process per GPU
        const Distributed& d = distributed();
        if (d.launched) {
            if (d.local_rank >= gpus)
                fail("rank " + std::to_string(d.rank) + " has local rank " + std::to_string(d.local_rank) +
                     " but its node has " + std::to_string(gpus) + " GPU(s): start at most one rank per GPU");
            cuda::use_device(d.local_rank);
        }
        return Device::cuda;
    }
    if (flag == "cuda") fail("--device cuda: no usable GPU (" + cuda_unavailable_reason() + ")");
    std::fprintf(stderr, "device: auto -> cpu (%s)\n", cuda_unavailable_reason().c_str());
    return Device::cpu;
}
