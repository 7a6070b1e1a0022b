// Kernel lab: GELU (tanh form), forward and backward.
//   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   dx += dy * (0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for a GPT-2 124M-sized shape (the MLP activation: B*T*4C = 8*1024*3072 floats).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/gelu
// Exits non-zero when a version disagrees with the reference. The last line sums up the shipped version (1).
//
// Versions (forward and backward alike):
//   1. one thread per element, scalar loads: cuda::gelu_forward and cuda::gelu_backward, model/cuda/gelu.cu
//      (included below, not copied): simple, and any N and alignment
//   2. one thread per float4, 16-byte loads and stores; the N % 4 tail handled by the first threads
// Both are memory-bound; version 2 issues a quarter of the memory instructions.
#include "dev/cuda/lab_common.h"
#include "model/cuda/gelu.cu"

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
// Kernels (version 1 is model/cuda/gelu.cu's)

__device__ inline float gelu(float x) { return 0.5f * x * (1.0f + tanhf(kScale * (x + kCubic * x * x * x))); }

__device__ inline float gelu_derivative(float x) {
    float th = tanhf(kScale * (x + kCubic * x * x * x));
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * (kScale * (1.0f + kCubic3 * x * x));
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

int blocks_for(size_t N) { return ceil_div(std::max<size_t>(N / 4, 4), 256); }  // version 2: a thread per float4

void gelu_forward(int version, float* out, const float* inp, size_t N) {
    if (version == 1) return cuda::gelu_forward(out, inp, N);
    gelu_forward_kernel2<<<blocks_for(N), 256>>>(out, inp, N);
    CHECK_LAUNCH();
}

void gelu_backward(int version, float* dinp, const float* inp, const float* dout, size_t N) {
    if (version == 1) return cuda::gelu_backward(dinp, inp, dout, N);
    gelu_backward_kernel2<<<blocks_for(N), 256>>>(dinp, inp, dout, N);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    const int B = 8, T = 1024, C = 768;
    const size_t N = size_t(B) * T * 4 * C;
    const double tolerance = 1e-5;
    bool ok = true;
    std::string shipped;

    std::vector<float> inp = random_floats(N, 1, -5.0f, 5.0f), dout = random_floats(N, 2, -1.0f, 1.0f);
    std::vector<float> dinp0 = random_floats(N, 3, -1.0f, 1.0f);
    std::vector<float> out_ref(N), dinp_ref = dinp0;
    gelu_forward_cpu(out_ref.data(), inp.data(), N);
    gelu_backward_cpu(dinp_ref.data(), inp.data(), dout.data(), N);

    float *d_inp = to_device(inp), *d_dout = to_device(dout), *d_out = to_device(out_ref), *d_dinp = to_device(dinp0);
    std::printf("gelu, N = B*T*4C = %zu (B=%d T=%d C=%d)\n", N, B, T, C);

    // an odd size as well, to check the tails; the timing uses the full N
    for (size_t n : {N, size_t(4 * 771 + 3)}) {
        for (int version = 1; version <= 2; version++) {
            CHECK_CUDA(cudaMemset(d_out, 0xFF, n * sizeof(float)));  // poison: NaN
            gelu_forward(version, d_out, d_inp, n);
            double error = relative_error(download(d_out, n), out_ref);
            if (n != N) {
                ok &= print_result(format("forward  version %d, N=%zu", version, n), error, tolerance);
                continue;
            }
            float ms = time_ms([&] { gelu_forward(version, d_out, d_inp, N); });
            const double bytes = 2.0 * N * sizeof(float);
            ok &= print_result(format("forward  version %d", version), error, tolerance, ms, bytes);
            if (version == 1) shipped = timing("fwd", ms, bytes);
        }
    }
    for (int version = 1; version <= 2; version++) {
        upload(d_dinp, dinp0);
        gelu_backward(version, d_dinp, d_inp, d_dout, N);
        double error = relative_error(download(d_dinp, N), dinp_ref);
        // dinp accumulates over the timing calls; only the time matters there
        float ms = time_ms([&] { gelu_backward(version, d_dinp, d_inp, d_dout, N); });
        const double bytes = 4.0 * N * sizeof(float);
        ok &= print_result(format("backward version %d", version), error, tolerance, ms, bytes);
        if (version == 1) shipped += " | " + timing("bwd", ms, bytes);
    }

    for (float* p : {d_inp, d_dout, d_out, d_dinp}) CHECK_CUDA(cudaFree(p));
    return finish("gelu", ok, shipped);
}
