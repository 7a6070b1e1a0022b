// Kernel lab: the multi-branch LoRA linear's adapter path (lora/METHODS.md section 1; the CPU reference is
// model/cpu/lora_linear.h). With `branches` branches of rank r stacked, R = branches * r:
//   forward:  h~ = inp .* mask;  hidden = h~ A^T (N,R);  out += scale * (hidden .* w) Bt           (Bt = B^T (R,OC))
//   backward: g = scale * dout Bt^T;  dBt[trainable] += scale * (hidden .* w)[:, trainable]^T dout;
//             dw[n,b] += sum over branch b's columns of g .* hidden;  gw = g .* w;
//             dA[trainable] += gw[:, trainable]^T h~;  dinp += (gw A) .* mask
// (w: one weight per row and branch, broadcast over the branch's r columns; mask: inverted dropout's 0 or 1/(1-p)).
// A standalone program: a CPU reference (plain loops, double), the versions tried, a correctness check of each
// against the reference at N = 256 rows, and timings at GPT-2 124M's qkv linear (N = B*T = 8*1024, C = 768,
// OC = 2304, r = 8): plain LoRA (one trainable branch, no weights, no dropout) and 15 stacked branches with per-row
// weights and dropout, the newest trainable (GainLoRA, AM-LoRA, IncLoRA after 14 tasks).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/lora_linear [version]
// Exits non-zero when a version disagrees with the reference, writes into a frozen branch's gradient, or (version 1)
// is not bit-identical run to run. The last line sums up the shipped version (1).
//
// Versions:
//   1. cuda::lora_forward and cuda::lora_backward, model/cuda/lora_linear.cu (included below, not copied), in fp32
//      (--precision fp32): the branches stacked into one down and one up product (cuBLAS), the frozen branches'
//      rows left out of dA and dBt's products, small kernels for the mask, the weights and dw
//   2. the same code in bf16 (--precision bf16, the CLI's default on CUDA: cuBLAS's FAST_16BF, fp32 storage),
//      checked at DESIGN.md's bf16 tolerance
//   3. the forward only, one down and one up product per branch (2 * branches cuBLAS calls, what a loop over
//      per-branch adapters does) instead of the stacked pair: what stacking the branches buys
// Prediction: at r = 8 the products are thin (K = 8 for the up product) and memory-bound, reading inp (N,C) and
// writing out (N,OC) once per product; so 15 branches stacked cost little more than 1, and version 3 costs about
// 15 times the stacked forward.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "model/cuda/lora_linear.cu"

// ---------------------------------------------------------------------------------------------------------
// CPU reference (double), from the same float inputs

struct Inputs {
    std::vector<float> inp, A, Bt, w, mask, dout;  // w and mask empty: none
};

struct Outputs {
    std::vector<double> out, hidden, dinp, dA, dBt, dw;  // out, dinp, dw from zero; dA, dBt their trainable rows
};

Outputs lora_linear_cpu(const Inputs& x, float scale, const LoraShape& s) {
    const int R = s.branches * s.rank, frozen = s.first_trainable_branch * s.rank;
    const size_t N = size_t(s.N);
    auto mask = [&](size_t n, int c) { return x.mask.empty() ? 1.0 : double(x.mask[n * s.C + c]); };
    auto weight = [&](size_t n, int k) { return x.w.empty() ? 1.0 : double(x.w[n * s.branches + k / s.rank]); };
    Outputs o{std::vector<double>(N * s.OC, 0.0), std::vector<double>(N * R, 0.0), std::vector<double>(N * s.C, 0.0),
              std::vector<double>(size_t(R - frozen) * s.C, 0.0), std::vector<double>(size_t(R - frozen) * s.OC, 0.0),
              std::vector<double>(N * s.branches, 0.0)};
    std::vector<double> g(R);
    for (size_t n = 0; n < N; n++) {
        for (int k = 0; k < R; k++) {
            double sum = 0;
            for (int c = 0; c < s.C; c++) sum += double(x.inp[n * s.C + c]) * mask(n, c) * x.A[size_t(k) * s.C + c];
            o.hidden[n * R + k] = sum;
        }
        for (int j = 0; j < s.OC; j++) {
            double sum = 0;
            for (int k = 0; k < R; k++) sum += o.hidden[n * R + k] * weight(n, k) * x.Bt[size_t(k) * s.OC + j];
            o.out[n * s.OC + j] = double(scale) * sum;
        }
        for (int k = 0; k < R; k++) {
            double sum = 0;
            for (int j = 0; j < s.OC; j++) sum += double(x.dout[n * s.OC + j]) * x.Bt[size_t(k) * s.OC + j];
            g[k] = double(scale) * sum;
            o.dw[n * s.branches + k / s.rank] += g[k] * o.hidden[n * R + k];
            if (k >= frozen)
                for (int j = 0; j < s.OC; j++)
                    o.dBt[size_t(k - frozen) * s.OC + j] +=
                        double(scale) * o.hidden[n * R + k] * weight(n, k) * x.dout[n * s.OC + j];
            g[k] *= weight(n, k);  // gw
        }
        for (int c = 0; c < s.C; c++) {
            double sum = 0;
            for (int k = 0; k < R; k++) sum += g[k] * x.A[size_t(k) * s.C + c];
            o.dinp[n * s.C + c] = sum * mask(n, c);
            for (int k = frozen; k < R; k++)
                o.dA[size_t(k - frozen) * s.C + c] += g[k] * double(x.inp[n * s.C + c]) * mask(n, c);
        }
    }
    return o;
}

// ---------------------------------------------------------------------------------------------------------
// Version 3 (the forward, one branch at a time; versions 1 and 2 are model/cuda/lora_linear.cu's)

void lora_forward_per_branch(float* out, float* hidden, const float* inp, const float* A, const float* Bt,
                             const float* block_weights, const float* dropout_mask, float scale, LoraShape s) {
    const int R = s.branches * s.rank;
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t handle = cublas_handle();
    const float* dropped = dropped_input(inp, dropout_mask, size_t(s.N) * s.C);  // lora_linear.cu's helpers
    // hidden[:, branch] (N,r), leading dimension R = h~ (N,C) A_b^T (C,r)
    for (int b = 0; b < s.branches; b++)
        cuda::gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.rank, s.N, s.C, &one, A + size_t(b) * s.rank * s.C, s.C,
                   dropped, s.C, &zero, hidden + b * s.rank, R);
    const float* weighted = weighted_hidden(hidden, block_weights, s);
    // out (N,OC) += scale * weighted[:, branch] (N,r) Bt_b (r,OC)
    for (int b = 0; b < s.branches; b++)
        cuda::gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.OC, s.N, s.rank, &scale, Bt + size_t(b) * s.rank * s.OC, s.OC,
                   weighted + b * s.rank, R, &one, out, s.OC);
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

struct Buffers {
    float *inp, *A, *Bt, *w, *mask, *dout, *out, *hidden, *dinp, *dA, *dBt, *dw;
};

struct Config {
    const char* name;
    int branches;
    bool weights, dropout;
};

Inputs make_inputs(const Config& config, const LoraShape& s) {
    const int R = s.branches * s.rank;
    Inputs x{random_floats(size_t(s.N) * s.C, 1), random_floats(size_t(R) * s.C, 2, -0.05f, 0.05f),
             random_floats(size_t(R) * s.OC, 3, -0.05f, 0.05f), {}, {}, random_floats(size_t(s.N) * s.OC, 4)};
    if (config.weights) x.w = random_floats(size_t(s.N) * s.branches, 5, 0.0f, 1.0f);
    if (config.dropout) {
        const float p = 0.05f;
        x.mask = random_floats(size_t(s.N) * s.C, 6, 0.0f, 1.0f);
        for (float& m : x.mask) m = m < p ? 0.0f : 1.0f / (1.0f - p);
    }
    return x;
}

// the frozen rows of dA and dBt start as this pattern (the kernels must leave them), the trainable rows at zero
std::vector<float> gradient_start(int rows, int frozen_rows, int columns, uint64_t seed) {
    std::vector<float> values = random_floats(size_t(rows) * columns, seed);
    std::fill(values.begin() + size_t(frozen_rows) * columns, values.end(), 0.0f);
    return values;
}

Buffers upload_all(const Inputs& x, const LoraShape& s) {
    const int R = s.branches * s.rank, frozen = s.first_trainable_branch * s.rank;
    Buffers d{to_device(x.inp), to_device(x.A), to_device(x.Bt), x.w.empty() ? nullptr : to_device(x.w),
             x.mask.empty() ? nullptr : to_device(x.mask), to_device(x.dout),
             to_device(std::vector<float>(size_t(s.N) * s.OC)), to_device(std::vector<float>(size_t(s.N) * R)),
             to_device(std::vector<float>(size_t(s.N) * s.C)), to_device(gradient_start(R, frozen, s.C, 7)),
             to_device(gradient_start(R, frozen, s.OC, 8)), to_device(std::vector<float>(size_t(s.N) * s.branches))};
    return d;
}

void free_all(Buffers& d) {
    for (float* p : {d.inp, d.A, d.Bt, d.w, d.mask, d.dout, d.out, d.hidden, d.dinp, d.dA, d.dBt, d.dw})
        if (p) CHECK_CUDA(cudaFree(p));
}

// every output back to zero (the frozen gradient rows to their pattern)
void reset(Buffers& d, const LoraShape& s) {
    const int R = s.branches * s.rank, frozen = s.first_trainable_branch * s.rank;
    CHECK_CUDA(cudaMemset(d.out, 0, size_t(s.N) * s.OC * sizeof(float)));
    CHECK_CUDA(cudaMemset(d.hidden, 0xFF, size_t(s.N) * R * sizeof(float)));  // written, not accumulated: NaN
    CHECK_CUDA(cudaMemset(d.dinp, 0, size_t(s.N) * s.C * sizeof(float)));
    CHECK_CUDA(cudaMemset(d.dw, 0, size_t(s.N) * s.branches * sizeof(float)));
    upload(d.dA, gradient_start(R, frozen, s.C, 7));
    upload(d.dBt, gradient_start(R, frozen, s.OC, 8));
}

void forward(int version, Buffers& d, float scale, const LoraShape& s) {
    if (version == 3) return lora_forward_per_branch(d.out, d.hidden, d.inp, d.A, d.Bt, d.w, d.mask, scale, s);
    cuda::lora_forward(d.out, d.hidden, d.inp, d.A, d.Bt, d.w, d.mask, scale, s);
}

void backward(Buffers& d, float scale, const LoraShape& s) {
    cuda::lora_backward(d.dinp, d.dA, d.dBt, d.w ? d.dw : nullptr, d.dout, d.inp, d.hidden, d.A, d.Bt, d.w, d.mask,
                        scale, s);
}

std::vector<float> to_float(const std::vector<double>& values) {
    return std::vector<float>(values.begin(), values.end());
}

// rows first.. of a (rows, columns) device matrix
std::vector<float> rows_from(const float* device, int rows, int first, int columns) {
    const std::vector<float> all = download(device, size_t(rows) * columns);
    return std::vector<float>(all.begin() + size_t(first) * columns, all.end());
}

bool frozen_rows_kept(const float* device, int rows, int frozen_rows, int columns, uint64_t seed) {
    const std::vector<float> all = download(device, size_t(rows) * columns), start = gradient_start(rows, frozen_rows,
                                                                                                    columns, seed);
    return std::memcmp(all.data(), start.data(), size_t(frozen_rows) * columns * sizeof(float)) == 0;
}

int main(int argc, char** argv) {
    print_device();
    const std::vector<int> versions = versions_to_run(argc, argv, 3);
    const int C = 768, OC = 2304, rank = 8, check_N = 256, timed_N = 8 * 1024;
    const float scale = 16.0f / rank;  // alpha 16
    bool ok = true;
    std::string shipped;

    const Config configs[] = {{"1 branch", 1, false, false}, {"15 branches, weights, dropout", 15, true, true}};
    for (const Config& config : configs) {
        for (int N : {check_N, timed_N}) {
            const LoraShape s{N, C, OC, config.branches, rank, config.branches - 1};
            const int R = s.branches * s.rank, frozen = s.first_trainable_branch * s.rank;
            const Inputs x = make_inputs(config, s);
            const bool check = N == check_N;
            Outputs expected;
            if (check) expected = lora_linear_cpu(x, scale, s);
            Buffers d = upload_all(x, s);
            std::printf("%s: N=%d C=%d OC=%d r=%d%s\n", config.name, N, C, OC, rank, check ? "" : " (timed)");
            for (int version : versions) {
                cuda::set_matmul_precision(version == 2 ? MatmulPrecision::bf16 : MatmulPrecision::fp32);
                const double tolerance = version == 2 ? 1e-2 : 1e-4;  // fp32 against double: sums of 768 and 2304
                reset(d, s);
                forward(version, d, scale, s);
                const bool has_backward = version != 3;
                if (has_backward) backward(d, scale, s);
                if (check) {
                    const std::vector<float> out = download(d.out, size_t(N) * OC),
                                             hidden = download(d.hidden, size_t(N) * R);
                    ok &= print_result(format("forward  version %d", version),
                                       std::max(relative_error(out, to_float(expected.out)),
                                                relative_error(hidden, to_float(expected.hidden))),
                                       tolerance);
                    if (has_backward) {
                        const bool kept = frozen_rows_kept(d.dA, R, frozen, C, 7) &&
                                          frozen_rows_kept(d.dBt, R, frozen, OC, 8);
                        double error = std::max(
                            {relative_error(download(d.dinp, size_t(N) * C), to_float(expected.dinp)),
                             relative_error(rows_from(d.dA, R, frozen, C), to_float(expected.dA)),
                             relative_error(rows_from(d.dBt, R, frozen, OC), to_float(expected.dBt))});
                        if (config.weights)
                            error = std::max(error, relative_error(download(d.dw, size_t(N) * s.branches),
                                                                   to_float(expected.dw)));
                        bool identical = true;
                        if (version == 1) {  // the shipped fp32 path: bit-identical run to run
                            const std::vector<float> dinp = download(d.dinp, size_t(N) * C),
                                                     dA = download(d.dA, size_t(R) * C);
                            reset(d, s);
                            forward(version, d, scale, s);
                            backward(d, scale, s);
                            identical = download(d.dinp, size_t(N) * C) == dinp && download(d.dA, size_t(R) * C) == dA;
                        }
                        ok &= kept && identical;
                        ok &= print_result(format("backward version %d", version), error, tolerance, -1.0f, 0.0,
                                           std::string(kept ? "frozen rows kept" : "frozen rows CHANGED: FAIL") +
                                               (version == 1 ? ", " + repeatability(identical, true) : ""));
                    }
                    continue;
                }
                // timing: out and the gradients accumulate over the calls; only the time matters here
                const double forward_flops = 2.0 * N * R * (double(C) + OC);
                const double backward_flops =
                    2.0 * N * (double(R) * OC + double(R - frozen) * (OC + C) + double(R) * C);
                const float forward_ms = time_ms([&] { forward(version, d, scale, s); });
                std::printf("%-34s %8.4f ms  %6.1f TFLOP/s\n", format("forward  version %d", version).c_str(),
                            forward_ms, forward_flops / forward_ms * 1e-9);
                std::string line = format("%s fwd %.3f ms", config.branches == 1 ? "r8" : "15br", forward_ms);
                if (has_backward) {
                    const float backward_ms = time_ms([&] { backward(d, scale, s); });
                    std::printf("%-34s %8.4f ms  %6.1f TFLOP/s\n", format("backward version %d", version).c_str(),
                                backward_ms, backward_flops / backward_ms * 1e-9);
                    line += format(" bwd %.3f ms", backward_ms);
                }
                if (version == 1) shipped += (shipped.empty() ? "" : " | ") + line;
            }
            free_all(d);
        }
    }
    cuda::set_matmul_precision(MatmulPrecision::fp32);
    return finish("lora_linear", ok, shipped);
}
