// Kernel lab: one step of causal attention with a KV cache (greedy decoding, model/generate.h).
// Build and run (from the repository root, on a GPU host):
//   make lab && ./build/lab/kv_attention        every version;   ./build/lab/kv_attention 2   version 2 only
// Each version is checked against the CPU reference below at small, odd and GPT-2 shapes (positions 0, the middle
// and max_T - 1; the caches must come back with row `position` written and every other row untouched), then timed
// at GPT-2 124M decoding shapes (C = 768, NH = 12, a full 1024-token cache). Exits non-zero when a check fails.
// The last line sums up the shipped version (2).
//
// The math, for the token at `position` of each sequence b, with qkv (B,3C) its packed row and the caches
// (B,max_T,C):
//   key_cache[b, position] = k = qkv[b, C:2C], value_cache[b, position] = v = qkv[b, 2C:3C]; then per head h
//   (channels h*hs .. h*hs+hs-1): s_j = q . k_j / sqrt(hs), p = softmax(s) over j <= position,
//   out[b, h] = sum_j p_j v_j.
// Versions:
//   1  naive: one block per (head, sequence); one thread per position computes its score serially over the
//      channels, thread 0 finds the max and the sum serially, one thread per channel sums over the positions.
//   2  one block per (head, sequence): one warp per position for the scores (coalesced key rows, shuffle sums),
//      block reductions for the softmax, groups of threads over the positions for the weighted sum of values.
//      THIS IS cuda::attention_step_forward, model/cuda/kv_attention.cu, included below (not copied).
// Decoding reads the whole cache once per step: it is memory-bound, and GB/s below counts the K and V rows read.
#include "dev/cuda/lab_common.h"
#include "model/cuda/kv_attention.cu"

// ---------------------------------------------------------------------------------------------------------------
// CPU reference: plain loops, double accumulators. Writes the caches' row `position`, then out.

void attention_step_cpu(float* out, float* key_cache, float* value_cache, const float* qkv, int position, int B,
                        int C, int NH, int max_T) {
    const int hs = C / NH;
    const double scale = 1.0 / std::sqrt(double(hs));
    std::vector<double> p(position + 1);
    for (int b = 0; b < B; b++) {
        const float* row = qkv + size_t(b) * 3 * C;
        float* keys = key_cache + size_t(b) * max_T * C;
        float* values = value_cache + size_t(b) * max_T * C;
        for (int c = 0; c < C; c++) {
            keys[size_t(position) * C + c] = row[C + c];
            values[size_t(position) * C + c] = row[2 * C + c];
        }
        for (int h = 0; h < NH; h++) {
            double max_score = -INFINITY, sum = 0;
            for (int j = 0; j <= position; j++) {
                double dot = 0;
                for (int d = 0; d < hs; d++) dot += double(row[h * hs + d]) * keys[size_t(j) * C + h * hs + d];
                p[j] = dot * scale;
                max_score = std::max(max_score, p[j]);
            }
            for (int j = 0; j <= position; j++) sum += (p[j] = std::exp(p[j] - max_score));
            for (int d = 0; d < hs; d++) {
                double acc = 0;
                for (int j = 0; j <= position; j++) acc += p[j] * values[size_t(j) * C + h * hs + d];
                out[size_t(b) * C + h * hs + d] = float(acc / sum);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Version 1: naive. (Version 2 is model/cuda/kv_attention.cu's.) Dynamic shared memory: the scores (position + 1).

__global__ void attention_step_naive_kernel(float* out, float* key_cache, float* value_cache, const float* qkv,
                                            int position, int C, int NH, int max_T, float scale) {
    extern __shared__ float scores[];
    __shared__ float max_sum[2];
    const int h = blockIdx.x, b = blockIdx.y, hs = C / NH;
    const float* row = qkv + size_t(b) * 3 * C + h * hs;
    float* keys = key_cache + size_t(b) * max_T * C + h * hs;
    float* values = value_cache + size_t(b) * max_T * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        keys[size_t(position) * C + d] = row[C + d];
        values[size_t(position) * C + d] = row[2 * C + d];
    }
    __syncthreads();
    for (int j = threadIdx.x; j <= position; j += blockDim.x) {
        float dot = 0.0f;
        for (int d = 0; d < hs; d++) dot += row[d] * keys[size_t(j) * C + d];
        scores[j] = dot * scale;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float max_score = -INFINITY, sum = 0.0f;
        for (int j = 0; j <= position; j++) max_score = fmaxf(max_score, scores[j]);
        for (int j = 0; j <= position; j++) sum += (scores[j] = expf(scores[j] - max_score));
        max_sum[0] = max_score;
        max_sum[1] = sum;
    }
    __syncthreads();
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j <= position; j++) acc += scores[j] * values[size_t(j) * C + d];
        out[size_t(b) * C + h * hs + d] = acc / max_sum[1];
    }
}

void attention_step(int version, float* out, float* key_cache, float* value_cache, const float* qkv, int position,
                    int B, int C, int NH, int max_T) {
    if (version == 2) return cuda::attention_step_forward(out, key_cache, value_cache, qkv, position, B, C, NH, max_T);
    const int hs = C / NH;
    const size_t shared_bytes = size_t(position + 1) * sizeof(float);
    if (shared_bytes > 48 * 1024)
        CHECK_CUDA(cudaFuncSetAttribute(attention_step_naive_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(shared_bytes)));
    attention_step_naive_kernel<<<dim3(NH, B), 128, shared_bytes>>>(out, key_cache, value_cache, qkv, position, C,
                                                                     NH, max_T, 1.0f / std::sqrt(float(hs)));
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------------
// Check and timing.

// Runs one version at one shape and position against the CPU reference, from the same random caches; prints and
// returns whether it passed: out within the tolerance, the caches exactly as the reference leaves them.
bool check(int version, int B, int C, int NH, int max_T, int position) {
    const double tolerance = 1e-5;  // relative error ||gpu - cpu|| / ||cpu||, as the project's tests
    const size_t cache_size = size_t(B) * max_T * C;
    std::vector<float> qkv = random_floats(size_t(B) * 3 * C, 1, -2, 2);
    std::vector<float> keys = random_floats(cache_size, 2, -2, 2), values = random_floats(cache_size, 3, -2, 2);
    float *d_qkv = to_device(qkv), *d_keys = to_device(keys), *d_values = to_device(values);
    float* d_out = to_device(std::vector<float>(size_t(B) * C, NAN));  // poisoned: every element must be written
    std::vector<float> out(size_t(B) * C);
    attention_step_cpu(out.data(), keys.data(), values.data(), qkv.data(), position, B, C, NH, max_T);
    attention_step(version, d_out, d_keys, d_values, d_qkv, position, B, C, NH, max_T);
    const double error = relative_error(download(d_out, out.size()), out);
    const bool caches_ok = download(d_keys, cache_size) == keys && download(d_values, cache_size) == values;
    const bool ok = print_result(format("version %d  B=%d C=%d NH=%d T=%d pos=%d", version, B, C, NH, max_T, position),
                                 caches_ok ? error : INFINITY, tolerance, -1.0f, 0.0,
                                 caches_ok ? "" : "caches differ: FAIL");
    for (float* buffer : {d_qkv, d_keys, d_values, d_out}) CHECK_CUDA(cudaFree(buffer));
    return ok;
}

int main(int argc, char** argv) {
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    print_device();

    bool ok = true;
    struct Shape {
        int B, C, NH, max_T;
    } shapes[] = {{1, 64, 4, 37}, {5, 64, 4, 1024}, {5, 768, 12, 1024}, {2, 600, 2, 40}, {1, 32, 2, 20000}};
    for (int version : versions)
        for (const Shape& s : shapes)
            for (int position : {0, s.max_T / 2, s.max_T - 1}) ok &= check(version, s.B, s.C, s.NH, s.max_T, position);

    // timing at GPT-2 124M decoding shapes: a full cache (position 1023), 1 and 8 sequences
    const int C = 768, NH = 12, max_T = 1024, position = max_T - 1;
    std::string shipped = "version 2 not run";
    for (int B : {1, 8}) {
        const size_t cache_size = size_t(B) * max_T * C;
        float* d_qkv = to_device(random_floats(size_t(B) * 3 * C, 4, -2, 2));
        float* d_keys = to_device(random_floats(cache_size, 5, -2, 2));
        float* d_values = to_device(random_floats(cache_size, 6, -2, 2));
        float* d_out = to_device(std::vector<float>(size_t(B) * C));
        const double bytes = 2.0 * B * (position + 1) * C * sizeof(float);  // the K and V rows read
        std::printf("timing at B=%d C=%d NH=%d position=%d\n", B, C, NH, position);
        for (int version : versions) {
            float ms = time_ms(
                [&] { attention_step(version, d_out, d_keys, d_values, d_qkv, position, B, C, NH, max_T); });
            std::printf("version %d  %8.4f ms %7.1f GB/s\n", version, ms, bytes / ms * 1e-6);
            const std::string this_timing = timing(B == 1 ? "B=1" : "B=8", ms, bytes);
            if (version == 2) shipped = B == 1 ? this_timing : shipped + " | " + this_timing;
        }
        for (float* buffer : {d_qkv, d_keys, d_values, d_out}) CHECK_CUDA(cudaFree(buffer));
    }
    return finish("kv_attention", ok, shipped);
}
