// The sum of squares behind the global gradient norm (gradient clipping) on the GPU, in double and deterministic.
// Math as model/cpu/global_norm.h. Lab: dev/cuda/global_norm.cu.
#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int kThreads = 256;
// sum_of_squares always runs this many blocks, whatever N and whatever the GPU: each element goes to the
// same thread and the partial sums meet in the same order every time, so the result is bit-identical run to
// run (and across GPUs).
constexpr int kSumBlocks = 1024;

// Stage 1: partials (kSumBlocks) = per-block sums of x^2 over a grid-stride loop, in double
// (a float squared is exact in double).
__global__ void sum_of_squares_kernel(double* __restrict__ partials, const float* __restrict__ x, size_t N) {
    double sum = 0.0;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N; i += size_t(gridDim.x) * blockDim.x) {
        double value = x[i];
        sum += value * value;
    }
    double total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Stage 2, one block: result = sum of the count partials, thread i taking i, i + kThreads, ... in order.
__global__ void sum_partials_kernel(double* __restrict__ result, const double* __restrict__ partials, int count) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    double total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) *result = total;
}

DeviceScratch<double> partial_scratch;  // sum_of_squares' kSumBlocks partials
DeviceScratch<double> result_scratch;   // sum_partials' result

}  // namespace

namespace cuda {

// sum_i x_i^2 over x (N), in double, deterministic.
double sum_of_squares(const float* x, size_t N) {
    if (N == 0) return 0.0;
    double* partials = partial_scratch.get(kSumBlocks);
    sum_of_squares_kernel<<<kSumBlocks, kThreads>>>(partials, x, N);
    CUDA_CHECK_LAUNCH();
    return sum_partials(partials, kSumBlocks);
}

double sum_partials(const double* partials, int count) {
    double* result = result_scratch.get(1);
    sum_partials_kernel<<<1, kThreads>>>(result, partials, count);
    CUDA_CHECK_LAUNCH();
    double total = 0.0;
    CUDA_CHECK(cudaMemcpy(&total, result, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}

}  // namespace cuda
