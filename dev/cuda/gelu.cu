// Kernel lab: GELU (tanh form), forward and backward.
//   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   dx += dy * (0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for a GPT-2 124M-sized shape (the MLP activation: B*T*4C = 8*1024*3072 floats).
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/gelu.cu -o build/lab/gelu -lcublas
//   ./build/lab/gelu             (or `make lab`)
// Exits non-zero when a version disagrees with the reference.
//
// Versions (forward and backward alike):
//   1. one thread per element, scalar loads (model/cuda/elementwise.cu: simple, and any N and alignment)
//   2. one thread per float4, 16-byte loads and stores; the N % 4 tail handled by the first threads
// Both are memory-bound; version 2 issues a quarter of the memory instructions.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

constexpr float kScale = float(0.7978845608028654);  // sqrt(2 / pi)
constexpr float kCubic = float(0.044715);
constexpr float kCubic3 = float(3 * 0.044715);

// ---------------------------------------------------------------------------------------------------------
// CPU reference

void gelu_forward_cpu(float* out, const float* inp, size_t N) {
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + std::tanh(kScale * (x + kCubic * x * x * x)));
    }
}

void gelu_backward_cpu(float* dinp, const float* inp, const float* dout, size_t N) {
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float th = std::tanh(kScale * (x + kCubic * x * x * x));
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kScale * (1.0f + kCubic3 * x * x));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Kernels

__device__ inline float gelu(float x) { return 0.5f * x * (1.0f + tanhf(kScale * (x + kCubic * x * x * x))); }

__device__ inline float gelu_derivative(float x) {
    float th = tanhf(kScale * (x + kCubic * x * x * x));
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * (kScale * (1.0f + kCubic3 * x * x));
}

// version 1 (model/cuda/elementwise.cu): one thread per element
__global__ void gelu_forward_kernel1(float* __restrict__ out, const float* __restrict__ inp, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < N) out[i] = gelu(inp[i]);
}

__global__ void gelu_backward_kernel1(float* __restrict__ dinp, const float* __restrict__ inp,
                                      const float* __restrict__ dout, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < N) dinp[i] += dout[i] * gelu_derivative(inp[i]);
}

// version 2: one thread per float4 (16-byte aligned pointers), then the N % 4 tail
__global__ void gelu_forward_kernel2(float* __restrict__ out, const float* __restrict__ inp, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    size_t vectors = N / 4;
    if (i < vectors) {
        float4 x = reinterpret_cast<const float4*>(inp)[i];
        reinterpret_cast<float4*>(out)[i] = make_float4(gelu(x.x), gelu(x.y), gelu(x.z), gelu(x.w));
    }
    if (i < N % 4) out[vectors * 4 + i] = gelu(inp[vectors * 4 + i]);
}

__global__ void gelu_backward_kernel2(float* __restrict__ dinp, const float* __restrict__ inp,
                                      const float* __restrict__ dout, size_t N) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    size_t vectors = N / 4;
    if (i < vectors) {
        float4 x = reinterpret_cast<const float4*>(inp)[i];
        float4 dy = reinterpret_cast<const float4*>(dout)[i];
        float4 dx = reinterpret_cast<float4*>(dinp)[i];
        dx.x += dy.x * gelu_derivative(x.x);
        dx.y += dy.y * gelu_derivative(x.y);
        dx.z += dy.z * gelu_derivative(x.z);
        dx.w += dy.w * gelu_derivative(x.w);
        reinterpret_cast<float4*>(dinp)[i] = dx;
    }
    if (i < N % 4) {
        size_t j = vectors * 4 + i;
        dinp[j] += dout[j] * gelu_derivative(inp[j]);
    }
}

unsigned blocks_for(size_t threads_needed) { return unsigned((std::max<size_t>(threads_needed, 4) + 255) / 256); }

void gelu_forward(int version, float* out, const float* inp, size_t N) {
    if (version == 1)
        gelu_forward_kernel1<<<blocks_for(N), 256>>>(out, inp, N);
    else
        gelu_forward_kernel2<<<blocks_for(N / 4), 256>>>(out, inp, N);
    CHECK_LAUNCH();
}

void gelu_backward(int version, float* dinp, const float* inp, const float* dout, size_t N) {
    if (version == 1)
        gelu_backward_kernel1<<<blocks_for(N), 256>>>(dinp, inp, dout, N);
    else
        gelu_backward_kernel2<<<blocks_for(N / 4), 256>>>(dinp, inp, dout, N);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Harness

std::vector<float> random_floats(size_t count, uint64_t seed, float low, float high) {
    std::vector<float> values(count);
    uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (auto& value : values) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        value = float(low + (high - low) * (double(state >> 11) * (1.0 / 9007199254740992.0)));
    }
    return values;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double d = double(a[i]) - double(b[i]);
        difference += d * d;
        reference += double(b[i]) * double(b[i]);
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

float* to_device(const std::vector<float>& host) {
    float* device;
    CHECK_CUDA(cudaMalloc(&device, host.size() * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    return device;
}

std::vector<float> download(const float* device, size_t count) {
    std::vector<float> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost));
    return host;
}

template <typename Launch>
float time_ms(Launch launch, int repeats = 50) {
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
    const int B = 8, T = 1024, C = 768;
    const size_t N = size_t(B) * T * 4 * C;
    const double tolerance = 1e-5;
    bool ok = true;

    std::vector<float> inp = random_floats(N, 1, -5.0f, 5.0f), dout = random_floats(N, 2, -1.0f, 1.0f);
    std::vector<float> dinp0 = random_floats(N, 3, -1.0f, 1.0f);
    std::vector<float> out_ref(N), dinp_ref = dinp0;
    gelu_forward_cpu(out_ref.data(), inp.data(), N);
    gelu_backward_cpu(dinp_ref.data(), inp.data(), dout.data(), N);

    float *d_inp = to_device(inp), *d_dout = to_device(dout), *d_out = to_device(out_ref), *d_dinp = to_device(dinp0);
    std::printf("gelu, N = B*T*4C = %zu (B=%d T=%d C=%d)\n", N, B, T, C);

    // an odd size as well, to check the tails; the timing uses the full N
    for (size_t n : {N, size_t(4 * 771 + 3)}) {
        std::vector<float> out_n(out_ref.begin(), out_ref.begin() + n);
        for (int version = 1; version <= 2; version++) {
            CHECK_CUDA(cudaMemset(d_out, 0xFF, n * sizeof(float)));
            gelu_forward(version, d_out, d_inp, n);
            double error = relative_error(download(d_out, n), out_n);
            bool pass = error < tolerance;
            ok = ok && pass;
            if (n != N) {
                std::printf("forward  version %d, N=%zu: relative error %.2e %s\n", version, n, error,
                            pass ? "ok" : "FAIL");
                continue;
            }
            float ms = time_ms([&] { gelu_forward(version, d_out, d_inp, N); });
            std::printf("forward  version %d: relative error %.2e %s  %8.4f ms  %7.1f GB/s\n", version, error,
                        pass ? "ok  " : "FAIL", ms, 2.0 * N * sizeof(float) / ms * 1e-6);
        }
    }
    for (int version = 1; version <= 2; version++) {
        CHECK_CUDA(cudaMemcpy(d_dinp, dinp0.data(), N * sizeof(float), cudaMemcpyHostToDevice));
        gelu_backward(version, d_dinp, d_inp, d_dout, N);
        double error = relative_error(download(d_dinp, N), dinp_ref);
        bool pass = error < tolerance;
        ok = ok && pass;
        // dinp accumulates over the timing calls; only the time matters there
        float ms = time_ms([&] { gelu_backward(version, d_dinp, d_inp, d_dout, N); });
        std::printf("backward version %d: relative error %.2e %s  %8.4f ms  %7.1f GB/s\n", version, error,
                    pass ? "ok  " : "FAIL", ms, 4.0 * N * sizeof(float) / ms * 1e-6);
    }

    for (float* p : {d_inp, d_dout, d_out, d_dinp}) cudaFree(p);
    std::printf(ok ? "all versions match the reference\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
