// Kernel lab: the sum of squares behind the global gradient norm (gradient clipping): sum_i x_i^2, in double,
// returned to the host.
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for GPT-2 124M's parameter count (124,475,904 with the vocabulary padded to 50304).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/global_norm
// Exits non-zero when a version disagrees with the reference, or version 2 is not bit-identical run to run.
// The last line sums up the shipped version (2).
//
// Versions (each accumulates squares in double: a float squared is exact in double):
//   1. one block per 256 * 16 elements, block sums by warp shuffles, then one atomicAdd (double) per block into
//      the result: the blocks arrive in a different order each run, so the last bits can change
//   2. deterministic: cuda::sum_of_squares, model/cuda/global_norm.cu (included below, not copied): always 1024
//      blocks of 256 threads, each thread a grid-stride loop, block sums in a fixed shuffle order into 1024
//      partials, then one block sums the partials in a fixed order. The same grid whatever N and GPU:
//      bit-identical results everywhere.
// The timings include copying the result to the host, as the training step does.
#include <cstring>

#include "dev/cuda/lab_common.h"
// version 2; also block_sum (block_reduce.cuh) and kThreads (256), which version 1 uses
#include "model/cuda/global_norm.cu"

constexpr int kElementsPerThread1 = 16;  // version 1

// ---------------------------------------------------------------------------------------------------------
// CPU reference

double sum_of_squares_cpu(const float* x, size_t N) {
    double total = 0;
    for (size_t i = 0; i < N; i++) total += double(x[i]) * double(x[i]);
    return total;
}

// ---------------------------------------------------------------------------------------------------------
// Kernels (version 2 is model/cuda/global_norm.cu's)

// version 1: each block sums kThreads * kElementsPerThread1 elements, then atomically adds into *result
__global__ void sum_of_squares_kernel1(double* result, const float* __restrict__ x, size_t N) {
    size_t base = size_t(blockIdx.x) * kThreads * kElementsPerThread1 + threadIdx.x;
    double sum = 0.0;
    for (int k = 0; k < kElementsPerThread1; k++) {
        size_t i = base + size_t(k) * kThreads;
        if (i < N) sum += double(x[i]) * double(x[i]);
    }
    double total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) atomicAdd(result, total);
}

double* result1 = nullptr;  // device: version 1's result

double sum_of_squares(int version, const float* x, size_t N) {
    if (version == 2) return cuda::sum_of_squares(x, N);
    CHECK_CUDA(cudaMemsetAsync(result1, 0, sizeof(double)));
    sum_of_squares_kernel1<<<ceil_div(N, size_t(kThreads) * kElementsPerThread1), kThreads>>>(result1, x, N);
    CHECK_LAUNCH();
    double total = 0.0;
    CHECK_CUDA(cudaMemcpy(&total, result1, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    // GPT-2 124M: wte (Vp=50304, C) + wpe (1024, C) + 12 layers of 12 C^2 + 13 C + the final layernorm's 2 C
    const size_t C = 768, L = 12, N = 50304 * C + 1024 * C + L * (12 * C * C + 13 * C) + 2 * C;
    // both sides add exact squares in double, in different orders: they differ by far less than this
    const double tolerance = 1e-9;
    bool ok = true;
    std::string shipped;

    std::vector<float> x = random_floats(N, 1);
    float* d_x = to_device(x);
    CHECK_CUDA(cudaMalloc(&result1, sizeof(double)));
    std::printf("sum of squares, N=%zu (GPT-2 124M's parameter count)\n", N);

    // the full N, and small odd sizes (fewer elements than threads, and than one block)
    for (size_t n : {N, size_t(7), size_t(64 * 33 + 1)}) {
        const double expected = sum_of_squares_cpu(x.data(), n);
        for (int version = 1; version <= 2; version++) {
            double first = sum_of_squares(version, d_x, n), second = sum_of_squares(version, d_x, n);
            double error = std::abs(first - expected) / expected;
            bool deterministic = std::memcmp(&first, &second, sizeof(double)) == 0;
            ok &= deterministic || version == 1;
            const std::string note = repeatability(deterministic, version == 2);
            if (n != N) {
                ok &= print_result(format("version %d, N=%zu", version, n), error, tolerance, -1.0f, 0.0, note);
                continue;
            }
            float ms = time_ms([&] { sum_of_squares(version, d_x, N); });
            const double bytes = double(N) * sizeof(float);
            ok &= print_result(format("version %d", version), error, tolerance, ms, bytes, note);
            if (version == 2) shipped = timing("sum", ms, bytes);
        }
    }

    CHECK_CUDA(cudaFree(d_x));
    CHECK_CUDA(cudaFree(result1));
    return finish("global_norm", ok, shipped);
}
