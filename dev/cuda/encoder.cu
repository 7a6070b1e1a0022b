// Kernel lab: the encoder (token + position embedding), forward and backward.
//   out[b,t,:] = wte[inp[b,t],:] + wpe[t,:];   dwte[inp[b,t],:] += dout[b,t,:];   dwpe[t,:] += dout[b,t,:]
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for a GPT-2 124M-sized shape (B=8, T=1024, C=768, V=50257).
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I. dev/cuda/encoder.cu -o build/lab/encoder -lcublas
//   ./build/lab/encoder          (or `make lab`)
// Exits non-zero when a version disagrees with the reference.
//
// Forward versions:
//   1. one thread per output float
//   2. one thread per float4 (four channels), used by model/cuda/encoder.cu when C % 4 == 0
// Backward versions:
//   1. one thread per (b,t,c) with atomicAdd into dwte and dwpe: simple, but the order of the additions, and so
//      the rounding, changes from run to run
//   2. deterministic, used by model/cuda/encoder.cu: dwpe one thread per (t,c) summing over b in order; dwte
//      from token buckets built on the host (a CSR list of positions per distinct token, in increasing order),
//      one block per distinct token. The timing includes the host round trip.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
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

// ---------------------------------------------------------------------------------------------------------
// CPU reference

void encoder_forward_cpu(float* out, const int* inp, const float* wte, const float* wpe, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                out[(size_t(b) * T + t) * C + c] = wte[size_t(inp[b * T + t]) * C + c] + wpe[size_t(t) * C + c];
}

void encoder_backward_cpu(float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                float d = dout[(size_t(b) * T + t) * C + c];
                dwte[size_t(inp[b * T + t]) * C + c] += d;
                dwpe[size_t(t) * C + c] += d;
            }
}

// ---------------------------------------------------------------------------------------------------------
// Forward kernels

// version 1: one thread per output float
__global__ void encoder_forward_kernel1(float* __restrict__ out, const int* __restrict__ inp,
                                        const float* __restrict__ wte, const float* __restrict__ wpe, int B, int T,
                                        int C) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C) return;
    int bt = int(index / C), c = int(index % C), t = bt % T;
    out[index] = wte[size_t(inp[bt]) * C + c] + wpe[size_t(t) * C + c];
}

// version 2 (model/cuda/encoder.cu): one thread per float4; C % 4 == 0
__global__ void encoder_forward_kernel2(float4* __restrict__ out, const int* __restrict__ inp,
                                        const float4* __restrict__ wte, const float4* __restrict__ wpe, int B, int T,
                                        int C4) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C4) return;
    int bt = int(index / C4), c = int(index % C4), t = bt % T;
    float4 e = wte[size_t(inp[bt]) * C4 + c], p = wpe[size_t(t) * C4 + c];
    out[index] = make_float4(e.x + p.x, e.y + p.y, e.z + p.z, e.w + p.w);
}

void encoder_forward(int version, float* out, const int* inp, const float* wte, const float* wpe, int B, int T,
                     int C) {
    const int threads = 256;
    if (version == 1) {
        size_t count = size_t(B) * T * C;
        encoder_forward_kernel1<<<unsigned((count + threads - 1) / threads), threads>>>(out, inp, wte, wpe, B, T, C);
    } else {
        size_t count = size_t(B) * T * C / 4;
        encoder_forward_kernel2<<<unsigned((count + threads - 1) / threads), threads>>>(
            reinterpret_cast<float4*>(out), inp, reinterpret_cast<const float4*>(wte),
            reinterpret_cast<const float4*>(wpe), B, T, C / 4);
    }
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Backward kernels

// version 1: one thread per (b,t,c), atomics (non-deterministic)
__global__ void encoder_backward_kernel1(float* dwte, float* dwpe, const float* __restrict__ dout,
                                         const int* __restrict__ inp, int B, int T, int C) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C) return;
    int bt = int(index / C), c = int(index % C), t = bt % T;
    float d = dout[index];
    atomicAdd(&dwte[size_t(inp[bt]) * C + c], d);
    atomicAdd(&dwpe[size_t(t) * C + c], d);
}

// version 2 (model/cuda/encoder.cu), part 1: dwpe, one thread per (t,c), b in increasing order
__global__ void position_backward_kernel2(float* __restrict__ dwpe, const float* __restrict__ dout, int B, int T,
                                          int C) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    size_t TC = size_t(T) * C;
    if (index >= TC) return;
    float sum = dwpe[index];
    for (int b = 0; b < B; b++) sum += dout[b * TC + index];
    dwpe[index] = sum;
}

// version 2, part 2: dwte, one block per distinct token, its positions in increasing order
__global__ void token_backward_kernel2(float* __restrict__ dwte, const float* __restrict__ dout,
                                       const int* __restrict__ tokens, const int* __restrict__ offsets,
                                       const int* __restrict__ positions, int C) {
    int j = blockIdx.x;
    float* row = dwte + size_t(tokens[j]) * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sum = row[c];
        for (int p = offsets[j]; p < offsets[j + 1]; p++) sum += dout[size_t(positions[p]) * C + c];
        row[c] = sum;
    }
}

int* bucket_buffer = nullptr;  // device: [distinct tokens (D)] [offsets (D+1)] [positions (BT)], 3*BT+1 ints

void encoder_backward(int version, float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T, int C) {
    const int threads = 256, BT = B * T;
    if (version == 1) {
        size_t count = size_t(BT) * C;
        encoder_backward_kernel1<<<unsigned((count + threads - 1) / threads), threads>>>(dwte, dwpe, dout, inp, B, T,
                                                                                         C);
        CHECK_LAUNCH();
        return;
    }
    size_t TC = size_t(T) * C;
    position_backward_kernel2<<<unsigned((TC + threads - 1) / threads), threads>>>(dwpe, dout, B, T, C);
    CHECK_LAUNCH();

    std::vector<int> tokens(BT), positions(BT), packed;
    CHECK_CUDA(cudaMemcpy(tokens.data(), inp, BT * sizeof(int), cudaMemcpyDeviceToHost));
    std::iota(positions.begin(), positions.end(), 0);
    std::stable_sort(positions.begin(), positions.end(), [&](int p, int q) { return tokens[p] < tokens[q]; });
    std::vector<int> distinct, offsets;
    for (int i = 0; i < BT; i++)
        if (i == 0 || tokens[positions[i]] != tokens[positions[i - 1]]) {
            distinct.push_back(tokens[positions[i]]);
            offsets.push_back(i);
        }
    offsets.push_back(BT);
    int D = int(distinct.size());
    packed.insert(packed.end(), distinct.begin(), distinct.end());
    packed.insert(packed.end(), offsets.begin(), offsets.end());
    packed.insert(packed.end(), positions.begin(), positions.end());
    CHECK_CUDA(cudaMemcpy(bucket_buffer, packed.data(), packed.size() * sizeof(int), cudaMemcpyHostToDevice));
    token_backward_kernel2<<<D, threads>>>(dwte, dout, bucket_buffer, bucket_buffer + D, bucket_buffer + 2 * D + 1, C);
    CHECK_LAUNCH();
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

// ||a - b|| / ||b||
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double d = double(a[i]) - double(b[i]);
        difference += d * d;
        reference += double(b[i]) * double(b[i]);
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

std::vector<float> download(const float* device, size_t count) {
    std::vector<float> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost));
    return host;
}

void upload(float* device, const std::vector<float>& host) {
    CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
}

// mean milliseconds per call over `repeats` calls, after one warm-up call
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
    const int B = 8, T = 1024, C = 768, V = 50257;
    const size_t BTC = size_t(B) * T * C, VC = size_t(V) * C, TC = size_t(T) * C;
    const double tolerance = 1e-5;

    // token ids skewed towards small ids (u^4 * V), so that many repeat, as common tokens do in text
    std::vector<int> tokens(size_t(B) * T);
    std::vector<float> uniform = random_floats(tokens.size(), 1);
    for (size_t i = 0; i < tokens.size(); i++) {
        double u = 0.5 * (double(uniform[i]) + 1.0);
        tokens[i] = std::min(V - 1, int(u * u * u * u * V));
    }
    std::vector<float> wte = random_floats(VC, 2), wpe = random_floats(TC, 3), dout = random_floats(BTC, 4);
    std::vector<float> dwte0 = random_floats(VC, 5), dwpe0 = random_floats(TC, 6);

    std::vector<float> out_ref(BTC), dwte_ref = dwte0, dwpe_ref = dwpe0;
    encoder_forward_cpu(out_ref.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    encoder_backward_cpu(dwte_ref.data(), dwpe_ref.data(), dout.data(), tokens.data(), B, T, C);

    int* d_tokens;
    float *d_wte, *d_wpe, *d_out, *d_dout, *d_dwte, *d_dwpe;
    CHECK_CUDA(cudaMalloc(&d_tokens, tokens.size() * sizeof(int)));
    CHECK_CUDA(cudaMalloc(&bucket_buffer, (3 * tokens.size() + 1) * sizeof(int)));
    CHECK_CUDA(cudaMalloc(&d_wte, VC * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_wpe, TC * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_out, BTC * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dout, BTC * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dwte, VC * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dwpe, TC * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(d_tokens, tokens.data(), tokens.size() * sizeof(int), cudaMemcpyHostToDevice));
    upload(d_wte, wte);
    upload(d_wpe, wpe);
    upload(d_dout, dout);

    bool ok = true;
    std::printf("encoder, B=%d T=%d C=%d V=%d\n", B, T, C, V);

    // forward: reads a wte row and a wpe row, writes an out row, per position
    const double forward_bytes = 3.0 * BTC * sizeof(float);
    for (int version = 1; version <= 2; version++) {
        CHECK_CUDA(cudaMemset(d_out, 0xFF, BTC * sizeof(float)));  // poison: NaN
        encoder_forward(version, d_out, d_tokens, d_wte, d_wpe, B, T, C);
        double error = relative_error(download(d_out, BTC), out_ref);
        float ms = time_ms([&] { encoder_forward(version, d_out, d_tokens, d_wte, d_wpe, B, T, C); });
        bool pass = error < tolerance;
        ok = ok && pass;
        std::printf("forward  version %d: relative error %.2e %s  %8.4f ms  %7.1f GB/s\n", version, error,
                    pass ? "ok  " : "FAIL", ms, forward_bytes / ms * 1e-6);
    }

    // backward: reads dout twice (dwte, dwpe), reads and writes the dwpe rows and the touched dwte rows
    std::vector<int> sorted = tokens;
    std::sort(sorted.begin(), sorted.end());
    const size_t distinct = size_t(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
    const double backward_bytes = (2.0 * BTC + 2.0 * TC + 2.0 * distinct * C) * sizeof(float);
    std::printf("backward: %zu distinct tokens among %zu positions\n", distinct, tokens.size());
    for (int version = 1; version <= 2; version++) {
        std::vector<float> runs[2][2];
        for (auto& run : runs) {
            upload(d_dwte, dwte0);
            upload(d_dwpe, dwpe0);
            encoder_backward(version, d_dwte, d_dwpe, d_dout, d_tokens, B, T, C);
            run[0] = download(d_dwte, VC);
            run[1] = download(d_dwpe, TC);
        }
        double error = std::max(relative_error(runs[0][0], dwte_ref), relative_error(runs[0][1], dwpe_ref));
        bool deterministic = std::memcmp(runs[0][0].data(), runs[1][0].data(), VC * sizeof(float)) == 0 &&
                             std::memcmp(runs[0][1].data(), runs[1][1].data(), TC * sizeof(float)) == 0;
        // gradients accumulate over the timing calls; only the time matters there
        float ms = time_ms([&] { encoder_backward(version, d_dwte, d_dwpe, d_dout, d_tokens, B, T, C); });
        bool pass = error < tolerance && (version == 1 || deterministic);
        ok = ok && pass;
        std::printf("backward version %d: relative error %.2e %s  %8.4f ms  %7.1f GB/s  %s\n", version, error,
                    pass ? "ok  " : "FAIL", ms, backward_bytes / ms * 1e-6,
                    deterministic ? "bit-identical runs" : "runs differ (atomics)");
    }

    cudaFree(d_tokens);
    cudaFree(bucket_buffer);
    cudaFree(d_wte);
    cudaFree(d_wpe);
    cudaFree(d_out);
    cudaFree(d_dout);
    cudaFree(d_dwte);
    cudaFree(d_dwpe);
    std::printf(ok ? "all versions match the reference\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
