// Kernel lab: layer normalisation, forward (plain and fused with the residual add) and backward.
//   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + 1e-5)
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * w;  dw += sum_rows dy * xhat;  db += sum_rows dy
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for a GPT-2 124M-sized shape (N = B*T = 8*1024 rows, C = 768).
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/layernorm.cu -o build/lab/layernorm -lcublas
//   ./build/lab/layernorm        (or `make lab`)
// Exits non-zero when a version disagrees with the reference.
//
// Forward versions:
//   1. one thread per row: adjacent threads read addresses C floats apart, so loads are not coalesced
//   2. one warp per row, lanes striding over the channels, warp-shuffle sums (model/cuda/layernorm.cu)
//   fused: residual_out = a + b and version 2 in one kernel, against a residual kernel then version 2
//          (model/cuda/layernorm.cu, fused_residual_layernorm_forward)
// Backward versions:
//   1. one thread per row; dweight/dbias by atomicAdd (non-deterministic)
//   2. deterministic, model/cuda/layernorm.cu: blocks of 32 rows; a warp per row for dinp, then a thread per
//      channel sums the block's rows into per-block partials; a second kernel adds the partials in block order
#include <cuda_runtime.h>

#include <algorithm>
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

constexpr float kEpsilon = 1e-5f;

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
// Forward kernels

// version 1: one thread per row
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

__device__ inline float warp_sum(float value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

// version 2 (model/cuda/layernorm.cu): one warp per row, x = a (or a + b, stored to residual_out, when kResidual)
template <bool kResidual>
__global__ void layernorm_forward_kernel2(float* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                                          float* __restrict__ residual_out, const float* __restrict__ a,
                                          const float* __restrict__ b_in, const float* __restrict__ w,
                                          const float* __restrict__ b, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t offset = size_t(row) * C;
    auto x = [&](int c) { return kResidual ? a[offset + c] + b_in[offset + c] : a[offset + c]; };
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float value = x(c);
        if constexpr (kResidual) residual_out[offset + c] = value;
        sum += value;
    }
    float m = warp_sum(sum) / float(C);
    float squares = 0.0f;
    for (int c = lane; c < C; c += 32) squares += (x(c) - m) * (x(c) - m);
    float s = 1.0f / sqrtf(warp_sum(squares) / float(C) + kEpsilon);
    for (int c = lane; c < C; c += 32) out[offset + c] = (x(c) - m) * s * w[c] + b[c];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// the unfused baseline's first step
__global__ void residual_kernel(float* __restrict__ out, const float* __restrict__ a, const float* __restrict__ b,
                                size_t count) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) out[i] = a[i] + b[i];
}

void layernorm_forward(int version, float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C) {
    if (version == 1)
        layernorm_forward_kernel1<<<(N + 255) / 256, 256>>>(out, mean, rstd, inp, w, b, N, C);
    else
        layernorm_forward_kernel2<false><<<(N + 7) / 8, 256>>>(out, mean, rstd, nullptr, inp, nullptr, w, b, N, C);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Backward kernels

// version 1: one thread per row, atomics for dweight/dbias
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

constexpr int kRowsPerBlock = 32;

// version 2 (model/cuda/layernorm.cu), stage 1: block k owns rows [32k, 32k + 32)
__global__ void layernorm_backward_kernel2(float* __restrict__ dinp, float* __restrict__ partial_dw,
                                           float* __restrict__ partial_db, const float* __restrict__ dout,
                                           const float* __restrict__ inp, const float* __restrict__ w,
                                           const float* __restrict__ mean, const float* __restrict__ rstd, int N,
                                           int C) {
    __shared__ float block_mean[kRowsPerBlock], block_rstd[kRowsPerBlock];
    int first = blockIdx.x * kRowsPerBlock, rows = min(kRowsPerBlock, N - first);
    if (threadIdx.x < rows) {
        block_mean[threadIdx.x] = mean[first + threadIdx.x];
        block_rstd[threadIdx.x] = rstd[first + threadIdx.x];
    }
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < rows; r += blockDim.x / 32) {
        size_t offset = size_t(first + r) * C;
        float m = block_mean[r], s = block_rstd[r], g_sum = 0.0f, g_xhat_sum = 0.0f;
        for (int c = lane; c < C; c += 32) {
            float xhat = (inp[offset + c] - m) * s, g = dout[offset + c] * w[c];
            g_sum += g;
            g_xhat_sum += g * xhat;
        }
        float g_mean = warp_sum(g_sum) / float(C), g_xhat_mean = warp_sum(g_xhat_sum) / float(C);
        for (int c = lane; c < C; c += 32) {
            float xhat = (inp[offset + c] - m) * s, g = dout[offset + c] * w[c];
            dinp[offset + c] += s * (g - g_mean - xhat * g_xhat_mean);
        }
    }
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float dw_sum = 0.0f, db_sum = 0.0f;
        for (int r = 0; r < rows; r++) {
            size_t index = size_t(first + r) * C + c;
            dw_sum += dout[index] * ((inp[index] - block_mean[r]) * block_rstd[r]);
            db_sum += dout[index];
        }
        partial_dw[size_t(blockIdx.x) * C + c] = dw_sum;
        partial_db[size_t(blockIdx.x) * C + c] = db_sum;
    }
}

// version 2, stage 2: one thread per channel adds the partials in block order
__global__ void layernorm_reduce_kernel2(float* __restrict__ dw, float* __restrict__ db,
                                         const float* __restrict__ partial_dw, const float* __restrict__ partial_db,
                                         int blocks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float dw_sum = 0.0f, db_sum = 0.0f;
    for (int k = 0; k < blocks; k++) {
        dw_sum += partial_dw[size_t(k) * C + c];
        db_sum += partial_db[size_t(k) * C + c];
    }
    dw[c] += dw_sum;
    db[c] += db_sum;
}

float* partials = nullptr;  // device, 2 * ceil(N / 32) * C floats

void layernorm_backward(int version, float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C) {
    if (version == 1) {
        layernorm_backward_kernel1<<<(N + 255) / 256, 256>>>(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        CHECK_LAUNCH();
        return;
    }
    int blocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
    float *partial_dw = partials, *partial_db = partials + size_t(blocks) * C;
    layernorm_backward_kernel2<<<blocks, 256>>>(dinp, partial_dw, partial_db, dout, inp, w, mean, rstd, N, C);
    CHECK_LAUNCH();
    layernorm_reduce_kernel2<<<(C + 255) / 256, 256>>>(dw, db, partial_dw, partial_db, blocks, C);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Harness

std::vector<float> random_floats(size_t count, uint64_t seed, float low = -1.0f, float high = 1.0f) {
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

void upload(float* device, const std::vector<float>& host) {
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
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
    const int B = 8, T = 1024, C = 768, N = B * T;
    const size_t NC = size_t(N) * C;
    const double tolerance = 1e-5;
    bool ok = true;
    auto report = [&](const char* what, double error, float ms, double bytes, const char* note = "") {
        bool pass = error < tolerance;
        ok = ok && pass;
        std::printf("%-28s relative error %.2e %s  %8.4f ms  %7.1f GB/s  %s\n", what, error, pass ? "ok  " : "FAIL", ms,
                    bytes / ms * 1e-6, note);
    };

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
    CHECK_CUDA(cudaMalloc(&partials, 2 * size_t((N + kRowsPerBlock - 1) / kRowsPerBlock) * C * sizeof(float)));
    std::printf("layernorm, N=%d (B=%d T=%d) C=%d\n", N, B, T, C);

    // forward: reads x, writes y (mean and rstd are negligible)
    for (int version = 1; version <= 2; version++) {
        CHECK_CUDA(cudaMemset(d_out, 0xFF, NC * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_mean, 0xFF, N * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_rstd, 0xFF, N * sizeof(float)));
        layernorm_forward(version, d_out, d_mean, d_rstd, d_a, d_w, d_b, N, C);
        double error = std::max({relative_error(download(d_out, NC), out_ref),
                                 relative_error(download(d_mean, N), mean_ref),
                                 relative_error(download(d_rstd, N), rstd_ref)});
        float ms = time_ms([&] { layernorm_forward(version, d_out, d_mean, d_rstd, d_a, d_w, d_b, N, C); });
        char name[64];
        std::snprintf(name, sizeof name, "forward version %d", version);
        report(name, error, ms, 2.0 * NC * sizeof(float));
    }

    // fused residual: reads a and b, writes residual and y; the unfused pair also re-reads the residual
    {
        CHECK_CUDA(cudaMemset(d_out, 0xFF, NC * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_residual, 0xFF, NC * sizeof(float)));
        auto fused = [&] {
            layernorm_forward_kernel2<true><<<(N + 7) / 8, 256>>>(d_out, d_mean, d_rstd, d_residual, d_a, d_b_in, d_w,
                                                                  d_b, N, C);
            CHECK_LAUNCH();
        };
        auto unfused = [&] {
            residual_kernel<<<unsigned((NC + 255) / 256), 256>>>(d_residual, d_a, d_b_in, NC);
            CHECK_LAUNCH();
            layernorm_forward(2, d_out, d_mean, d_rstd, d_residual, d_w, d_b, N, C);
        };
        fused();
        double error = std::max({relative_error(download(d_residual, NC), residual_ref),
                                 relative_error(download(d_out, NC), fused_ref),
                                 relative_error(download(d_mean, N), fused_mean_ref),
                                 relative_error(download(d_rstd, N), fused_rstd_ref)});
        report("fused residual + layernorm", error, time_ms(fused), 4.0 * NC * sizeof(float));
        unfused();
        error = std::max(relative_error(download(d_residual, NC), residual_ref),
                         relative_error(download(d_out, NC), fused_ref));
        report("residual, then version 2", error, time_ms(unfused), 5.0 * NC * sizeof(float));
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
        if (version == 2 && !deterministic) {
            std::printf("backward version 2 is not deterministic\n");
            ok = false;
        }
        float ms = time_ms(
            [&] { layernorm_backward(version, d_dinp, d_dw, d_db, d_dout, d_a, d_w, d_mean, d_rstd, N, C); });
        char name[64];
        std::snprintf(name, sizeof name, "backward version %d", version);
        report(name, error, ms, 4.0 * NC * sizeof(float),
               deterministic ? "bit-identical runs" : "runs differ (atomics)");
    }

    for (float* p : {d_a, d_b_in, d_w, d_b, d_dout, d_mean, d_rstd, d_out, d_residual, d_dinp, d_dw, d_db, partials})
        cudaFree(p);
    std::printf(ok ? "all versions match the reference\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
