// Kernel lab: the sum of squares behind the global gradient norm (gradient clipping): sum_i x_i^2, in double,
// returned to the host.
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for GPT-2 124M's parameter count (124,475,904 with the vocabulary padded to 50304).
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/global_norm.cu -o build/lab/global_norm
//        -lcublas                (one command line)
//   ./build/lab/global_norm      (or `make lab`)
// Exits non-zero when a version disagrees with the reference, or version 2 is not bit-identical run to run.
//
// Versions (each accumulates squares in double: a float squared is exact in double):
//   1. one block per 256 * 16 elements, block sums by warp shuffles, then one atomicAdd (double) per block into
//      the result: the blocks arrive in a different order each run, so the last bits can change
//   2. deterministic (model/cuda/optimizer.cu, sum_of_squares): always 1024 blocks of 256 threads, each thread a
//      grid-stride loop, block sums in a fixed shuffle order into 1024 partials, then one block sums the
//      partials in a fixed order. The same grid whatever N and GPU: bit-identical results everywhere.
// The timings include copying the result to the host, as the training step does.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK_CUDA(call)                                                                                   \
    do {                                                                                                   \
        cudaError_t status_ = (call);                                                                      \
        if (status_ != cudaSuccess) {                                                                      \
            std::fprintf(stderr, "CUDA error: %s in %s at %s:%d\n", cudaGetErrorString(status_), #call,    \
                         __FILE__, __LINE__);                                                              \
            std::exit(1);                                                                                  \
        }                                                                                                  \
    } while (0)
#define CHECK_LAUNCH() CHECK_CUDA(cudaGetLastError())

constexpr int kThreads = 256;
constexpr int kElementsPerThread1 = 16;  // version 1
constexpr int kBlocks2 = 1024;           // version 2

// ---------------------------------------------------------------------------------------------------------
// CPU reference

double sum_of_squares_cpu(const float* x, size_t N) {
    double total = 0;
    for (size_t i = 0; i < N; i++) total += double(x[i]) * double(x[i]);
    return total;
}

// ---------------------------------------------------------------------------------------------------------
// Kernels

__device__ inline double warp_sum(double value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

// fixed-order sum over a block of kThreads threads; valid in thread 0
__device__ inline double block_sum(double value) {
    __shared__ double warp_totals[kThreads / 32];
    value = warp_sum(value);
    if (threadIdx.x % 32 == 0) warp_totals[threadIdx.x / 32] = value;
    __syncthreads();
    double total = 0.0;
    if (threadIdx.x < 32) total = warp_sum(threadIdx.x < kThreads / 32 ? warp_totals[threadIdx.x] : 0.0);
    return total;
}

// version 1: each block sums kThreads * kElementsPerThread1 elements, then atomically adds into *result
__global__ void sum_of_squares_kernel1(double* result, const float* __restrict__ x, size_t N) {
    size_t base = size_t(blockIdx.x) * kThreads * kElementsPerThread1 + threadIdx.x;
    double sum = 0.0;
    for (int k = 0; k < kElementsPerThread1; k++) {
        size_t i = base + size_t(k) * kThreads;
        if (i < N) sum += double(x[i]) * double(x[i]);
    }
    double total = block_sum(sum);
    if (threadIdx.x == 0) atomicAdd(result, total);
}

// version 2 (model/cuda/optimizer.cu), stage 1: kBlocks2 partials from grid-stride loops
__global__ void sum_of_squares_kernel2(double* __restrict__ partials, const float* __restrict__ x, size_t N) {
    double sum = 0.0;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N; i += size_t(gridDim.x) * blockDim.x)
        sum += double(x[i]) * double(x[i]);
    double total = block_sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// version 2, stage 2: one block sums the partials in a fixed order
__global__ void sum_partials_kernel2(double* __restrict__ result, const double* __restrict__ partials, int count) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    double total = block_sum(sum);
    if (threadIdx.x == 0) *result = total;
}

double* scratch = nullptr;  // device: kBlocks2 partials, then the result

double sum_of_squares(int version, const float* x, size_t N) {
    double* result = scratch + kBlocks2;
    if (version == 1) {
        CHECK_CUDA(cudaMemsetAsync(result, 0, sizeof(double)));
        size_t per_block = size_t(kThreads) * kElementsPerThread1;
        sum_of_squares_kernel1<<<unsigned((N + per_block - 1) / per_block), kThreads>>>(result, x, N);
        CHECK_LAUNCH();
    } else {
        sum_of_squares_kernel2<<<kBlocks2, kThreads>>>(scratch, x, N);
        CHECK_LAUNCH();
        sum_partials_kernel2<<<1, kThreads>>>(result, scratch, kBlocks2);
        CHECK_LAUNCH();
    }
    double total = 0.0;
    CHECK_CUDA(cudaMemcpy(&total, result, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}

// ---------------------------------------------------------------------------------------------------------
// Harness

std::vector<float> random_floats(size_t count, uint64_t seed) {
    std::vector<float> values(count);
    uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (auto& value : values) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        value = float(double(state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
    }
    return values;
}

template <typename Launch>
float time_ms(Launch launch, int repeats = 20) {
    launch();
    CHECK_CUDA(cudaDeviceSynchronize());
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventRecord(start));
    for (int r = 0; r < repeats; r++) launch();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    return ms / repeats;
}

int main() {
    // GPT-2 124M: wte (Vp=50304, C) + wpe (1024, C) + 12 layers of 12 C^2 + 13 C + the final layernorm's 2 C
    const size_t C = 768, L = 12, N = 50304 * C + 1024 * C + L * (12 * C * C + 13 * C) + 2 * C;
    // both sides add exact squares in double, in different orders: they differ by far less than this
    const double tolerance = 1e-9;
    bool ok = true;

    std::vector<float> x = random_floats(N, 1);
    float* d_x;
    CHECK_CUDA(cudaMalloc(&d_x, N * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(d_x, x.data(), N * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMalloc(&scratch, (kBlocks2 + 1) * sizeof(double)));
    std::printf("sum of squares, N=%zu (GPT-2 124M's parameter count)\n", N);

    // the full N, and small odd sizes (fewer elements than threads, and than one block)
    for (size_t n : {N, size_t(7), size_t(64 * 33 + 1)}) {
        const double expected = sum_of_squares_cpu(x.data(), n);
        for (int version = 1; version <= 2; version++) {
            double first = sum_of_squares(version, d_x, n), second = sum_of_squares(version, d_x, n);
            double error = std::abs(first - expected) / expected;
            bool deterministic = std::memcmp(&first, &second, sizeof(double)) == 0;
            bool pass = error < tolerance && (version == 1 || deterministic);
            ok = ok && pass;
            if (n != N) {
                std::printf("version %d, N=%zu: relative error %.2e %s\n", version, n, error, pass ? "ok" : "FAIL");
                continue;
            }
            float ms = time_ms([&] { sum_of_squares(version, d_x, N); });
            std::printf("version %d: relative error %.2e %s  %8.4f ms  %7.1f GB/s  %s\n", version, error,
                        pass ? "ok  " : "FAIL", ms, double(N) * sizeof(float) / ms * 1e-6,
                        deterministic ? "bit-identical runs" : "runs differ (atomics)");
        }
    }

    cudaFree(d_x);
    cudaFree(scratch);
    std::printf(ok ? "all versions match the reference\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
