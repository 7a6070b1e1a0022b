// Kernel lab: the residual connection, forward and backward, and the gradient rescaling that shares its file.
//   forward:  out = a + b
//   backward: da += dout;  db += dout
//   scale:    x *= factor   (the gradient rescaling of data-parallel averaging and of loss scaling)
// A standalone program: the CPU reference (model/cpu/residual.h), the kernel versions tried, a correctness check
// of each against the reference, and timings for a GPT-2 124M-sized residual stream (B*T*C = 8*1024*768 floats).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/residual [version]
// Exits non-zero when a version disagrees with the reference. The last line sums up the shipped version (1).
//
// Versions (forward and backward alike):
//   1. one thread per element, scalar loads: cuda::residual_forward and cuda::residual_backward,
//      model/cuda/residual.cu (included below, not copied): any N and any alignment
//   2. one thread per float4, 16-byte loads and stores; the N % 4 tail handled by the first threads
// scale has one version (cuda::scale, one thread per element).
// All are memory-bound: the forward moves 12 bytes per element, the backward 20, scale 8. The sums are exact in
// either version (one float addition per output element), so every version must match the reference bit for bit.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "model/cpu/residual.h"
#include "model/cuda/residual.cu"

// ---------------------------------------------------------------------------------------------------------
// Kernels (version 1 is model/cuda/residual.cu's)

// version 2: thread i adds the float4s i of a and b, then the N % 4 tail
__global__ void residual_forward_kernel2(float* __restrict__ out, const float* __restrict__ a,
                                         const float* __restrict__ b, size_t N) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const size_t vectors = N / 4;
    if (i < vectors) {
        const float4 x = reinterpret_cast<const float4*>(a)[i], y = reinterpret_cast<const float4*>(b)[i];
        reinterpret_cast<float4*>(out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
    }
    if (i < N % 4) out[vectors * 4 + i] = a[vectors * 4 + i] + b[vectors * 4 + i];
}

__global__ void residual_backward_kernel2(float* __restrict__ da, float* __restrict__ db,
                                          const float* __restrict__ dout, size_t N) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const size_t vectors = N / 4;
    if (i < vectors) {
        const float4 d = reinterpret_cast<const float4*>(dout)[i];
        float4 x = reinterpret_cast<float4*>(da)[i], y = reinterpret_cast<float4*>(db)[i];
        x.x += d.x, x.y += d.y, x.z += d.z, x.w += d.w;
        y.x += d.x, y.y += d.y, y.z += d.z, y.w += d.w;
        reinterpret_cast<float4*>(da)[i] = x;
        reinterpret_cast<float4*>(db)[i] = y;
    }
    if (i < N % 4) {
        const size_t j = vectors * 4 + i;
        da[j] += dout[j];
        db[j] += dout[j];
    }
}

int blocks_for_vectors(size_t N) { return ceil_div(std::max<size_t>(N / 4, 4), 256); }  // at least the 3 tail threads

void residual_forward(int version, float* out, const float* a, const float* b, size_t N) {
    if (version == 1) return cuda::residual_forward(out, a, b, N);
    residual_forward_kernel2<<<blocks_for_vectors(N), 256>>>(out, a, b, N);
    CHECK_LAUNCH();
}

void residual_backward(int version, float* da, float* db, const float* dout, size_t N) {
    if (version == 1) return cuda::residual_backward(da, db, dout, N);
    residual_backward_kernel2<<<blocks_for_vectors(N), 256>>>(da, db, dout, N);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main(int argc, char** argv) {
    print_device();
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    const int B = 8, T = 1024, C = 768;
    const size_t N = size_t(B) * T * C;
    const double tolerance = 1e-7;  // the results must be exact: any difference is a bug
    bool ok = true;
    std::string shipped;

    const std::vector<float> a = random_floats(N, 1), b = random_floats(N, 2), dout = random_floats(N, 3);
    const std::vector<float> da0 = random_floats(N, 4), db0 = random_floats(N, 5);
    float *d_a = to_device(a), *d_b = to_device(b), *d_dout = to_device(dout), *d_out = to_device(a),
          *d_da = to_device(da0), *d_db = to_device(db0);
    std::printf("residual, N = B*T*C = %zu (B=%d T=%d C=%d)\n", N, B, T, C);

    // forward: the full N (timed) and an odd N (checked only: the tail)
    for (size_t n : {N, size_t(4 * 771 + 3)}) {
        std::vector<float> expected(n);
        cpu::residual_forward(expected.data(), a.data(), b.data(), n);
        for (int version : versions) {
            CHECK_CUDA(cudaMemset(d_out, 0xFF, n * sizeof(float)));  // poison: NaN
            residual_forward(version, d_out, d_a, d_b, n);
            const std::vector<float> out = download(d_out, n);
            const double error = same_bits(out, expected) ? 0.0 : std::max(relative_error(out, expected), 1.0);
            if (n != N) {
                ok &= print_result(format("forward  version %d, N=%zu", version, n), error, tolerance);
                continue;
            }
            const float ms = time_ms([&] { residual_forward(version, d_out, d_a, d_b, N); });
            const double bytes = 3.0 * N * sizeof(float);
            ok &= print_result(format("forward  version %d", version), error, tolerance, ms, bytes, "bit-exact check");
            if (version == 1) shipped = timing("fwd", ms, bytes);
        }
    }

    // backward: both gradients accumulate
    for (size_t n : {N, size_t(4 * 771 + 3)}) {
        std::vector<float> da_ref(da0.begin(), da0.begin() + n), db_ref(db0.begin(), db0.begin() + n);
        cpu::residual_backward(da_ref.data(), db_ref.data(), dout.data(), n);
        for (int version : versions) {
            upload(d_da, da0);
            upload(d_db, db0);
            residual_backward(version, d_da, d_db, d_dout, n);
            const bool exact = same_bits(download(d_da, n), da_ref) && same_bits(download(d_db, n), db_ref);
            const double error = exact ? 0.0 : 1.0;
            if (n != N) {
                ok &= print_result(format("backward version %d, N=%zu", version, n), error, tolerance);
                continue;
            }
            // da, db accumulate over the timing calls; only the time matters there
            const float ms = time_ms([&] { residual_backward(version, d_da, d_db, d_dout, N); });
            const double bytes = 5.0 * N * sizeof(float);
            ok &= print_result(format("backward version %d", version), error, tolerance, ms, bytes, "bit-exact check");
            if (version == 1) shipped += " | " + timing("bwd", ms, bytes);
        }
    }

    // scale (one version): x *= 0.25 (a power of two: exact), then timed on the full N
    {
        const float factor = 0.25f;
        std::vector<float> expected = a;
        cpu::scale(expected.data(), factor, N);
        upload(d_out, a);
        cuda::scale(d_out, factor, N);
        const double error = same_bits(download(d_out, N), expected) ? 0.0 : 1.0;
        const float ms = time_ms([&] { cuda::scale(d_out, 1.0f, N); });  // factor 1 keeps the values finite
        const double bytes = 2.0 * N * sizeof(float);
        ok &= print_result("scale    version 1", error, tolerance, ms, bytes, "bit-exact check");
        shipped += " | " + timing("scale", ms, bytes);
    }

    for (float* p : {d_a, d_b, d_dout, d_out, d_da, d_db}) CHECK_CUDA(cudaFree(p));
    return finish("residual", ok, shipped);
}
