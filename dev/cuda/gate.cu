// Kernel lab: GainLoRA's gate (lora/METHODS.md section 7; the math is in lora/cpu/gate.h):
//   g = |tanh(2 cos(SiLU(SiLU(p0 W1^T) W2^T), k))| for S prompts, its backward to W1, W2, k, and the projected
//   update W <- W - (W - W_old) Mt^T Mt.
// A standalone program: a CPU reference (plain loops, double), the shipped version (lora/cuda/gate.cu, included
// below, not copied), a correctness check against the reference and timings at GPT-2 124M's shapes (C = 768,
// m = 100, a batch of 16 prompts, a basis of 200 directions).
//
// Build and run (from the repository root):
//   make lab && ./build/lab/gate
// Exits non-zero when the shipped version disagrees with the reference or is not bit-identical run to run.
//
// Versions:
//   1. lora/cuda/gate.cu: cuBLAS for the three products of each direction, one block per prompt for the cosine
//      and its backward (fixed tree reductions), one thread per channel for dk (prompts in order). The gate is a
//      few microseconds of launches per step next to the model's milliseconds: no other version was worth trying.
#include <cstring>

#include "dev/cuda/lab_common.h"
#include "lora/cuda/gate.cu"

// ---------------------------------------------------------------------------------------------------------
// CPU reference (double): the forward's g, and the gradients of sum_s dg_s g_s

struct Reference {
    std::vector<double> g, dW1, dW2, dk;
};

Reference gate_cpu(const std::vector<float>& p0, const std::vector<float>& W1, const std::vector<float>& W2,
                   const std::vector<float>& k, const std::vector<float>& dg, int S, int C, int m) {
    auto sigmoid = [](double z) { return 1.0 / (1.0 + std::exp(-z)); };
    auto silu_derivative = [&](double z) { return sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))); };
    Reference r{std::vector<double>(S), std::vector<double>(size_t(m) * C), std::vector<double>(size_t(C) * m),
                std::vector<double>(C)};
    double kk = 0;
    for (int c = 0; c < C; c++) kk += double(k[c]) * k[c];
    const double key_norm = std::sqrt(kk);
    for (int s = 0; s < S; s++) {
        std::vector<double> z1(m), p1(m), z2(C), p2(C), dz2(C), dp1(m, 0.0);
        for (int j = 0; j < m; j++) {
            for (int c = 0; c < C; c++) z1[j] += double(W1[size_t(j) * C + c]) * p0[size_t(s) * C + c];
            p1[j] = z1[j] * sigmoid(z1[j]);
        }
        double dot = 0, pp = 0;
        for (int c = 0; c < C; c++) {
            for (int j = 0; j < m; j++) z2[c] += double(W2[size_t(c) * m + j]) * p1[j];
            p2[c] = z2[c] * sigmoid(z2[c]);
            dot += p2[c] * k[c], pp += p2[c] * p2[c];
        }
        const double p2_norm = std::sqrt(pp), b = dot / (p2_norm * key_norm), u = std::tanh(2 * b);
        r.g[s] = std::abs(u);
        const double db = dg[s] * ((u > 0) - (u < 0)) * 2 * (1 - u * u);
        for (int c = 0; c < C; c++) {
            dz2[c] = db * (k[c] / (p2_norm * key_norm) - b * p2[c] / (p2_norm * p2_norm)) * silu_derivative(z2[c]);
            r.dk[c] += db * (p2[c] / (p2_norm * key_norm) - b * k[c] / (key_norm * key_norm));
            for (int j = 0; j < m; j++) {
                r.dW2[size_t(c) * m + j] += dz2[c] * p1[j];
                dp1[j] += dz2[c] * W2[size_t(c) * m + j];
            }
        }
        for (int j = 0; j < m; j++)
            for (int c = 0; c < C; c++)
                r.dW1[size_t(j) * C + c] += dp1[j] * silu_derivative(z1[j]) * p0[size_t(s) * C + c];
    }
    return r;
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

int main() {
    print_device();
    const int S = 16, C = 768, m = 100, basis = 200;
    const double tolerance = 1e-4;  // fp32 products of length 768 and 100 against double
    bool ok = true;

    const std::vector<float> p0 = random_floats(size_t(S) * C, 1), W1 = random_floats(size_t(m) * C, 2, -0.04f, 0.04f),
                             W2 = random_floats(size_t(C) * m, 3, -0.1f, 0.1f), k = random_floats(C, 4),
                             dg = random_floats(S, 5);
    const Reference reference = gate_cpu(p0, W1, W2, k, dg, S, C, m);
    float *d_p0 = to_device(p0), *d_W1 = to_device(W1), *d_W2 = to_device(W2), *d_k = to_device(k),
          *d_dg = to_device(dg);
    float *d_g, *d_z1, *d_p1, *d_z2, *d_p2, *d_grads;
    const size_t P = 2 * size_t(m) * C + C;
    CHECK_CUDA(cudaMalloc(&d_g, S * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_z1, size_t(S) * m * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_p1, size_t(S) * m * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_z2, size_t(S) * C * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_p2, size_t(S) * C * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_grads, P * sizeof(float)));
    float *d_dW1 = d_grads, *d_dW2 = d_grads + size_t(m) * C, *d_dk = d_grads + 2 * size_t(m) * C;

    auto forward = [&] { cuda::gate_forward(d_g, d_z1, d_p1, d_z2, d_p2, d_p0, d_W1, d_W2, d_k, S, C, m); };
    auto backward = [&] {
        CHECK_CUDA(cudaMemset(d_grads, 0, P * sizeof(float)));
        cuda::gate_backward(d_dW1, d_dW2, d_dk, d_dg, d_p0, d_z1, d_p1, d_z2, d_p2, d_W2, d_k, S, C, m);
    };
    forward();
    backward();
    const std::vector<float> g = download(d_g, S), grads = download(d_grads, P);
    backward();
    const bool identical = std::memcmp(grads.data(), download(d_grads, P).data(), P * sizeof(float)) == 0;
    ok &= identical;
    std::vector<double> expected(reference.dW1);
    expected.insert(expected.end(), reference.dW2.begin(), reference.dW2.end());
    expected.insert(expected.end(), reference.dk.begin(), reference.dk.end());
    const std::vector<float> expected_float(expected.begin(), expected.end());
    const std::vector<float> g_float(reference.g.begin(), reference.g.end());
    const float forward_ms = time_ms(forward), backward_ms = time_ms(backward);
    ok &= print_result(format("forward, S=%d C=%d m=%d", S, C, m), relative_error(g, g_float), tolerance, forward_ms);
    ok &= print_result("backward (dW1, dW2, dk)", relative_error(grads, expected_float), tolerance, backward_ms, 0.0,
                       repeatability(identical, true));

    // the projected update of W1 (m,C) off a basis of `basis` directions: W x unchanged for x in the basis
    std::vector<float> Mt(size_t(basis) * C, 0.0f);
    for (int i = 0; i < basis; i++) Mt[size_t(i) * C + i] = 1.0f;  // the first `basis` unit vectors
    const std::vector<float> W_new = random_floats(size_t(m) * C, 6);
    float *d_W = to_device(W_new), *d_Mt = to_device(Mt);
    cuda::gate_project_update(d_W, d_W1, d_Mt, m, C, basis, false);
    std::vector<float> projected = download(d_W, size_t(m) * C), expected_projection = W_new;
    for (int j = 0; j < m; j++)
        for (int i = 0; i < basis; i++) expected_projection[size_t(j) * C + i] = W1[size_t(j) * C + i];
    const float project_ms = time_ms([&] { cuda::gate_project_update(d_W, d_W1, d_Mt, m, C, basis, false); });
    ok &= print_result(format("projected update, basis %d", basis), relative_error(projected, expected_projection),
                       1e-6, project_ms);

    for (float* p : {d_p0, d_W1, d_W2, d_k, d_dg, d_g, d_z1, d_p1, d_z2, d_p2, d_grads, d_W, d_Mt})
        CHECK_CUDA(cudaFree(p));
    return finish("gate", ok,
                  format("forward %.3f ms backward %.3f ms project %.3f ms", forward_ms, backward_ms, project_ms));
}
