// Kernel lab: I-LoRA's consistency loss and EMA (lora/METHODS.md section 8).
//   consistency:  d = h_fast - h_slow (N,C);  dh = 2 w[n] d;  row_losses[n] = w[n] sum_c d^2
//   EMA:          slow = lambda slow + (1 - lambda) fast
// A standalone program: the CPU reference (lora/cpu/consistency.h), the kernel versions tried, a correctness check
// of each against the reference, and timings for GPT-2 124M-sized shapes: the consistency over a step's
// B*T = 2*16*1024 rows (current and replay batches) of C = 768, the EMA over the qkv LoRA of r = 8 on 12 layers
// (12 * 8 * (768 + 2304) = 294,912 parameters).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/consistency
// Exits non-zero when a version disagrees with the reference or is not bit-identical run to run. The last line
// sums up the shipped versions (1).
//
// Versions of the consistency kernel:
//   1. one block of 256 threads per row, channels strided over the block, the row's sum by warp shuffles then one
//      warp over the 8 warp sums: cuda::consistency_loss, lora/cuda/consistency.cu (included below, not copied)
//   2. one warp per row (8 rows per block of 256), the row's sum by warp shuffles alone: no shared memory and no
//      barrier, 8 times fewer blocks
// The EMA has one version: one thread per element (cuda::ema_update). Both are memory-bound.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "lora/cpu/consistency.h"
#include "lora/cuda/consistency.cu"

// ---------------------------------------------------------------------------------------------------------
// Kernels (version 1 is lora/cuda/consistency.cu's)

// version 2: warp (blockIdx.x * 8 + threadIdx.x / 32) handles that row
__global__ void consistency_loss_kernel2(float* __restrict__ dh, float* __restrict__ row_losses,
                                         const float* __restrict__ h_fast, const float* __restrict__ h_slow,
                                         const float* __restrict__ row_weights, int N, int C) {
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;  // whole warps leave together
    const size_t offset = size_t(row) * C;
    const float w = row_weights[row], two_w = 2.0f * w;
    float partial = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = h_fast[offset + c] - h_slow[offset + c];
        dh[offset + c] = two_w * d;
        partial += d * d;
    }
    partial = warp_sum(partial);  // model/cuda/block_reduce.cuh (through lora/cuda/consistency.cu)
    if (lane == 0) row_losses[row] = w * partial;
}

void consistency_loss(int version, float* dh, float* row_losses, const float* h_fast, const float* h_slow,
                      const float* row_weights, int N, int C) {
    if (version == 1) return cuda::consistency_loss(dh, row_losses, h_fast, h_slow, row_weights, N, C);
    consistency_loss_kernel2<<<ceil_div(size_t(N), 8), 256>>>(dh, row_losses, h_fast, h_slow, row_weights, N, C);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main(int argc, char** argv) {
    print_device();
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    const double tolerance = 1e-5;
    bool ok = true;
    std::string shipped;

    // consistency: the full shape (timed) and an odd one (checked only)
    struct Shape {
        int N, C;
    } shapes[] = {{2 * 16 * 1024, 768}, {37, 771}};
    for (const Shape& s : shapes) {
        const size_t NC = size_t(s.N) * s.C;
        std::vector<float> fast = random_floats(NC, 1), slow = random_floats(NC, 2);
        std::vector<float> weights = random_floats(size_t(s.N), 3, 0.0f, 1.0f);
        for (int n = 0; n < s.N / 2; n++) weights[n] = 0.0f;  // the current batch's rows weigh 0
        std::vector<float> dh_ref(NC), losses_ref(s.N);
        cpu::consistency_loss(dh_ref.data(), losses_ref.data(), fast.data(), slow.data(), weights.data(), s.N, s.C);
        float *d_fast = to_device(fast), *d_slow = to_device(slow), *d_weights = to_device(weights);
        float *d_dh = to_device(dh_ref), *d_losses = to_device(losses_ref);
        std::printf("consistency, N=%d C=%d\n", s.N, s.C);
        for (int version : versions) {
            CHECK_CUDA(cudaMemset(d_dh, 0xFF, NC * sizeof(float)));  // poison: NaN
            CHECK_CUDA(cudaMemset(d_losses, 0xFF, size_t(s.N) * sizeof(float)));
            consistency_loss(version, d_dh, d_losses, d_fast, d_slow, d_weights, s.N, s.C);
            const std::vector<float> dh = download(d_dh, NC), losses = download(d_losses, size_t(s.N));
            consistency_loss(version, d_dh, d_losses, d_fast, d_slow, d_weights, s.N, s.C);
            const bool identical = same_bits(download(d_dh, NC), dh) && same_bits(download(d_losses, s.N), losses);
            ok &= identical;
            const double error = std::max(relative_error(dh, dh_ref), relative_error(losses, losses_ref));
            if (s.N != shapes[0].N) {
                ok &= print_result(format("consistency version %d, odd shape", version), error, tolerance, -1.0f,
                                   0.0, repeatability(identical, true));
                continue;
            }
            const float ms = time_ms([&] { consistency_loss(version, d_dh, d_losses, d_fast, d_slow, d_weights,
                                                            s.N, s.C); });
            const double bytes = 3.0 * NC * sizeof(float);  // read h_fast and h_slow, write dh
            ok &= print_result(format("consistency version %d", version), error, tolerance, ms, bytes,
                               repeatability(identical, true));
            if (version == 1) shipped = timing("consistency", ms, bytes);
        }
        for (float* p : {d_fast, d_slow, d_weights, d_dh, d_losses}) CHECK_CUDA(cudaFree(p));
    }

    // EMA
    const size_t P = 12 * 8 * (768 + 2304);
    const float lambda = 0.99f;
    std::vector<float> slow = random_floats(P, 4), fast = random_floats(P, 5);
    std::vector<float> slow_ref = slow;
    cpu::ema_update(slow_ref.data(), fast.data(), P, lambda);
    float *d_slow = to_device(slow), *d_fast = to_device(fast);
    cuda::ema_update(d_slow, d_fast, P, lambda);
    const double error = relative_error(download(d_slow, P), slow_ref);
    const float ms = time_ms([&] { cuda::ema_update(d_slow, d_fast, P, lambda); });
    const double bytes = 3.0 * P * sizeof(float);
    ok &= print_result("ema version 1", error, tolerance, ms, bytes);
    shipped += " | " + timing("ema", ms, bytes);
    for (float* p : {d_slow, d_fast}) CHECK_CUDA(cudaFree(p));
    return finish("consistency", ok, shipped);
}
