// Token + position embedding on the GPU: out[b,t,:] = wte[inp[b,t],:] + wpe[t,:], and its backward.
// The backward is deterministic: no atomics anywhere. Every gradient element is summed by exactly one
// thread, in increasing (b, t) order, starting from its current value: the same order as the CPU reference
// (model/cpu/encoder.h), so the results are bit-identical run to run (and to the CPU loop).
// Lab: dev/cuda/encoder.cu.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

__device__ inline float add(float a, float b) { return a + b; }
__device__ inline float4 add(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }

// One thread per output vector of type Vec (float, or float4 when C is a multiple of 4 and the pointers are
// 16-byte aligned). out (B*T, Cv); wte (Vp, Cv); wpe (maxT, Cv); Cv = C / (floats per Vec).
template <typename Vec>
__global__ void encoder_forward_kernel(Vec* __restrict__ out, const int* __restrict__ inp, const Vec* __restrict__ wte,
                                       const Vec* __restrict__ wpe, int BT, int T, int Cv) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= size_t(BT) * Cv) return;
    int bt = int(index / Cv), c = int(index % Cv);
    int t = bt % T;
    out[index] = add(wte[size_t(inp[bt]) * Cv + c], wpe[size_t(t) * Cv + c]);
}

// dwpe (T,C) += sum over b of dout (B,T,C): one thread per (t,c), adding the B rows in increasing b.
__global__ void position_backward_kernel(float* __restrict__ dwpe, const float* __restrict__ dout, int B, int T,
                                         int C) {
    size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    size_t TC = size_t(T) * C;
    if (index >= TC) return;
    float sum = dwpe[index];
    for (int b = 0; b < B; b++) sum += dout[b * TC + index];
    dwpe[index] = sum;
}

// dwte[token,:] += dout[position,:] for every position holding that token.
// One block per distinct token j: tokens[j] is its id, positions[offsets[j] .. offsets[j+1]) the flat (b*T+t)
// indices where it occurs, in increasing order. Each thread owns channels c, c + blockDim.x, ... of the row
// and adds the positions one after another: no two threads touch the same dwte element, no atomics.
__global__ void token_backward_kernel(float* __restrict__ dwte, const float* __restrict__ dout,
                                      const int* __restrict__ tokens, const int* __restrict__ offsets,
                                      const int* __restrict__ positions, int C) {
    int j = blockIdx.x;
    int begin = offsets[j], end = offsets[j + 1];
    float* dwte_row = dwte + size_t(tokens[j]) * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sum = dwte_row[c];
        for (int p = begin; p < end; p++) sum += dout[size_t(positions[p]) * C + c];
        dwte_row[c] = sum;
    }
}

bool aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

DeviceScratch<int> bucket_scratch;  // the token buckets, uploaded by encoder_backward

}  // namespace

namespace cuda {

// out (B,T,C); inp (B,T) token ids; wte (Vp,C); wpe (maxT,C)
void encoder_forward(float* out, const int* inp, const float* wte, const float* wpe, int B, int T, int C) {
    const int BT = B * T, threads = 256;
    if (BT == 0 || C == 0) return;
    if (C % 4 == 0 && aligned16(out) && aligned16(wte) && aligned16(wpe)) {
        int Cv = C / 4;
        encoder_forward_kernel<<<ceil_div(size_t(BT) * Cv, threads), threads>>>(
            reinterpret_cast<float4*>(out), inp, reinterpret_cast<const float4*>(wte),
            reinterpret_cast<const float4*>(wpe), BT, T, Cv);
    } else {
        encoder_forward_kernel<<<ceil_div(size_t(BT) * C, threads), threads>>>(out, inp, wte, wpe, BT, T, C);
    }
    CUDA_CHECK_LAUNCH();
}

// Accumulates dwte (Vp,C) and dwpe (maxT,C) from dout (B,T,C); either may be null (frozen).
//
// dwte without atomics: the token ids (B*T ints, a few KiB) are copied to the host and bucketed there into a
// CSR list (the distinct tokens, and for each the positions where it occurs, in increasing order); the lists
// are uploaded and one block per distinct token sums its positions in that fixed order. The host round trip
// synchronises with the GPU once per backward, a negligible cost next to the rest of the step.
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T, int C) {
    const int BT = B * T, threads = 256;
    if (BT == 0 || C == 0) return;
    if (dwpe) {
        position_backward_kernel<<<ceil_div(size_t(T) * C, threads), threads>>>(dwpe, dout, B, T, C);
        CUDA_CHECK_LAUNCH();
    }
    if (!dwte) return;

    std::vector<int> tokens(BT);
    CUDA_CHECK(cudaMemcpy(tokens.data(), inp, BT * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < BT; i++)
        if (tokens[i] < 0) fail("encoder_backward: negative token id " + std::to_string(tokens[i]));

    // positions sorted by token; stable, so each token's positions stay in increasing order
    std::vector<int> positions(BT);
    std::iota(positions.begin(), positions.end(), 0);
    std::stable_sort(positions.begin(), positions.end(), [&](int p, int q) { return tokens[p] < tokens[q]; });

    // packed for one upload: [distinct tokens (D)] [offsets (D+1)] [positions (BT)]
    std::vector<int> distinct, offsets;
    for (int i = 0; i < BT; i++)
        if (i == 0 || tokens[positions[i]] != tokens[positions[i - 1]]) {
            distinct.push_back(tokens[positions[i]]);
            offsets.push_back(i);
        }
    offsets.push_back(BT);
    const int D = int(distinct.size());
    std::vector<int> packed;
    packed.reserve(2 * D + 1 + BT);
    packed.insert(packed.end(), distinct.begin(), distinct.end());
    packed.insert(packed.end(), offsets.begin(), offsets.end());
    packed.insert(packed.end(), positions.begin(), positions.end());

    int* device_packed = bucket_scratch.get(packed.size());
    CUDA_CHECK(cudaMemcpy(device_packed, packed.data(), packed.size() * sizeof(int), cudaMemcpyHostToDevice));
    token_backward_kernel<<<D, threads>>>(dwte, dout, device_packed, device_packed + D, device_packed + 2 * D + 1, C);
    CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
