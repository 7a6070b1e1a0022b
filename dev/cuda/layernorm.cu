// Kernel lab: layer normalisation, forward (plain and fused with the residual add) and backward.
//   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + 1e-5)
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * w;  dw += sum_rows dy * xhat;  db += sum_rows dy
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for a GPT-2 124M-sized shape (N = B*T = 8*1024 rows, C = 768).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/layernorm
// Exits non-zero when a version disagrees with the reference. The last line sums up the shipped versions (2, and
// the fused forward).
//
// Forward versions:
//   1. one thread per row: adjacent threads read addresses C floats apart, so loads are not coalesced
//   2. one warp per row, lanes striding over the channels, warp-shuffle sums: cuda::layernorm_forward,
//      model/cuda/layernorm.cu (included below, not copied)
//   fused: residual_out = a + b and version 2 in one kernel (cuda::fused_residual_layernorm_forward), against a
//          residual kernel then version 2
// Backward versions:
//   1. one thread per row; dweight/dbias by atomicAdd (non-deterministic)
//   2. deterministic, cuda::layernorm_backward: blocks of 32 rows; a warp per row for dinp, then a thread per
//      channel sums the block's rows into per-block partials; a second kernel adds the partials in block order
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "model/cuda/layernorm.cu"  // version 2; also kEpsilon (1e-5), which the reference and version 1 use

// ---------------------------------------------------------------------------------------------------------
// CPU reference

void layernorm_forward_cpu(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                           int N, int C) {
    for (int i = 0; i < N; i++) {
        const float* x = inp + size_t(i) * C;
        float m = 0, variance = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) variance += (x[c] - m) * (x[c] - m);
        variance /= C;
        float s = 1.0f / std::sqrt(variance + kEpsilon);
        for (int c = 0; c < C; c++) out[size_t(i) * C + c] = (x[c] - m) * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

void layernorm_backward_cpu(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                            const float* mean, const float* rstd, int N, int C) {
    for (int i = 0; i < N; i++) {
        const float *x = inp + size_t(i) * C, *dy = dout + size_t(i) * C;
        float g_mean = 0, g_xhat_mean = 0;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - mean[i]) * rstd[i];
            g_mean += dy[c] * w[c];
            g_xhat_mean += dy[c] * w[c] * xhat;
        }
        g_mean /= C;
        g_xhat_mean /= C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - mean[i]) * rstd[i];
            dinp[size_t(i) * C + c] += rstd[i] * (dy[c] * w[c] - g_mean - xhat * g_xhat_mean);
            dw[c] += dy[c] * xhat;
            db[c] += dy[c];
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Kernels (version 2 and the fused forward are model/cuda/layernorm.cu's)

// forward version 1: one thread per row
__global__ void layernorm_forward_kernel1(float* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                                          const float* __restrict__ inp, const float* __restrict__ w,
                                          const float* __restrict__ b, int N, int C) {
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= N) return;
    const float* x = inp + size_t(row) * C;
    float m = 0.0f, variance = 0.0f;
    for (int c = 0; c < C; c++) m += x[c];
    m /= C;
    for (int c = 0; c < C; c++) variance += (x[c] - m) * (x[c] - m);
    variance /= C;
    float s = 1.0f / sqrtf(variance + kEpsilon);
    for (int c = 0; c < C; c++) out[size_t(row) * C + c] = (x[c] - m) * s * w[c] + b[c];
    mean[row] = m;
    rstd[row] = s;
}

// the unfused baseline's first step
__global__ void residual_kernel(float* __restrict__ out, const float* __restrict__ a, const float* __restrict__ b,
                                size_t count) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) out[i] = a[i] + b[i];
}

void layernorm_forward(int version, float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C) {
    if (version == 2) return cuda::layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    layernorm_forward_kernel1<<<ceil_div(N, 256), 256>>>(out, mean, rstd, inp, w, b, N, C);
    CHECK_LAUNCH();
}

// backward version 1: one thread per row, atomics for dweight/dbias
__global__ void layernorm_backward_kernel1(float* __restrict__ dinp, float* dw, float* db,
                                           const float* __restrict__ dout, const float* __restrict__ inp,
                                           const float* __restrict__ w, const float* __restrict__ mean,
                                           const float* __restrict__ rstd, int N, int C) {
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= N) return;
    const float *x = inp + size_t(row) * C, *dy = dout + size_t(row) * C;
    float m = mean[row], s = rstd[row], g_mean = 0.0f, g_xhat_mean = 0.0f;
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * s;
        g_mean += dy[c] * w[c];
        g_xhat_mean += dy[c] * w[c] * xhat;
    }
    g_mean /= C;
    g_xhat_mean /= C;
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * s;
        dinp[size_t(row) * C + c] += s * (dy[c] * w[c] - g_mean - xhat * g_xhat_mean);
        atomicAdd(&dw[c], dy[c] * xhat);
        atomicAdd(&db[c], dy[c]);
    }
}

void layernorm_backward(int version, float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C) {
    if (version == 2) return cuda::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    layernorm_backward_kernel1<<<ceil_div(N, 256), 256>>>(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    const int B = 8, T = 1024, C = 768, N = B * T;
    const size_t NC = size_t(N) * C;
    const double tolerance = 1e-5;
    bool ok = true;
    std::string shipped;

    std::vector<float> a = random_floats(NC, 1, -2.0f, 3.0f), b_in = random_floats(NC, 2);
    std::vector<float> w = random_floats(C, 3), b = random_floats(C, 4), dout = random_floats(NC, 5);
    std::vector<float> dinp0 = random_floats(NC, 6), dw0 = random_floats(C, 7), db0 = random_floats(C, 8);
    std::vector<float> out_ref(NC), mean_ref(N), rstd_ref(N);
    layernorm_forward_cpu(out_ref.data(), mean_ref.data(), rstd_ref.data(), a.data(), w.data(), b.data(), N, C);
    std::vector<float> dinp_ref = dinp0, dw_ref = dw0, db_ref = db0;
    layernorm_backward_cpu(dinp_ref.data(), dw_ref.data(), db_ref.data(), dout.data(), a.data(), w.data(),
                           mean_ref.data(), rstd_ref.data(), N, C);
    std::vector<float> residual_ref(NC), fused_ref(NC), fused_mean_ref(N), fused_rstd_ref(N);
    for (size_t i = 0; i < NC; i++) residual_ref[i] = a[i] + b_in[i];
    layernorm_forward_cpu(fused_ref.data(), fused_mean_ref.data(), fused_rstd_ref.data(), residual_ref.data(), w.data(),
                          b.data(), N, C);

    float *d_a = to_device(a), *d_b_in = to_device(b_in), *d_w = to_device(w), *d_b = to_device(b);
    float *d_dout = to_device(dout), *d_mean = to_device(mean_ref), *d_rstd = to_device(rstd_ref);
    float *d_out = to_device(out_ref), *d_residual = to_device(residual_ref);
    float *d_dinp = to_device(dinp0), *d_dw = to_device(dw0), *d_db = to_device(db0);
    std::printf("layernorm, N=%d (B=%d T=%d) C=%d\n", N, B, T, C);

    // forward: reads x, writes y (mean and rstd are negligible)
    for (int version = 1; version <= 2; version++) {
        CHECK_CUDA(cudaMemset(d_out, 0xFF, NC * sizeof(float)));  // poison: NaN
        CHECK_CUDA(cudaMemset(d_mean, 0xFF, N * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_rstd, 0xFF, N * sizeof(float)));
        layernorm_forward(version, d_out, d_mean, d_rstd, d_a, d_w, d_b, N, C);
        double error = std::max({relative_error(download(d_out, NC), out_ref),
                                 relative_error(download(d_mean, N), mean_ref),
                                 relative_error(download(d_rstd, N), rstd_ref)});
        float ms = time_ms([&] { layernorm_forward(version, d_out, d_mean, d_rstd, d_a, d_w, d_b, N, C); });
        ok &= print_result(format("forward version %d", version), error, tolerance, ms, 2.0 * NC * sizeof(float));
        if (version == 2) shipped = format("fwd %.3f ms", ms);
    }

    // fused residual: reads a and b, writes residual and y; the unfused pair also re-reads the residual
    {
        CHECK_CUDA(cudaMemset(d_out, 0xFF, NC * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_residual, 0xFF, NC * sizeof(float)));
        auto fused = [&] {
            cuda::fused_residual_layernorm_forward(d_residual, d_out, d_mean, d_rstd, d_a, d_b_in, d_w, d_b, N, C);
        };
        auto unfused = [&] {
            residual_kernel<<<ceil_div(NC, 256), 256>>>(d_residual, d_a, d_b_in, NC);
            CHECK_LAUNCH();
            layernorm_forward(2, d_out, d_mean, d_rstd, d_residual, d_w, d_b, N, C);
        };
        fused();
        double error = std::max({relative_error(download(d_residual, NC), residual_ref),
                                 relative_error(download(d_out, NC), fused_ref),
                                 relative_error(download(d_mean, N), fused_mean_ref),
                                 relative_error(download(d_rstd, N), fused_rstd_ref)});
        float ms = time_ms(fused);
        ok &= print_result("fused residual + layernorm", error, tolerance, ms, 4.0 * NC * sizeof(float));
        shipped += format(" | fused %.3f ms", ms);
        unfused();
        error = std::max(relative_error(download(d_residual, NC), residual_ref),
                         relative_error(download(d_out, NC), fused_ref));
        ok &= print_result("residual, then version 2", error, tolerance, time_ms(unfused), 5.0 * NC * sizeof(float));
    }

    // backward: reads dout, x and dinp, writes dinp
    for (int version = 1; version <= 2; version++) {
        std::vector<float> runs[2][3];
        for (auto& run : runs) {
            upload(d_dinp, dinp0);
            upload(d_dw, dw0);
            upload(d_db, db0);
            upload(d_mean, mean_ref);
            upload(d_rstd, rstd_ref);
            layernorm_backward(version, d_dinp, d_dw, d_db, d_dout, d_a, d_w, d_mean, d_rstd, N, C);
            run[0] = download(d_dinp, NC);
            run[1] = download(d_dw, C);
            run[2] = download(d_db, C);
        }
        double error = std::max({relative_error(runs[0][0], dinp_ref), relative_error(runs[0][1], dw_ref),
                                 relative_error(runs[0][2], db_ref)});
        bool deterministic = true;
        for (int i = 0; i < 3; i++)
            deterministic = deterministic && std::memcmp(runs[0][i].data(), runs[1][i].data(),
                                                         runs[0][i].size() * sizeof(float)) == 0;
        ok &= deterministic || version == 1;
        float ms = time_ms(
            [&] { layernorm_backward(version, d_dinp, d_dw, d_db, d_dout, d_a, d_w, d_mean, d_rstd, N, C); });
        ok &= print_result(format("backward version %d", version), error, tolerance, ms, 4.0 * NC * sizeof(float),
                           repeatability(deterministic, version == 2));
        if (version == 2) shipped += format(" | bwd %.3f ms", ms);
    }

    for (float* p : {d_a, d_b_in, d_w, d_b, d_dout, d_mean, d_rstd, d_out, d_residual, d_dinp, d_dw, d_db})
        CHECK_CUDA(cudaFree(p));
    return finish("layernorm", ok, shipped);
}
