// Kernel lab: inverted dropout's mask for the LoRA input (model/dropout_hash.h):
//   mask[i] = 1/(1-p) where u(seed, first + i) >= p, else 0,   u = a counter-based hash of (seed, index) in [0, 1)
// A standalone program: the CPU reference (model/cpu/dropout.h), the kernel versions tried, a check that each is
// bit-identical to the reference (the CPU and GPU masks must agree exactly: a run that moves between backends
// keeps its masks), and timings for one adapted linear's input at GPT-2 124M's shape (B*T*C = 8*1024*768).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/dropout [version]
// Exits non-zero when a version's mask differs from the reference in any bit. The last line sums up the shipped
// version (1).
//
// Versions:
//   1. one thread per element: cuda::dropout_mask, model/cuda/dropout.cu (included below, not copied)
//   2. one thread per four elements, one 16-byte store (the mask's start 16-byte aligned, as cudaMalloc gives);
//      the count % 4 tail handled by the first threads. The hash (two splitmix64 rounds, 64-bit multiplies) is the
//      same per element either way.
// Prediction: the mask is written, never read, so at 4 bytes per element the kernel is bound by the 64-bit
// integer multiplies of the hash (6 per element), not by memory; version 2 saves store instructions only, so the
// two versions time within a few percent of each other.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "model/cpu/dropout.h"
#include "model/cuda/dropout.cu"

// ---------------------------------------------------------------------------------------------------------
// Kernels (version 1 is model/cuda/dropout.cu's)

// version 2: thread i writes elements 4i .. 4i+3 with one float4 store, then the count % 4 tail
__global__ void dropout_mask_kernel2(float* __restrict__ mask, size_t count, uint64_t seed, float p,
                                     float keep_value, uint64_t first) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const size_t vectors = count / 4;
    if (i < vectors) {
        const uint64_t e = first + 4 * i;
        reinterpret_cast<float4*>(mask)[i] = make_float4(dropout_keep(seed, e, p) ? keep_value : 0.0f,
                                                         dropout_keep(seed, e + 1, p) ? keep_value : 0.0f,
                                                         dropout_keep(seed, e + 2, p) ? keep_value : 0.0f,
                                                         dropout_keep(seed, e + 3, p) ? keep_value : 0.0f);
    }
    if (i < count % 4) {
        const size_t j = vectors * 4 + i;
        mask[j] = dropout_keep(seed, first + j, p) ? keep_value : 0.0f;
    }
}

void dropout_mask(int version, float* mask, size_t count, uint64_t seed, float p, uint64_t first) {
    if (version == 1) return cuda::dropout_mask(mask, count, seed, p, first);
    const float keep_value = 1.0f / (1.0f - p);  // in float on the host, as the shipped version and the reference
    dropout_mask_kernel2<<<ceil_div(std::max<size_t>(count / 4, 4), 256), 256>>>(mask, count, seed, p, keep_value,
                                                                                  first);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main(int argc, char** argv) {
    print_device();
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    const int B = 8, T = 1024, C = 768;
    const size_t N = size_t(B) * T * C;
    const uint64_t seed = 1234;
    bool ok = true;
    std::string shipped;

    float* d_mask;
    CHECK_CUDA(cudaMalloc(&d_mask, N * sizeof(float)));
    std::printf("dropout mask, N = B*T*C = %zu (B=%d T=%d C=%d)\n", N, B, T, C);

    // (count, p, first): the full mask at LoRA's usual p (timed); an odd count at an offset (a data-parallel rank's
    // rows of the global mask); p = 0, which keeps everything
    struct Case {
        size_t count;
        float p;
        uint64_t first;
    } cases[] = {{N, 0.05f, 0}, {4 * 771 + 3, 0.5f, 12345}, {1000, 0.0f, 0}};
    for (const Case& c : cases) {
        std::vector<float> expected(c.count);
        cpu::dropout_mask(expected.data(), c.count, seed, c.p, c.first);
        size_t kept = 0;
        for (float value : expected) kept += value != 0.0f;
        for (int version : versions) {
            CHECK_CUDA(cudaMemset(d_mask, 0xFF, c.count * sizeof(float)));  // poison: NaN
            dropout_mask(version, d_mask, c.count, seed, c.p, c.first);
            const std::vector<float> mask = download(d_mask, c.count);
            const bool identical = std::memcmp(mask.data(), expected.data(), c.count * sizeof(float)) == 0;
            const double error = identical ? 0.0 : std::max(relative_error(mask, expected), 1.0);
            const std::string note = format("bit-identical to the CPU: %s; kept %.4f (1-p = %.4f)",
                                            identical ? "yes" : "NO", double(kept) / c.count, 1.0 - c.p);
            if (c.count != N) {
                ok &= print_result(format("version %d, N=%zu p=%.2f first=%llu", version, c.count, c.p,
                                          (unsigned long long)c.first),
                                   error, 1e-12, -1.0f, 0.0, note);
                continue;
            }
            const float ms = time_ms([&] { dropout_mask(version, d_mask, N, seed, c.p, 0); });
            const double bytes = double(N) * sizeof(float);
            ok &= print_result(format("version %d, p=%.2f", version, c.p), error, 1e-12, ms, bytes, note);
            if (version == 1) shipped = timing("mask", ms, bytes);
        }
    }

    CHECK_CUDA(cudaFree(d_mask));
    return finish("dropout", ok, shipped);
}
