// The kernel lab's shared plumbing (dev/cuda/*.cu): checked calls that print and exit, deterministic random
// inputs, relative error, host <-> device copies, event timing, and the lines each lab prints.
// The version of a kernel that ships is not copied into a lab: the lab includes its family's source (model/cuda/X.cu
// or lora/cuda/X.cu, dev/README.md's kernel families), whose own checks (CUDA_CHECK, model/cuda/cuda_check.h) throw
// Error; an uncaught one ends the lab with its message.
// Exit status: 0 when every check passed, 1 when one failed, 2 on a CUDA or cuBLAS error or a bad argument.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "model/cuda/event_timer.cuh"

inline void lab_check(cudaError_t status, const char* call, const char* file, int line) {
    if (status == cudaSuccess) return;
    std::fprintf(stderr, "CUDA error: %s in %s at %s:%d\n", cudaGetErrorString(status), call, file, line);
    std::exit(2);
}

inline void lab_check(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    std::fprintf(stderr, "cuBLAS error: %s in %s at %s:%d\n", cublasGetStatusString(status), call, file, line);
    std::exit(2);
}

#define CHECK_CUDA(call) lab_check((call), #call, __FILE__, __LINE__)
#define CHECK_CUBLAS(call) lab_check((call), #call, __FILE__, __LINE__)
#define CHECK_LAUNCH() CHECK_CUDA(cudaGetLastError())

// count uniform values in [low, high) from a 64-bit LCG: the same inputs on every run and machine.
inline std::vector<float> random_floats(size_t count, uint64_t seed, float low = -1.0f, float high = 1.0f) {
    std::vector<float> values(count);
    uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (float& value : values) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        value = float(low + (high - low) * (double(state >> 11) * (1.0 / 9007199254740992.0)));
    }
    return values;
}

// Whether two outputs are the same to the bit (a kernel that must repeat, or match the CPU reference exactly).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ||a - b|| / ||b|| over the first a.size() elements (b may be longer): NaN anywhere makes it NaN, which fails
// every `error < tolerance`.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < a.size(); i++) {
        const double d = double(a[i]) - double(b[i]);
        difference += d * d;
        reference += double(b[i]) * double(b[i]);
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

template <typename T>
void upload(T* device, const std::vector<T>& host) {
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
}

// a new device buffer holding a copy of host (free it with cudaFree)
template <typename T>
T* to_device(const std::vector<T>& host) {
    T* device;
    CHECK_CUDA(cudaMalloc(&device, std::max<size_t>(host.size(), 1) * sizeof(T)));
    upload(device, host);
    return device;
}

template <typename T>
std::vector<T> download(const T* device, size_t count) {
    std::vector<T> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
}

// Milliseconds per call of launch(): one warm-up call, then `repeats` calls between two CUDA events (fewer when
// one call takes long: about half a second in all).
template <typename Launch>
float time_ms(Launch&& launch, int repeats = 20) {
    launch();
    const float first = event_time_ms(1, launch);
    const int calls = std::clamp(int(500.0f / std::max(first, 1e-3f)), 1, repeats);
    return event_time_ms(calls, launch) / calls;
}

// printf into a string
__attribute__((format(printf, 1, 2))) inline std::string format(const char* pattern, ...) {
    va_list arguments;
    va_start(arguments, pattern);
    char buffer[512];
    std::vsnprintf(buffer, sizeof buffer, pattern, arguments);
    va_end(arguments);
    return buffer;
}

// One result line: "<what>  relative error 1.23e-07 ok  [0.1234 ms  2345.6 GB/s]  [note]", the timing when
// ms >= 0 (GB/s from the bytes the call must move, when given). Returns whether error < tolerance.
inline bool print_result(const std::string& what, double error, double tolerance, float ms = -1.0f, double bytes = 0.0,
                         const std::string& note = "") {
    const bool pass = error < tolerance;
    std::printf("%-34s relative error %.2e %-4s", what.c_str(), error, pass ? "ok" : "FAIL");
    if (ms >= 0.0f) std::printf("  %8.4f ms", ms);
    if (ms > 0.0f && bytes > 0.0) std::printf("  %7.1f GB/s", bytes / ms * 1e-6);
    std::printf("%s%s\n", note.empty() ? "" : "  ", note.c_str());
    return pass;
}

inline void print_device() {
    cudaDeviceProp properties;
    CHECK_CUDA(cudaGetDeviceProperties(&properties, 0));
    std::printf("device: %s\n", properties.name);
}

// The versions to run: every one of 1..count, or only the one named on the command line (`./build/lab/x 2`).
inline std::vector<int> versions_to_run(int argc, char** argv, int count) {
    const int only = argc > 1 ? std::atoi(argv[1]) : 0;
    if (argc > 2 || only < 0 || only > count || (argc > 1 && only == 0)) {
        std::fprintf(stderr, "usage: %s [version: 1 to %d]\n", argv[0], count);
        std::exit(2);
    }
    std::vector<int> versions;
    for (int version = 1; version <= count; version++)
        if (only == 0 || only == version) versions.push_back(version);
    return versions;
}

// The note for a version run twice on the same input; `required`: it must give bit-identical results.
inline std::string repeatability(bool identical, bool required) {
    return identical ? "bit-identical runs" : required ? "runs differ: FAIL" : "runs differ (atomics)";
}

// "<what> 0.123 ms 2345 GB/s": one timing for the summary line, GB/s from the bytes the call must move.
inline std::string timing(const char* what, float ms, double bytes) {
    return format("%s %.3f ms %.0f GB/s", what, ms, bytes / ms * 1e-6);
}

// The lab's last line, which dev/gpu_check.sh shows in its table (its first 70 characters):
// "<lab>: check ok | <shipped>", shipped being the timings of the version that ships. Returns the exit status.
inline int finish(const char* lab, bool ok, const std::string& shipped) {
    std::printf("%s: check %s | %s\n", lab, ok ? "ok" : "FAIL", shipped.c_str());
    return ok ? 0 : 1;
}
