// The one place where a Device becomes a backend type. with_backend(device, f) calls f(BackendType<B>{}), B being
// CudaBackend (model/backend_cuda.h) or CpuBackend<float> (model/backend_cpu.h), and returns what f returns:
//
//     return with_backend(device, [&](auto backend) { return train_on<typename decltype(backend)::type>(...); });
//
// A CPU-only build (make CPU_ONLY=1, which defines CLORA_CPU_ONLY) has no CUDA backend: resolve_device never gives
// Device::cuda there (model/cuda_absent.cpp counts no GPU), and since nothing instantiates CudaBackend, nothing
// links against CUDA.
#pragma once
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "model/device.h"

template <typename Backend>
struct BackendType {
    using type = Backend;
};

template <typename Function>
decltype(auto) with_backend(Device device, Function&& function) {
#ifndef CLORA_CPU_ONLY
    if (device == Device::cuda) return function(BackendType<CudaBackend>{});
#else
    (void)device;
#endif
    return function(BackendType<CpuBackend<float>>{});
}
