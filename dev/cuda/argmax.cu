// Kernel lab: greedy decoding's choice, the index of the largest logit of each row.
//   out[n] = argmax over v < V of logits[n, v]   (logits (N,Vp); the padded columns V..Vp-1 ignored; ties to the
//                                                 lowest index)
// A standalone program: the CPU reference (model/cpu/argmax.h), the kernel versions tried, an exact check of each
// against the reference (on random logits and on rows built with ties and a maximum in the last real column),
// and timings at GPT-2 124M's vocabulary (V = 50257, Vp = 50304) for a decoding step of B = 8 sequences and for
// 64 rows.
//
// Build and run (from the repository root):
//   make lab && ./build/lab/argmax [version]
// Exits non-zero when a version picks another index than the reference anywhere. The last line sums up the
// shipped version (1).
//
// Versions:
//   1. one block of 1024 threads per row, each thread scanning the columns v = thread, thread + 1024, ... then a
//      fixed-order merge of the (value, index) pairs by warp shuffles: cuda::argmax_rows, model/cuda/argmax.cu
//      (included below, not copied)
//   2. the same with 256 threads per row and each thread reading four consecutive columns at a time (one 16-byte
//      load: a row starts 16-byte aligned when Vp is a multiple of 4, as the model pads it), the V % 4 tail by
//      scalar loads
// Prediction: a decoding step has only B rows, so version 1 spreads a row over more threads and the few blocks
// over more of the GPU; version 2 issues a quarter of the loads but leaves most SMs idle at N = 8, and wins only
// when there are enough rows to fill the GPU.
#include <climits>

#include "dev/cuda/lab_common.h"
#include "model/cpu/argmax.h"
#include "model/cuda/argmax.cu"  // version 1; also Best and better(), which version 2 uses

// ---------------------------------------------------------------------------------------------------------
// Kernels (version 1 is model/cuda/argmax.cu's)

constexpr int kThreads2 = 256;

// version 2: grid N, kThreads2 threads; thread t scans the float4s t, t + kThreads2, ... of the first V / 4 * 4
// columns, then the tail. A thread's columns are visited in increasing order and only a strictly larger value
// replaces its best, so each thread keeps its first largest; the merge then breaks ties by index.
__global__ void __launch_bounds__(kThreads2)
    argmax_kernel2(int* __restrict__ out, const float* __restrict__ logits, int V, int Vp) {
    const float* z = logits + size_t(blockIdx.x) * Vp;
    Best best{-INFINITY, INT_MAX};
    auto visit = [&](float x, int v) {
        if (x > best.value || best.index == INT_MAX) best = Best{x, v};
    };
    const int vectors = V / 4;
    for (int i = threadIdx.x; i < vectors; i += blockDim.x) {
        const float4 x = reinterpret_cast<const float4*>(z)[i];
        visit(x.x, 4 * i);
        visit(x.y, 4 * i + 1);
        visit(x.z, 4 * i + 2);
        visit(x.w, 4 * i + 3);
    }
    for (int v = 4 * vectors + threadIdx.x; v < V; v += blockDim.x) visit(z[v], v);
    best = block_reduce(best, Best{-INFINITY, INT_MAX}, better);
    if (threadIdx.x == 0) out[blockIdx.x] = best.index;
}

void argmax_rows(int version, int* out, const float* logits, int N, int V, int Vp) {
    if (version == 1) return cuda::argmax_rows(out, logits, N, V, Vp);
    if (Vp % 4 != 0) {
        std::fprintf(stderr, "argmax version 2 needs Vp a multiple of 4 (got %d)\n", Vp);
        std::exit(2);
    }
    argmax_kernel2<<<N, kThreads2>>>(out, logits, V, Vp);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

// logits (N,Vp): random in [-10, 10); row n % 4 == 1 holds its maximum twice (the later copy must lose), row
// n % 4 == 2 in its last real column, row n % 4 == 3 a larger value in the padding (which must be ignored).
std::vector<float> make_logits(int N, int V, int Vp, uint64_t seed) {
    std::vector<float> logits = random_floats(size_t(N) * Vp, seed, -10.0f, 10.0f);
    for (int n = 0; n < N; n++) {
        float* z = logits.data() + size_t(n) * Vp;
        if (n % 4 == 1) z[V / 3] = z[2 * V / 3] = 20.0f;
        if (n % 4 == 2) z[V - 1] = 20.0f;
        if (n % 4 == 3 && Vp > V) z[Vp - 1] = 30.0f;
    }
    return logits;
}

int main(int argc, char** argv) {
    print_device();
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    const int V = 50257, Vp = 50304;
    bool ok = true;
    std::string shipped;

    // (N, V, Vp): a decoding step of 8 sequences and 64 rows at GPT-2's vocabulary (timed), a tiny odd vocabulary
    struct Shape {
        int N, V, Vp;
    } shapes[] = {{8, V, Vp}, {64, V, Vp}, {5, 37, 40}};
    for (const Shape& s : shapes) {
        const std::vector<float> logits = make_logits(s.N, s.V, s.Vp, uint64_t(s.N));
        std::vector<int> expected(s.N);
        cpu::argmax_rows(expected.data(), logits.data(), s.N, s.V, s.Vp);
        float* d_logits = to_device(logits);
        int* d_out;
        CHECK_CUDA(cudaMalloc(&d_out, s.N * sizeof(int)));
        for (int version : versions) {
            CHECK_CUDA(cudaMemset(d_out, 0xFF, s.N * sizeof(int)));  // poison: -1
            argmax_rows(version, d_out, d_logits, s.N, s.V, s.Vp);
            const std::vector<int> out = download(d_out, size_t(s.N));
            int wrong = 0;
            for (int n = 0; n < s.N; n++) wrong += out[n] != expected[n];
            const double error = double(wrong) / s.N;  // the fraction of rows with another index
            const std::string what = format("version %d, N=%d V=%d", version, s.N, s.V);
            if (s.V != V) {
                ok &= print_result(what, error, 1e-12, -1.0f, 0.0, format("%d of %d rows wrong", wrong, s.N));
                continue;
            }
            const float ms = time_ms([&] { argmax_rows(version, d_out, d_logits, s.N, s.V, s.Vp); });
            const double bytes = double(s.N) * s.V * sizeof(float);
            ok &= print_result(what, error, 1e-12, ms, bytes, format("%d of %d rows wrong", wrong, s.N));
            if (version == 1)
                shipped += (shipped.empty() ? "" : " | ") + timing(format("N=%d", s.N).c_str(), ms, bytes);
        }
        CHECK_CUDA(cudaFree(d_logits));
        CHECK_CUDA(cudaFree(d_out));
    }
    return finish("argmax", ok, shipped);
}
