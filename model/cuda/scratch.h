// Scratch memory for a kernel family: a device buffer owned by one .cu file, grown on demand and never shrunk.
// Its contents do not survive a call.
#pragma once
#include <cstddef>

#include "model/cuda/kernels.h"

template <typename T>
struct DeviceScratch {
    T* data = nullptr;
    size_t capacity = 0;  // elements

    T* get(size_t count) {
        if (count > capacity) {
            cuda::device_free(data);  // cudaFree waits for the device: no kernel still uses the old buffer
            data = nullptr;
            capacity = 0;
            data = static_cast<T*>(cuda::device_allocate(count * sizeof(T)));
            capacity = count;
        }
        return data;
    }
};
