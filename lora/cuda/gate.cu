// GainLoRA's gate on the GPU, the CUDA version of lora/cpu/gate.h (the math is written out there and in
// lora/METHODS.md section 7). S is a batch of sequences (tens), C the channels, m the gate's hidden size:
// the products go through cuBLAS (model/cuda/matmul.cu), everything else is one small kernel each.
//   forward:  p0 = prompt means (one block per sequence); z1 = p0 W1^T; p1 = SiLU(z1); z2 = p1 W2^T; p2 = SiLU(z2);
//             g = |tanh(2 cos(p2, k))| (one block per sequence, tree reductions of p2.k, |p2|^2, |k|^2)
//   backward: dz2 = dp2 .* SiLU'(z2) and the per-sequence coefficients of dk (one block per sequence);
//             dk += sum_s (alpha_s p2_s - beta_s k) (one thread per channel, sequences in order);
//             dp1 = dz2 W2, dW2 += dz2^T p1 (cuBLAS); dz1 = dp1 .* SiLU'(z1); dW1 += dz1^T p0 (cuBLAS)
// Deterministic: fixed-shape reductions, no atomics.
#include "model/cuda/cuda_check.h"
#include "lora/cuda/gate_kernels.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int THREADS = 256;  // every block below has exactly this many threads (block_sum relies on it)
constexpr float NORM_EPS = 1e-8f;

DeviceScratch<float> dz2_scratch;          // (S,C)
DeviceScratch<float> dp1_scratch;          // (S,m), then dz1
DeviceScratch<float> coefficient_scratch;  // (2S): alpha_s, beta_s of dk
DeviceScratch<float> delta_scratch;        // (rows,D) W - W_old
DeviceScratch<float> projection_scratch;   // (rows,D) projection, then (rows,k) coefficients
DeviceScratch<float> norm_scratch;         // (rows)

__device__ float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }
__device__ float silu_derivative(float z) {
    const float s = sigmoidf(z);
    return s * (1.0f + z * (1.0f - s));
}

// The sum of v over the block's THREADS threads (a fixed tree: deterministic); every thread gets it.
__device__ float block_sum(float v, float* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int stride = THREADS / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
        __syncthreads();
    }
    const float total = shared[0];
    __syncthreads();
    return total;
}

// one block per sequence s: p0[s, :] = mean of wte rows over its tokens
__global__ void prompt_mean_kernel(float* __restrict__ p0, const float* __restrict__ wte,
                                   const int* __restrict__ tokens, const int* __restrict__ offsets, int C) {
    const int s = blockIdx.x;
    const int first = offsets[s], last = offsets[s + 1];
    const float inverse = last > first ? 1.0f / float(last - first) : 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sum = 0.0f;
        for (int i = first; i < last; i++) sum += wte[size_t(tokens[i]) * C + c];
        p0[size_t(s) * C + c] = sum * inverse;
    }
}

// out (count) = SiLU(z) = z sigmoid(z)
__global__ void silu_kernel(float* __restrict__ out, const float* __restrict__ z, size_t count) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) out[index] = z[index] * sigmoidf(z[index]);
}

// d (count) .*= SiLU'(z)
__global__ void silu_backward_kernel(float* __restrict__ d, const float* __restrict__ z, size_t count) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) d[index] *= silu_derivative(z[index]);
}

// one block per sequence s: (p2_s . k, |p2_s|^2, |k|^2)
__device__ void cosine_terms(const float* p2, const float* k, int C, float* shared, float& dot, float& p2_squared,
                             float& key_squared) {
    float d = 0.0f, p = 0.0f, q = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        d += p2[c] * k[c];
        p += p2[c] * p2[c];
        q += k[c] * k[c];
    }
    dot = block_sum(d, shared);
    p2_squared = block_sum(p, shared);
    key_squared = block_sum(q, shared);
}

// one block per sequence s: g[s] = |tanh(2 b)|, b = cos(p2_s, k)
__global__ void cosine_gate_kernel(float* __restrict__ g, const float* __restrict__ p2, const float* __restrict__ k,
                                   int C) {
    __shared__ float shared[THREADS];
    const int s = blockIdx.x;
    float dot, p2_squared, key_squared;
    cosine_terms(p2 + size_t(s) * C, k, C, shared, dot, p2_squared, key_squared);
    if (threadIdx.x == 0) {
        const float b = dot / (fmaxf(sqrtf(p2_squared), NORM_EPS) * fmaxf(sqrtf(key_squared), NORM_EPS));
        g[s] = fabsf(tanhf(2.0f * b));
    }
}

// one block per sequence s: db = dg sign(u) 2 (1 - u^2), u = tanh(2b);
//   dz2[s, :] = (db (k / (|p2||k|) - b p2 / |p2|^2)) .* SiLU'(z2[s, :])
//   coefficients: alpha_s = db / (|p2||k|), beta_s = db b / |k|^2 (0 for a clamped norm), for dk
__global__ void cosine_gate_backward_kernel(float* __restrict__ dz2, float* __restrict__ coefficients,
                                            const float* __restrict__ dg, const float* __restrict__ z2,
                                            const float* __restrict__ p2, const float* __restrict__ k, int S, int C) {
    __shared__ float shared[THREADS];
    const int s = blockIdx.x;
    const float* row = p2 + size_t(s) * C;
    float dot, p2_squared, key_squared;
    cosine_terms(row, k, C, shared, dot, p2_squared, key_squared);
    const float p2_length = sqrtf(p2_squared), key_length = sqrtf(key_squared);
    const float p2_norm = fmaxf(p2_length, NORM_EPS), key_norm = fmaxf(key_length, NORM_EPS);
    const float b = dot / (p2_norm * key_norm);
    const float u = tanhf(2.0f * b);
    const float sign = float((u > 0.0f) - (u < 0.0f));
    const float db = dg[s] * sign * 2.0f * (1.0f - u * u);
    const float along_key = db / (p2_norm * key_norm);
    const float along_p2 = p2_length > NORM_EPS ? db * b / (p2_norm * p2_norm) : 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        dz2[size_t(s) * C + c] = (along_key * k[c] - along_p2 * row[c]) * silu_derivative(z2[size_t(s) * C + c]);
    if (threadIdx.x == 0) {
        coefficients[s] = along_key;
        coefficients[S + s] = key_length > NORM_EPS ? db * b / (key_norm * key_norm) : 0.0f;
    }
}

// one thread per channel c: dk[c] += sum over s in order of (alpha_s p2[s,c] - beta_s k[c])
__global__ void key_gradient_kernel(float* __restrict__ dk, const float* __restrict__ coefficients,
                                    const float* __restrict__ p2, const float* __restrict__ k, int S, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float sum = 0.0f;
    for (int s = 0; s < S; s++) {
        sum += coefficients[s] * p2[size_t(s) * C + c];
        sum -= coefficients[S + s] * k[c];
    }
    dk[c] += sum;
}

// block_weights[(s*T + t)*G + i] = gates[i*S + s]
__global__ void expand_rows_kernel(float* __restrict__ block_weights, const float* __restrict__ gates, int S, int T,
                                   int G) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(S) * T * G) return;
    const int i = int(index % G);
    const int s = int(index / G / T);
    block_weights[index] = gates[size_t(i) * S + s];
}

// one thread per sequence s: dg[s] = sum over t in order of d_block_weights[(s*T + t)*G + branch]
__global__ void rows_backward_kernel(float* __restrict__ dg, const float* __restrict__ d_block_weights, int S, int T,
                                     int G, int branch) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= S) return;
    float sum = 0.0f;
    for (int t = 0; t < T; t++) sum += d_block_weights[(size_t(s) * T + t) * G + branch];
    dg[s] = sum;
}

// out (count) = a - b
__global__ void subtract_kernel(float* __restrict__ out, const float* __restrict__ a, const float* __restrict__ b,
                                size_t count) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) out[index] = a[index] - b[index];
}

// out (count) -= a
__global__ void subtract_in_place_kernel(float* __restrict__ out, const float* __restrict__ a, size_t count) {
    const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index < count) out[index] -= a[index];
}

// one block per row r: norms[r] = |W[r, :]|
__global__ void row_norm_kernel(float* __restrict__ norms, const float* __restrict__ W, int D) {
    __shared__ float shared[THREADS];
    const float* row = W + size_t(blockIdx.x) * D;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < D; c += blockDim.x) sum += row[c] * row[c];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) norms[blockIdx.x] = sqrtf(sum);
}

// one block per row r: W[r, :] *= norms[r] / |W[r, :]| (unless the row is 0)
__global__ void restore_norm_kernel(float* __restrict__ W, const float* __restrict__ norms, int D) {
    __shared__ float shared[THREADS];
    float* row = W + size_t(blockIdx.x) * D;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < D; c += blockDim.x) sum += row[c] * row[c];
    const float now = sqrtf(block_sum(sum, shared));
    if (now <= 0.0f) return;
    const float factor = norms[blockIdx.x] / now;
    for (int c = threadIdx.x; c < D; c += blockDim.x) row[c] *= factor;
}

}  // namespace

namespace cuda {

void gate_prompt_mean(float* p0, const float* wte, const int* tokens, const int* offsets, int S, int C) {
    if (S == 0) return;
    prompt_mean_kernel<<<S, THREADS>>>(p0, wte, tokens, offsets, C);
    CUDA_CHECK_LAUNCH();
}

void gate_forward(float* g, float* z1, float* p1, float* z2, float* p2, const float* p0, const float* W1,
                  const float* W2, const float* k, int S, int C, int m) {
    if (S == 0) return;
    // z1 (S,m) = p0 (S,C) W1^T; p1 = SiLU(z1)
    matmul_forward(z1, p0, W1, nullptr, S, C, m);
    silu_kernel<<<ceil_div(size_t(S) * m, THREADS), THREADS>>>(p1, z1, size_t(S) * m);
    CUDA_CHECK_LAUNCH();
    // z2 (S,C) = p1 (S,m) W2^T; p2 = SiLU(z2)
    matmul_forward(z2, p1, W2, nullptr, S, m, C);
    silu_kernel<<<ceil_div(size_t(S) * C, THREADS), THREADS>>>(p2, z2, size_t(S) * C);
    CUDA_CHECK_LAUNCH();
    cosine_gate_kernel<<<S, THREADS>>>(g, p2, k, C);
    CUDA_CHECK_LAUNCH();
}

void gate_backward(float* dW1, float* dW2, float* dk, const float* dg, const float* p0, const float* z1,
                   const float* p1, const float* z2, const float* p2, const float* W2, const float* k, int S, int C,
                   int m) {
    if (S == 0) return;
    float* dz2 = dz2_scratch.get(size_t(S) * C);
    float* coefficients = coefficient_scratch.get(2 * size_t(S));
    cosine_gate_backward_kernel<<<S, THREADS>>>(dz2, coefficients, dg, z2, p2, k, S, C);
    CUDA_CHECK_LAUNCH();
    if (dk) {
        key_gradient_kernel<<<ceil_div(C, THREADS), THREADS>>>(dk, coefficients, p2, k, S, C);
        CUDA_CHECK_LAUNCH();
    }
    // dW2 (C,m) += dz2^T p1; dp1 (S,m) = dz2 W2 (only when dW1 is wanted)
    float* dp1 = nullptr;
    if (dW1) {
        dp1 = dp1_scratch.get(size_t(S) * m);
        device_zero(dp1, size_t(S) * m * sizeof(float));
    }
    matmul_backward(dp1, dW2, nullptr, dz2, p1, W2, S, m, C);
    if (!dW1) return;
    // dz1 = dp1 .* SiLU'(z1); dW1 (m,C) += dz1^T p0
    silu_backward_kernel<<<ceil_div(size_t(S) * m, THREADS), THREADS>>>(dp1, z1, size_t(S) * m);
    CUDA_CHECK_LAUNCH();
    matmul_backward(nullptr, dW1, nullptr, dp1, p0, nullptr, S, C, m);
}

void gate_expand_rows(float* block_weights, const float* gates, int S, int T, int G) {
    const size_t count = size_t(S) * T * G;
    if (count == 0) return;
    expand_rows_kernel<<<ceil_div(count, THREADS), THREADS>>>(block_weights, gates, S, T, G);
    CUDA_CHECK_LAUNCH();
}

void gate_rows_backward(float* dg, const float* d_block_weights, int S, int T, int G, int branch) {
    if (S == 0) return;
    rows_backward_kernel<<<ceil_div(S, THREADS), THREADS>>>(dg, d_block_weights, S, T, G, branch);
    CUDA_CHECK_LAUNCH();
}

void gate_project_update(float* W, const float* W_old, const float* Mt, int rows, int D, int k, bool restore_norm) {
    if (k == 0 || rows == 0) return;
    const size_t count = size_t(rows) * D;
    float* delta = delta_scratch.get(count);
    float* projection = projection_scratch.get(count + size_t(rows) * k);  // (rows,D), then (rows,k) coefficients
    float* coefficients = projection + count;
    float* norms = norm_scratch.get(rows);
    if (restore_norm) {
        row_norm_kernel<<<rows, THREADS>>>(norms, W, D);
        CUDA_CHECK_LAUNCH();
    }
    // dW = W - W_old; coefficients (rows,k) = dW Mt^T; projection (rows,D) = coefficients Mt
    subtract_kernel<<<ceil_div(count, THREADS), THREADS>>>(delta, W, W_old, count);
    CUDA_CHECK_LAUNCH();
    matmul_forward(coefficients, delta, Mt, nullptr, rows, D, k);
    device_zero(projection, count * sizeof(float));
    matmul_backward(projection, nullptr, nullptr, coefficients, nullptr, Mt, rows, D, k);
    // W -= projection
    subtract_in_place_kernel<<<ceil_div(count, THREADS), THREADS>>>(W, projection, count);
    CUDA_CHECK_LAUNCH();
    if (restore_norm) {
        restore_norm_kernel<<<rows, THREADS>>>(W, norms, D);
        CUDA_CHECK_LAUNCH();
    }
}

void gate_copy(float* destination, const float* source, size_t count) {
    if (count == 0) return;
    CUDA_CHECK(cudaMemcpy(destination, source, count * sizeof(float), cudaMemcpyDeviceToDevice));
}

}  // namespace cuda
