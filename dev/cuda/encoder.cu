// Kernel lab: the encoder (token + position embedding), forward and backward.
//   out[b,t,:] = wte[inp[b,t],:] + wpe[t,:];   dwte[inp[b,t],:] += dout[b,t,:];   dwpe[t,:] += dout[b,t,:]
// A standalone program: a CPU reference, the kernel versions tried, a correctness check of each against the
// reference, and timings for a GPT-2 124M-sized shape (B=8, T=1024, C=768, V=50257).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/encoder
// Exits non-zero when a version disagrees with the reference. The last line sums up the shipped version (2).
//
// Forward versions:
//   1. one thread per output float
//   2. one thread per float4 (four channels): cuda::encoder_forward, model/cuda/encoder.cu (included below, not
//      copied), which takes this path when C % 4 == 0 and the buffers are 16-byte aligned
// Backward versions:
//   1. one thread per (b,t,c) with atomicAdd into dwte and dwpe: simple, but the order of the additions, and so
//      the rounding, changes from run to run
//   2. deterministic, cuda::encoder_backward (model/cuda/encoder.cu): dwpe one thread per (t,c) summing over b in
//      order; dwte from token buckets built on the host (a CSR list of positions per distinct token, in
//      increasing order), one block per distinct token. The timing includes the host round trip.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "model/cuda/encoder.cu"

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
// Kernels (version 2 is model/cuda/encoder.cu's)

// forward version 1: one thread per output float
__global__ void encoder_forward_kernel1(float* __restrict__ out, const int* __restrict__ inp,
                                        const float* __restrict__ wte, const float* __restrict__ wpe, int B, int T,
                                        int C) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C) return;
    int bt = int(index / C), c = int(index % C), t = bt % T;
    out[index] = wte[size_t(inp[bt]) * C + c] + wpe[size_t(t) * C + c];
}

// backward version 1: one thread per (b,t,c), atomics (non-deterministic)
__global__ void encoder_backward_kernel1(float* dwte, float* dwpe, const float* __restrict__ dout,
                                         const int* __restrict__ inp, int B, int T, int C) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(B) * T * C) return;
    int bt = int(index / C), c = int(index % C), t = bt % T;
    float d = dout[index];
    atomicAdd(&dwte[size_t(inp[bt]) * C + c], d);
    atomicAdd(&dwpe[size_t(t) * C + c], d);
}

void encoder_forward(int version, float* out, const int* inp, const float* wte, const float* wpe, int B, int T, int C) {
    if (version == 2) return cuda::encoder_forward(out, inp, wte, wpe, B, T, C);
    encoder_forward_kernel1<<<ceil_div(size_t(B) * T * C, 256), 256>>>(out, inp, wte, wpe, B, T, C);
    CHECK_LAUNCH();
}

void encoder_backward(int version, float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T, int C) {
    if (version == 2) return cuda::encoder_backward(dwte, dwpe, dout, inp, B, T, C);
    encoder_backward_kernel1<<<ceil_div(size_t(B) * T * C, 256), 256>>>(dwte, dwpe, dout, inp, B, T, C);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    const int B = 8, T = 1024, C = 768, V = 50257;
    const size_t BTC = size_t(B) * T * C, VC = size_t(V) * C, TC = size_t(T) * C;
    const double tolerance = 1e-5;
    bool ok = true;
    std::string shipped;

    // token ids skewed towards small ids (u^4 * V), so that many repeat, as common tokens do in text
    std::vector<int> tokens(size_t(B) * T);
    std::vector<float> uniform = random_floats(tokens.size(), 1, 0.0f, 1.0f);
    for (size_t i = 0; i < tokens.size(); i++) {
        double u = uniform[i];
        tokens[i] = std::min(V - 1, int(u * u * u * u * V));
    }
    std::vector<float> wte = random_floats(VC, 2), wpe = random_floats(TC, 3), dout = random_floats(BTC, 4);
    std::vector<float> dwte0 = random_floats(VC, 5), dwpe0 = random_floats(TC, 6);

    std::vector<float> out_ref(BTC), dwte_ref = dwte0, dwpe_ref = dwpe0;
    encoder_forward_cpu(out_ref.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    encoder_backward_cpu(dwte_ref.data(), dwpe_ref.data(), dout.data(), tokens.data(), B, T, C);

    int* d_tokens = to_device(tokens);
    float *d_wte = to_device(wte), *d_wpe = to_device(wpe), *d_out = to_device(out_ref), *d_dout = to_device(dout);
    float *d_dwte = to_device(dwte0), *d_dwpe = to_device(dwpe0);
    std::printf("encoder, B=%d T=%d C=%d V=%d\n", B, T, C, V);

    // forward: reads a wte row and a wpe row, writes an out row, per position
    const double forward_bytes = 3.0 * BTC * sizeof(float);
    for (int version = 1; version <= 2; version++) {
        CHECK_CUDA(cudaMemset(d_out, 0xFF, BTC * sizeof(float)));  // poison: NaN
        encoder_forward(version, d_out, d_tokens, d_wte, d_wpe, B, T, C);
        double error = relative_error(download(d_out, BTC), out_ref);
        float ms = time_ms([&] { encoder_forward(version, d_out, d_tokens, d_wte, d_wpe, B, T, C); });
        ok &= print_result(format("forward  version %d", version), error, tolerance, ms, forward_bytes);
        if (version == 2) shipped = timing("fwd", ms, forward_bytes);
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
        ok &= deterministic || version == 1;
        // gradients accumulate over the timing calls; only the time matters there
        float ms = time_ms([&] { encoder_backward(version, d_dwte, d_dwpe, d_dout, d_tokens, B, T, C); });
        ok &= print_result(format("backward version %d", version), error, tolerance, ms, backward_bytes,
                           repeatability(deterministic, version == 2));
        if (version == 2) shipped += " | " + timing("bwd", ms, backward_bytes);
    }

    CHECK_CUDA(cudaFree(d_tokens));
    for (float* p : {d_wte, d_wpe, d_out, d_dout, d_dwte, d_dwpe}) CHECK_CUDA(cudaFree(p));
    return finish("encoder", ok, shipped);
}
