// Kernel lab: the fused classifier (softmax + cross-entropy + dlogits in one pass over each row of logits).
// Build and run (on a GPU host):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/classifier.cu -o build/lab/classifier -lcublas
//   ./build/lab/classifier        every version;   ./build/lab/classifier 2   version 2 only
// (or `make lab`). Each version is checked against the CPU reference below at small and odd shapes, then timed at
// GPT-2 124M shapes (N = B*T = 8192 rows, V = 50257, Vp = 50304). Exits non-zero when a check fails.
//
// The math, for row i of logits z (N,Vp), of which only the first V columns are real tokens:
//   loss_i = log(sum_{v<V} exp(z_v)) - z_target = log(sum_v exp(z_v - max)) + max - z_target
//   dlogits_i,v = (softmax(z)_v - [v == target]) * weight_i / weight_sum   (v < V; 0 for V <= v < Vp, and
//                 scale 0 when weight_sum <= 0)
// The probabilities are never stored. losses or dlogits may be null (eval: losses only).
// Versions:
//   1  naive: one thread per row, three serial passes (max, sum, write).
//   2  one block per row: each thread keeps a running (max, sum) over its columns (online softmax), merged across
//      the block in a fixed order; a second pass writes dlogits; float4 loads and stores when Vp % 4 == 0.
//      THIS IS THE VERSION IN model/cuda/classifier.cu.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK_CUDA(call)                                                                               \
    do {                                                                                               \
        cudaError_t status_ = (call);                                                                  \
        if (status_ != cudaSuccess) {                                                                  \
            std::fprintf(stderr, "CUDA error %s in %s at %s:%d\n", cudaGetErrorString(status_), #call, \
                         __FILE__, __LINE__);                                                          \
            std::exit(2);                                                                              \
        }                                                                                              \
    } while (0)
#define CHECK_LAUNCH() CHECK_CUDA(cudaGetLastError())

static int ceil_div(size_t a, size_t b) { return int((a + b - 1) / b); }

// ---------------------------------------------------------------------------------------------------------------
// CPU reference: plain loops, double accumulators. losses (N) or null; dlogits (N,Vp) or null.

void classifier_cpu(float* losses, float* dlogits, const float* logits, const int* targets, const float* weights,
                    double weight_sum, int N, int V, int Vp) {
    for (int i = 0; i < N; i++) {
        const float* z = logits + size_t(i) * Vp;
        double max_logit = z[0], sum = 0;
        for (int v = 1; v < V; v++) max_logit = std::max(max_logit, double(z[v]));
        for (int v = 0; v < V; v++) sum += std::exp(z[v] - max_logit);
        if (losses) losses[i] = float(std::log(sum) + max_logit - z[targets[i]]);
        if (!dlogits) continue;
        double scale = weight_sum > 0 ? weights[i] / weight_sum : 0.0;
        for (int v = 0; v < Vp; v++)
            dlogits[size_t(i) * Vp + v] =
                v < V ? float((std::exp(z[v] - max_logit) / sum - (v == targets[i] ? 1.0 : 0.0)) * scale) : 0.0f;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Version 1: naive, one thread per row.

__global__ void classifier_naive_kernel(float* losses, float* dlogits, const float* logits, const int* targets,
                                        const float* weights, double weight_sum, int N, int V, int Vp) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float* z = logits + size_t(i) * Vp;
    float max_logit = z[0], sum = 0.0f;
    for (int v = 1; v < V; v++) max_logit = fmaxf(max_logit, z[v]);
    for (int v = 0; v < V; v++) sum += expf(z[v] - max_logit);
    if (losses) losses[i] = logf(sum) + max_logit - z[targets[i]];
    if (!dlogits) return;
    float scale = weight_sum > 0.0 ? float(weights[i] / weight_sum) : 0.0f;
    for (int v = 0; v < Vp; v++)
        dlogits[size_t(i) * Vp + v] =
            v < V ? (expf(z[v] - max_logit) / sum - (v == targets[i] ? 1.0f : 0.0f)) * scale : 0.0f;
}

// ---------------------------------------------------------------------------------------------------------------
// Version 2: one block per row, online softmax, block merge, float4 (model/cuda/classifier.cu).

constexpr int MAX_THREADS = 1024;

struct MaxSum {
    float max;
    float sum;  // of exp(x - max) over the values seen
};

__device__ void accumulate(MaxSum& a, float x) {
    if (x > a.max) {
        a.sum = a.sum * expf(a.max - x) + 1.0f;
        a.max = x;
    } else {
        a.sum += expf(x - a.max);
    }
}

__device__ MaxSum merge(MaxSum a, MaxSum b) {
    MaxSum merged;
    merged.max = fmaxf(a.max, b.max);
    merged.sum = (a.sum > 0.0f ? a.sum * expf(a.max - merged.max) : 0.0f) +
                 (b.sum > 0.0f ? b.sum * expf(b.max - merged.max) : 0.0f);
    return merged;
}

__device__ MaxSum warp_merge(MaxSum value) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        MaxSum other;
        other.max = __shfl_xor_sync(0xFFFFFFFFu, value.max, offset);
        other.sum = __shfl_xor_sync(0xFFFFFFFFu, value.sum, offset);
        value = merge(value, other);
    }
    return value;
}

__device__ MaxSum block_merge(MaxSum value) {
    __shared__ float warp_max[32], warp_sum[32];
    __shared__ MaxSum result;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    value = warp_merge(value);
    if (lane == 0) {
        warp_max[warp] = value.max;
        warp_sum[warp] = value.sum;
    }
    __syncthreads();
    if (warp == 0) {
        MaxSum partial = lane < warps ? MaxSum{warp_max[lane], warp_sum[lane]} : MaxSum{-INFINITY, 0.0f};
        partial = warp_merge(partial);
        if (lane == 0) result = partial;
    }
    __syncthreads();
    return result;
}

template <bool VECTOR>
__global__ void __launch_bounds__(MAX_THREADS)
    classifier_block_kernel(float* __restrict__ losses, float* __restrict__ dlogits, const float* __restrict__ logits,
                            const int* __restrict__ targets, const float* __restrict__ weights, double weight_sum,
                            int V, int Vp) {
    const int row = blockIdx.x;
    const float* z = logits + size_t(row) * Vp;
    const int target = targets[row];
    MaxSum thread_pair{-INFINITY, 0.0f};
    int scalar_start = 0;
    if (VECTOR) {
        const float4* z4 = reinterpret_cast<const float4*>(z);
        for (int i = threadIdx.x; i < V / 4; i += blockDim.x) {
            float4 x = z4[i];
            accumulate(thread_pair, x.x);
            accumulate(thread_pair, x.y);
            accumulate(thread_pair, x.z);
            accumulate(thread_pair, x.w);
        }
        scalar_start = V / 4 * 4;
    }
    for (int v = scalar_start + threadIdx.x; v < V; v += blockDim.x) accumulate(thread_pair, z[v]);
    const MaxSum row_pair = block_merge(thread_pair);
    if (losses && threadIdx.x == 0) losses[row] = logf(row_pair.sum) + row_pair.max - z[target];
    if (!dlogits) return;

    const float scale = weight_sum > 0.0 ? float(double(weights[row]) / weight_sum) : 0.0f;
    const float inverse_sum = 1.0f / row_pair.sum;
    float* dz = dlogits + size_t(row) * Vp;
    auto gradient = [&](float x, int v) {
        return v < V ? (expf(x - row_pair.max) * inverse_sum - (v == target ? 1.0f : 0.0f)) * scale : 0.0f;
    };
    if (VECTOR) {
        const float4* z4 = reinterpret_cast<const float4*>(z);
        float4* dz4 = reinterpret_cast<float4*>(dz);
        for (int i = threadIdx.x; i < Vp / 4; i += blockDim.x) {
            float4 x = __ldcs(z4 + i);
            const int v = 4 * i;
            __stcs(dz4 + i, make_float4(gradient(x.x, v), gradient(x.y, v + 1), gradient(x.z, v + 2),
                                        gradient(x.w, v + 3)));
        }
    } else {
        for (int v = threadIdx.x; v < Vp; v += blockDim.x) dz[v] = gradient(__ldcs(z + v), v);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Driver.

void fused_classifier(int version, float* losses, float* dlogits, const float* logits, const int* targets,
                      const float* weights, double weight_sum, int N, int V, int Vp) {
    if (version == 1) {
        classifier_naive_kernel<<<ceil_div(N, 128), 128>>>(losses, dlogits, logits, targets, weights, weight_sum, N, V,
                                                           Vp);
        CHECK_LAUNCH();
        return;
    }
    auto aligned = [](const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; };
    const bool vector = Vp % 4 == 0 && aligned(logits) && (!dlogits || aligned(dlogits));
    const int threads = std::min(MAX_THREADS, std::max(32, ceil_div(ceil_div(Vp, vector ? 4 : 1), 32) * 32));
    if (vector)
        classifier_block_kernel<true><<<N, threads>>>(losses, dlogits, logits, targets, weights, weight_sum, V, Vp);
    else
        classifier_block_kernel<false><<<N, threads>>>(losses, dlogits, logits, targets, weights, weight_sum, V, Vp);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------------
// Check and timing.

std::vector<float> random_floats(size_t count, uint64_t seed, float low, float high) {
    std::vector<float> values(count);
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (float& value : values) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        value = low + (high - low) * float(double(state >> 11) / 9007199254740992.0);
    }
    return values;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < a.size(); i++) {
        difference += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        reference += double(b[i]) * b[i];
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

template <typename T>
T* to_device(const std::vector<T>& host) {
    T* device;
    CHECK_CUDA(cudaMalloc(&device, host.size() * sizeof(T)));
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return device;
}

std::vector<float> to_host(const float* device, size_t count) {
    std::vector<float> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost));
    return host;
}

// Random logits, targets spread over [0, V) (the last row's target the last real column), weights with zeros.
struct Inputs {
    std::vector<float> logits, weights;
    std::vector<int> targets;
    double weight_sum = 0;
};

Inputs make_inputs(int N, int V, int Vp) {
    Inputs in;
    in.logits = random_floats(size_t(N) * Vp, 1, -4, 4);
    in.weights = random_floats(N, 2, 0, 2);
    in.targets.resize(N);
    for (int i = 0; i < N; i++) {
        in.targets[i] = i == N - 1 ? V - 1 : int((uint64_t(i) * 7919 + 3) % V);
        if (i % 3 == 1) in.weights[i] = 0.0f;  // a masked position
        in.weight_sum += in.weights[i];
    }
    return in;
}

// Runs one version at one shape against the CPU reference, with and without dlogits; prints and returns whether
// it passed.
bool check(int version, int N, int V, int Vp) {
    const double tolerance = 1e-5;  // relative error ||gpu - cpu|| / ||cpu||, as the project's tests
    Inputs in = make_inputs(N, V, Vp);
    std::vector<float> losses(N), dlogits(in.logits.size());
    classifier_cpu(losses.data(), dlogits.data(), in.logits.data(), in.targets.data(), in.weights.data(),
                   in.weight_sum, N, V, Vp);
    float *d_logits = to_device(in.logits), *d_weights = to_device(in.weights);
    int* d_targets = to_device(in.targets);
    float* d_losses = to_device(std::vector<float>(N, NAN));  // poisoned: every element must be written
    float* d_dlogits = to_device(std::vector<float>(dlogits.size(), NAN));
    fused_classifier(version, d_losses, d_dlogits, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
    double error_losses = relative_error(to_host(d_losses, N), losses);
    double error_dlogits = relative_error(to_host(d_dlogits, dlogits.size()), dlogits);
    CHECK_CUDA(cudaMemcpy(d_losses, std::vector<float>(N, NAN).data(), N * sizeof(float), cudaMemcpyHostToDevice));
    fused_classifier(version, d_losses, nullptr, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
    double error_losses_only = relative_error(to_host(d_losses, N), losses);
    bool ok = error_losses < tolerance && error_dlogits < tolerance && error_losses_only < tolerance;
    std::printf("version %d  N=%d V=%d Vp=%d  relative error losses %.2e dlogits %.2e (losses only %.2e)  %s\n",
                version, N, V, Vp, error_losses, error_dlogits, error_losses_only, ok ? "ok" : "FAILED");
    for (void* buffer : {(void*)d_logits, (void*)d_weights, (void*)d_targets, (void*)d_losses, (void*)d_dlogits})
        CHECK_CUDA(cudaFree(buffer));
    return ok;
}

template <typename F>
float time_ms(F&& run) {
    run();  // warm up
    CHECK_CUDA(cudaDeviceSynchronize());
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventRecord(start));
    run();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float first = 0;
    CHECK_CUDA(cudaEventElapsedTime(&first, start, stop));
    const int repeats = std::max(1, std::min(20, int(500.0f / std::max(first, 1e-3f))));  // about half a second
    CHECK_CUDA(cudaEventRecord(start));
    for (int i = 0; i < repeats; i++) run();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float total = 0;
    CHECK_CUDA(cudaEventElapsedTime(&total, start, stop));
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    return total / repeats;
}

int main(int argc, char** argv) {
    const int only = argc > 1 ? std::atoi(argv[1]) : 0;
    std::vector<int> versions;
    for (int version : {1, 2})
        if (only == 0 || only == version) versions.push_back(version);
    if (versions.empty()) {
        std::fprintf(stderr, "usage: %s [version: 1 or 2]\n", argv[0]);
        return 2;
    }
    cudaDeviceProp properties;
    CHECK_CUDA(cudaGetDeviceProperties(&properties, 0));
    std::printf("device: %s\n", properties.name);

    bool ok = true;
    struct Shape {
        int N, V, Vp;
    } shapes[] = {{1, 1, 1}, {5, 67, 128}, {6, 67, 67}, {4, 129, 130}, {64, 50257, 50304}};
    for (int version : versions)
        for (const Shape& s : shapes) ok &= check(version, s.N, s.V, s.Vp);

    // timing at GPT-2 124M shapes. Bandwidth counts the least traffic the kernel must cause: logits read once
    // (N*Vp floats), plus dlogits written once when it is computed.
    const int N = 8192, V = 50257, Vp = 50304;
    Inputs in = make_inputs(N, V, Vp);
    float *d_logits = to_device(in.logits), *d_weights = to_device(in.weights);
    int* d_targets = to_device(in.targets);
    float *d_losses, *d_dlogits;
    CHECK_CUDA(cudaMalloc(&d_losses, N * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dlogits, in.logits.size() * sizeof(float)));
    const double row_bytes = double(N) * Vp * sizeof(float);
    std::printf("timing at N=%d V=%d Vp=%d\n", N, V, Vp);
    for (int version : versions) {
        float both_ms = time_ms([&] {
            fused_classifier(version, d_losses, d_dlogits, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
        });
        float losses_ms = time_ms([&] {
            fused_classifier(version, d_losses, nullptr, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
        });
        std::printf("version %d  losses + dlogits %8.3f ms %7.1f GB/s   losses only %8.3f ms %7.1f GB/s\n", version,
                    both_ms, 2 * row_bytes / (both_ms * 1e-3) / 1e9, losses_ms, row_bytes / (losses_ms * 1e-3) / 1e9);
    }
    for (void* buffer : {(void*)d_logits, (void*)d_weights, (void*)d_targets, (void*)d_losses, (void*)d_dlogits})
        CHECK_CUDA(cudaFree(buffer));
    std::printf("%s\n", ok ? "all checks passed" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
}
