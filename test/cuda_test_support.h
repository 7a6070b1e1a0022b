// Helpers for the GPU tests: skip (reported as skipped) when no GPU is usable, device buffers filled from
// and read back to host vectors, and poisoning of outputs before a kernel runs.
#pragma once
#include <cstring>
#include <vector>

#include "model/cuda/kernels.h"
#include "model/device.h"
#include "model/precision.h"
#include "test/test_support.h"

#define REQUIRE_GPU_OR_SKIP()                                                              \
    do {                                                                                   \
        if (cuda_device_count() == 0) SKIP_TEST("no GPU: " + cuda_unavailable_reason());   \
    } while (0)

// A test of the CUDA backend: GPU_TEST_CASE("cuda kernels: ...") { body }. Skipped, and reported as skipped,
// when no GPU is usable. Its body is a function template, instantiated only in the GPU build: a CPU-only build
// (make CPU_ONLY=1) still compiles it, so it cannot rot there, but never links it against CUDA.
#define GPU_TEST_CASE(...) GPU_TEST_CASE_WITH_BODY(CLORA_CONCAT(gpu_test_body_, __LINE__), __VA_ARGS__)
#define CLORA_CONCAT(a, b) CLORA_CONCAT_EXPANDED(a, b)
#define CLORA_CONCAT_EXPANDED(a, b) a##b
#ifdef CLORA_CPU_ONLY
#define GPU_TEST_CASE_RUNS(body)
#else
#define GPU_TEST_CASE_RUNS(body) body<0>();
#endif
#define GPU_TEST_CASE_WITH_BODY(body, ...) \
    template <int>                         \
    static void body();                    \
    TEST_CASE(__VA_ARGS__) {               \
        REQUIRE_GPU_OR_SKIP();             \
        GPU_TEST_CASE_RUNS(body)           \
    }                                      \
    template <int>                         \
    static void body()

// A device array of T that frees itself.
template <typename T>
struct DeviceBuffer {
    T* data = nullptr;
    size_t count = 0;
    explicit DeviceBuffer(size_t count) : data(static_cast<T*>(cuda::device_allocate(count * sizeof(T)))), count(count) {}
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { cuda::device_free(data); }

    void upload(const std::vector<T>& host) {
        REQUIRE(host.size() == count);
        cuda::copy_to_device(data, host.data(), count * sizeof(T));
    }
    std::vector<T> download() const {
        std::vector<T> host(count);
        cuda::copy_to_host(host.data(), data, count * sizeof(T));
        return host;
    }
    // Fills every byte with 0xFF (a NaN for floats), so an output the kernel fails to write shows up.
    void poison() {
        std::vector<unsigned char> bytes(count * sizeof(T), 0xFF);
        cuda::copy_to_device(data, bytes.data(), bytes.size());
    }
};

constexpr double FP32_TOLERANCE = 1e-5;  // relative error of a CUDA kernel against its CPU reference
constexpr double BF16_TOLERANCE = 1e-2;  // the same with bf16 products (DESIGN.md)

// The CUDA matmul precision for one scope; fp32 (the library's default) again after it.
struct MatmulPrecisionScope {
    explicit MatmulPrecisionScope(MatmulPrecision precision) { cuda::set_matmul_precision(precision); }
    ~MatmulPrecisionScope() { cuda::set_matmul_precision(MatmulPrecision::fp32); }
    MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
    MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;
};
