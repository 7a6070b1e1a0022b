// Kernel lab: the AdamW update (decoupled weight decay, as torch.optim.AdamW).
//   g = grad * grad_scale;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd p)
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for GPT-2 124M's parameter count (124,475,904 with the vocabulary padded to 50304).
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/adamw.cu -o build/lab/adamw -lcublas
//   ./build/lab/adamw            (or `make lab`)
// Exits non-zero when a version disagrees with the reference.
//
// Versions:
//   1. one thread per element, scalar loads (model/cuda/optimizer.cu: any N, any alignment)
//   2. one thread per four elements, float4 loads and stores; the N % 4 tail handled by the first threads
// Memory-bound: 4 arrays read (params, grads, m, v), 3 written (params, m, v).
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

struct Settings {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f, grad_scale = 0.5f;
    int t = 3;                                           // 1-based step
    float correction1() const { return 1.0f - std::pow(beta1, float(t)); }
    float correction2() const { return 1.0f - std::pow(beta2, float(t)); }
};

// ---------------------------------------------------------------------------------------------------------
// CPU reference

void adamw_cpu(float* params, const float* grads, float* m, float* v, size_t N, const Settings& s) {
    const float c1 = s.correction1(), c2 = s.correction2();
    for (size_t i = 0; i < N; i++) {
        float g = grads[i] * s.grad_scale;
        m[i] = s.beta1 * m[i] + (1.0f - s.beta1) * g;
        v[i] = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
        params[i] -= s.lr * (m[i] / c1 / (std::sqrt(v[i] / c2) + s.eps) + s.weight_decay * params[i]);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Kernels

struct Coefficients {  // passed by value to the kernels
    float lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale;
};

__device__ inline void adamw_element(float& p, float grad, float& m, float& v, const Coefficients& k) {
    float g = grad * k.grad_scale;
    m = k.beta1 * m + (1.0f - k.beta1) * g;
    v = k.beta2 * v + (1.0f - k.beta2) * g * g;
    p -= k.lr * (m / k.correction1 / (sqrtf(v / k.correction2) + k.eps) + k.weight_decay * p);
}

// version 1 (model/cuda/optimizer.cu): one thread per element
__global__ void adamw_kernel1(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                              float* __restrict__ v, size_t N, Coefficients k) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float p = params[i], m_i = m[i], v_i = v[i];
    adamw_element(p, grads[i], m_i, v_i, k);
    params[i] = p;
    m[i] = m_i;
    v[i] = v_i;
}

// version 2: one thread per float4, then the N % 4 tail
__global__ void adamw_kernel2(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                              float* __restrict__ v, size_t N, Coefficients k) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    size_t vectors = N / 4;
    if (i < vectors) {
        float4 p = reinterpret_cast<float4*>(params)[i], g = reinterpret_cast<const float4*>(grads)[i];
        float4 m4 = reinterpret_cast<float4*>(m)[i], v4 = reinterpret_cast<float4*>(v)[i];
        adamw_element(p.x, g.x, m4.x, v4.x, k);
        adamw_element(p.y, g.y, m4.y, v4.y, k);
        adamw_element(p.z, g.z, m4.z, v4.z, k);
        adamw_element(p.w, g.w, m4.w, v4.w, k);
        reinterpret_cast<float4*>(params)[i] = p;
        reinterpret_cast<float4*>(m)[i] = m4;
        reinterpret_cast<float4*>(v)[i] = v4;
    }
    if (i < N % 4) {
        size_t j = vectors * 4 + i;
        adamw_element(params[j], grads[j], m[j], v[j], k);
    }
}

void adamw(int version, float* params, const float* grads, float* m, float* v, size_t N, const Settings& s) {
    Coefficients k{s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.correction1(), s.correction2(), s.grad_scale};
    size_t threads_needed = std::max<size_t>(version == 1 ? N : N / 4, 4);
    unsigned blocks = unsigned((threads_needed + 255) / 256);
    if (version == 1)
        adamw_kernel1<<<blocks, 256>>>(params, grads, m, v, N, k);
    else
        adamw_kernel2<<<blocks, 256>>>(params, grads, m, v, N, k);
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

// ||a - b|| / ||b|| over the first count elements
double relative_error(const std::vector<float>& a, const std::vector<float>& b, size_t count) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < count; i++) {
        double d = double(a[i]) - double(b[i]);
        difference += d * d;
        reference += double(b[i]) * double(b[i]);
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

void upload(float* device, const std::vector<float>& host) {
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
}

std::vector<float> download(const float* device, size_t count) {
    std::vector<float> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost));
    return host;
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
    const double tolerance = 1e-5;
    const Settings settings;
    bool ok = true;

    std::vector<float> params = random_floats(N, 1, -1.0f, 1.0f), grads = random_floats(N, 2, -1.0f, 1.0f);
    std::vector<float> m = random_floats(N, 3, -0.1f, 0.1f), v = random_floats(N, 4, 0.0f, 0.01f);
    std::vector<float> params_ref = params, m_ref = m, v_ref = v;
    adamw_cpu(params_ref.data(), grads.data(), m_ref.data(), v_ref.data(), N, settings);

    float *d_params, *d_grads, *d_m, *d_v;
    for (float** p : {&d_params, &d_grads, &d_m, &d_v}) CHECK_CUDA(cudaMalloc(p, N * sizeof(float)));
    upload(d_grads, grads);
    std::printf("adamw, N=%zu parameters (GPT-2 124M)\n", N);

    // the full N, and a small odd N that exercises version 2's tail
    for (size_t n : {N, size_t(4 * 771 + 3)}) {
        for (int version = 1; version <= 2; version++) {
            upload(d_params, params);
            upload(d_m, m);
            upload(d_v, v);
            adamw(version, d_params, d_grads, d_m, d_v, n, settings);
            double error = std::max({relative_error(download(d_params, n), params_ref, n),
                                     relative_error(download(d_m, n), m_ref, n),
                                     relative_error(download(d_v, n), v_ref, n)});
            bool pass = error < tolerance;
            ok = ok && pass;
            if (n != N) {
                std::printf("version %d, N=%zu: relative error %.2e %s\n", version, n, error, pass ? "ok" : "FAIL");
                continue;
            }
            // the state keeps updating over the timing calls; only the time matters there
            float ms = time_ms([&] { adamw(version, d_params, d_grads, d_m, d_v, N, settings); });
            std::printf("version %d: relative error %.2e %s  %8.4f ms  %7.1f GB/s\n", version, error,
                        pass ? "ok  " : "FAIL", ms, 7.0 * N * sizeof(float) / ms * 1e-6);
        }
    }

    for (float* p : {d_params, d_grads, d_m, d_v}) cudaFree(p);
    std::printf(ok ? "all versions match the reference\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
