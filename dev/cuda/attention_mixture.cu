// Kernel lab: AM-LoRA's attention over the branches of one adapted linear (lora/METHODS.md section 9; the
// math is in lora/cpu/attention_mixture.h): P_i = s Bt_i D_i^T, z_i = tanh(hidden_i P_i), w_i = sigmoid(z_i . v_i),
// and the backward from dw to d_hidden, dv, dP, dBt, dD.
// A standalone program: a CPU reference (plain loops, double), the shipped version (lora/cuda/attention_mixture.cu,
// included below, not copied), a correctness check against the reference and timings at GPT-2 124M's qkv shape
// (N = 8 x 1024 tokens, OC = 2304, r = 8, d_a = 64) with 15 branches, the newest trainable.
//
// Build and run (from the repository root):
//   make lab && ./build/lab/attention_mixture
// Exits non-zero when the shipped version disagrees with the reference or is not bit-identical run to run.
//
// Versions:
//   1. lora/cuda/attention_mixture.cu: D_i o_i computed as hidden_i P_i with the small P_i (r x d_a), so nothing
//      of size N x OC is formed; strided-batched cuBLAS products over the branches, one thread per (row, branch)
//      for tanh, the score and the sigmoid. Prediction: a few percent of the LoRA linear's own time at this shape
//      (the products are N x r x d_a per branch against the linear's N x C x r).
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "lora/cuda/attention_mixture.cu"

// ---------------------------------------------------------------------------------------------------------
// CPU reference (double): w, and from dw: d_hidden, dv (trainable branches)

struct Reference {
    std::vector<double> w, d_hidden, dv;
};

Reference mixture_cpu(const std::vector<float>& hidden, const std::vector<float>& Bt, const std::vector<float>& D,
                      const std::vector<float>& v, const std::vector<float>& dw, float scale, const MixtureShape& s) {
    const int R = s.branches * s.rank;
    Reference r{std::vector<double>(size_t(s.N) * s.branches), std::vector<double>(size_t(s.N) * R, 0.0),
                std::vector<double>(size_t(s.branches) * s.dim, 0.0)};
    std::vector<double> P(size_t(R) * s.dim, 0.0);  // P_i = scale Bt_i D_i^T
    for (int i = 0; i < s.branches; i++)
        for (int k = 0; k < s.rank; k++)
            for (int d = 0; d < s.dim; d++) {
                double sum = 0;
                for (int j = 0; j < s.OC; j++)
                    sum += double(Bt[size_t(i * s.rank + k) * s.OC + j]) * D[size_t(i * s.dim + d) * s.OC + j];
                P[size_t(i * s.rank + k) * s.dim + d] = scale * sum;
            }
    std::vector<double> z(s.dim);
    for (int n = 0; n < s.N; n++)
        for (int i = 0; i < s.branches; i++) {
            double e = 0;
            for (int d = 0; d < s.dim; d++) {
                double u = 0;
                for (int k = 0; k < s.rank; k++)
                    u += double(hidden[size_t(n) * R + i * s.rank + k]) * P[size_t(i * s.rank + k) * s.dim + d];
                z[d] = std::tanh(u);
                e += z[d] * v[size_t(i) * s.dim + d];
            }
            const double w = 1 / (1 + std::exp(-e)), de = dw[size_t(n) * s.branches + i] * w * (1 - w);
            r.w[size_t(n) * s.branches + i] = w;
            for (int d = 0; d < s.dim; d++) {
                const double du = de * v[size_t(i) * s.dim + d] * (1 - z[d] * z[d]);
                if (i >= s.first_trainable_branch) r.dv[size_t(i) * s.dim + d] += de * z[d];
                for (int k = 0; k < s.rank; k++)
                    r.d_hidden[size_t(n) * R + i * s.rank + k] += du * P[size_t(i * s.rank + k) * s.dim + d];
            }
        }
    return r;
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    print_device();
    const MixtureShape s{8 * 1024, 2304, 15, 8, 64, 14, false};
    const float scale = 4.0f;
    const int R = s.branches * s.rank, Z = s.branches * s.dim;
    const double tolerance = 1e-4;  // fp32 products of length 2304 against double
    bool ok = true;

    const std::vector<float> hidden = random_floats(size_t(s.N) * R, 1), Bt = random_floats(size_t(R) * s.OC, 2,
                                                                                             -0.02f, 0.02f),
                             D = random_floats(size_t(s.branches) * s.dim * s.OC, 3, -0.02f, 0.02f),
                             v = random_floats(size_t(s.branches) * s.dim, 4), dw = random_floats(size_t(s.N) * s.branches, 5);
    const Reference reference = mixture_cpu(hidden, Bt, D, v, dw, scale, s);
    float *d_hidden = to_device(hidden), *d_Bt = to_device(Bt), *d_D = to_device(D), *d_v = to_device(v),
          *d_dw = to_device(dw);
    float *d_P, *d_z, *d_w, *d_dh, *d_dP, *d_dv, *d_dBt, *d_dD;
    CHECK_CUDA(cudaMalloc(&d_P, size_t(R) * s.dim * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_z, size_t(s.N) * Z * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_w, size_t(s.N) * s.branches * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dh, size_t(s.N) * R * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dP, size_t(R) * s.dim * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dv, size_t(s.branches) * s.dim * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dBt, size_t(R) * s.OC * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dD, size_t(s.branches) * s.dim * s.OC * sizeof(float)));

    auto forward = [&] {
        cuda::mixture_project(d_P, d_Bt, d_D, scale, s);
        cuda::mixture_forward(d_w, d_z, d_hidden, d_P, d_v, s);
    };
    auto backward = [&] {
        CHECK_CUDA(cudaMemset(d_dh, 0, size_t(s.N) * R * sizeof(float)));
        CHECK_CUDA(cudaMemset(d_dv, 0, size_t(s.branches) * s.dim * sizeof(float)));
        cuda::mixture_backward(d_dh, d_dP, d_dv, d_dw, d_w, d_z, d_hidden, d_P, d_v, s);
        cuda::mixture_project_backward(d_dBt, d_dD, d_dP, d_Bt, d_D, scale, s);
    };
    forward();
    backward();
    const std::vector<float> w = download(d_w, size_t(s.N) * s.branches), dh = download(d_dh, size_t(s.N) * R),
                             dv = download(d_dv, size_t(s.branches) * s.dim);
    backward();
    const bool identical = std::memcmp(dh.data(), download(d_dh, size_t(s.N) * R).data(), dh.size() * 4) == 0 &&
                           std::memcmp(dv.data(), download(d_dv, dv.size()).data(), dv.size() * 4) == 0;
    ok &= identical;
    const float forward_ms = time_ms(forward), backward_ms = time_ms(backward);
    ok &= print_result(format("forward (P, z, w), N=%d OC=%d %d branches", s.N, s.OC, s.branches),
                       relative_error(w, std::vector<float>(reference.w.begin(), reference.w.end())), tolerance,
                       forward_ms);
    std::vector<float> dv_trainable(dv.begin() + size_t(s.first_trainable_branch) * s.dim, dv.end());
    std::vector<float> dv_expected(reference.dv.begin() + size_t(s.first_trainable_branch) * s.dim, reference.dv.end());
    ok &= print_result("backward d_hidden",
                       relative_error(dh, std::vector<float>(reference.d_hidden.begin(), reference.d_hidden.end())),
                       tolerance, backward_ms, 0.0, repeatability(identical, true));
    ok &= print_result("backward dv (trainable branch)", relative_error(dv_trainable, dv_expected), tolerance);

    for (float* p : {d_hidden, d_Bt, d_D, d_v, d_dw, d_P, d_z, d_w, d_dh, d_dP, d_dv, d_dBt, d_dD})
        CHECK_CUDA(cudaFree(p));
    return finish("attention_mixture", ok, format("forward %.3f ms backward %.3f ms", forward_ms, backward_ms));
}
