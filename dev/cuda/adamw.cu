// Kernel lab: the AdamW update (decoupled weight decay, as torch.optim.AdamW).
//   g = grad * grad_scale;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd p)
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for GPT-2 124M's parameter count (124,475,904 with the vocabulary padded to 50304).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/adamw
// Exits non-zero when a version disagrees with the reference. The last line sums up the shipped version (1).
//
// Versions:
//   1. one thread per element, scalar loads: cuda::adamw_update, model/cuda/adamw.cu (included below, not
//      copied): any N, any alignment
//   2. one thread per four elements, float4 loads and stores; the N % 4 tail handled by the first threads
// Memory-bound: 4 arrays read (params, grads, m, v), 3 written (params, m, v).
#include "dev/cuda/lab_common.h"
#include "model/cuda/adamw.cu"

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
// Kernels (version 1 is model/cuda/adamw.cu's)

struct Coefficients {  // passed by value to the kernel
    float lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale;
};

__device__ inline void adamw_element(float& p, float grad, float& m, float& v, const Coefficients& k) {
    float g = grad * k.grad_scale;
    m = k.beta1 * m + (1.0f - k.beta1) * g;
    v = k.beta2 * v + (1.0f - k.beta2) * g * g;
    p -= k.lr * (m / k.correction1 / (sqrtf(v / k.correction2) + k.eps) + k.weight_decay * p);
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
    if (version == 1) {
        cuda::adamw_update(params, grads, m, v, N, s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.t, s.grad_scale);
        return;
    }
    Coefficients k{s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.correction1(), s.correction2(), s.grad_scale};
    adamw_kernel2<<<ceil_div(std::max<size_t>(N / 4, 4), 256), 256>>>(params, grads, m, v, N, k);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    // GPT-2 124M: wte (Vp=50304, C) + wpe (1024, C) + 12 layers of 12 C^2 + 13 C + the final layernorm's 2 C
    const size_t C = 768, L = 12, N = 50304 * C + 1024 * C + L * (12 * C * C + 13 * C) + 2 * C;
    const double tolerance = 1e-5;
    const Settings settings;
    bool ok = true;
    std::string shipped;

    std::vector<float> params = random_floats(N, 1, -1.0f, 1.0f), grads = random_floats(N, 2, -1.0f, 1.0f);
    std::vector<float> m = random_floats(N, 3, -0.1f, 0.1f), v = random_floats(N, 4, 0.0f, 0.01f);
    std::vector<float> params_ref = params, m_ref = m, v_ref = v;
    adamw_cpu(params_ref.data(), grads.data(), m_ref.data(), v_ref.data(), N, settings);

    float *d_params = to_device(params), *d_grads = to_device(grads), *d_m = to_device(m), *d_v = to_device(v);
    std::printf("adamw, N=%zu parameters (GPT-2 124M)\n", N);

    // the full N, and a small odd N that exercises version 2's tail
    for (size_t n : {N, size_t(4 * 771 + 3)}) {
        for (int version = 1; version <= 2; version++) {
            upload(d_params, params);
            upload(d_m, m);
            upload(d_v, v);
            adamw(version, d_params, d_grads, d_m, d_v, n, settings);
            double error = std::max({relative_error(download(d_params, n), params_ref),
                                     relative_error(download(d_m, n), m_ref),
                                     relative_error(download(d_v, n), v_ref)});
            if (n != N) {
                ok &= print_result(format("version %d, N=%zu", version, n), error, tolerance);
                continue;
            }
            // the state keeps updating over the timing calls; only the time matters there
            float ms = time_ms([&] { adamw(version, d_params, d_grads, d_m, d_v, N, settings); });
            const double bytes = 7.0 * N * sizeof(float);
            ok &= print_result(format("version %d", version), error, tolerance, ms, bytes);
            if (version == 1) shipped = timing("update", ms, bytes);
        }
    }

    for (float* p : {d_params, d_grads, d_m, d_v}) CHECK_CUDA(cudaFree(p));
    return finish("adamw", ok, shipped);
}
