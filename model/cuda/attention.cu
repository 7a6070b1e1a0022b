// Causal multi-head self-attention on packed qkv (B,T,3C), fused (flash-attention style): the CUDA version of
// model/cpu/attention.h, with no (T,T) matrix in memory. See dev/cuda/attention.cu, version 3 (the kernel lab, with
// the cuBLAS version it replaced, version 2) and model/attention_tiles.h (the per-tile math, shared with a host
// emulation of these loops, test/test_attention_tiles.cpp).
//   forward:  one block per (b, h, tile of TILE query rows); the key/value tiles up to the causal diagonal are
//             loaded in turn into shared memory. The warp that owns a query row computes its scores
//             S = Q K^T / sqrt(hs) against the tile (one key per lane), updates the row's online softmax state
//             (running max and sum, by shuffles), rescales the row's output accumulator (registers) and adds the
//             tile's weights times V. Writes out (B,T,NH,hs) = (B,T,C) and the per-row log-sum-exp lse (B,NH,T)
//             for the backward.
//   backward: D = rowsum(dO .* O) per row first (one warp per row); then P = exp(S - lse) and
//             dS = P (dP - D) / sqrt(hs) are recomputed tile by tile (dP = dO V^T): dK, dV by a kernel whose block
//             owns a key tile and loops over the query tiles from the diagonal on, dQ by one whose block owns a
//             query tile and loops over the key tiles up to the diagonal. Each element of dqkv is added to (+=) by
//             exactly one thread, in a fixed order: no atomics, bit-identical results run to run.
// fp32 storage and math. Any head size hs <= 128 (the kernels are templated on a maximum head size, 64 or 128, and
// take the real one at run time), any T, B, NH.
#include <cmath>

#include "model/attention_tiles.h"
#include "model/cuda/block_reduce.cuh"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/scratch.h"

namespace {

constexpr int TILE = 32;                   // query rows of a query tile = keys of a key tile = lanes of a warp
constexpr int THREADS = 256;               // every fused kernel: 8 warps
constexpr int WARPS = THREADS / 32;
constexpr int SCORES_PITCH = TILE + 1;     // row stride of a (TILE,TILE) tile of scores, weights or gradients
constexpr int ROWS_PER_WARP = TILE / WARPS;

DeviceScratch<float> row_dot_scratch;  // backward: D (B,NH,T)

// Thread layout of every fused kernel: warp w owns the rows w, w + WARPS, ... (ROWS_PER_WARP of them) of a tile;
// lane l owns column l of a (TILE,TILE) tile of scores, and the channels l, l + 32, ... (HS_MAX / 32 of them) of a
// (TILE,hs) accumulator. So a row's online softmax is one warp's shuffles, and in a product over the tile each
// shared-memory value read is used several times from registers (one value of K or V per lane, broadcast reads of
// the row's scores or queries).

// Loads rows [first, first + TILE) of one head into tile (TILE, HS_MAX + 1): source points at row 0, channel 0 of
// the head, rows row_stride floats apart. Rows at or past T and channels at or past hs are zero. Consecutive
// threads read consecutive channels of a row (coalesced); the odd pitch keeps a column's reads on distinct banks.
template <int HS_MAX>
__device__ void load_tile(float* tile, const float* __restrict__ source, size_t row_stride, int first, int T, int hs) {
    for (int e = threadIdx.x; e < TILE * HS_MAX; e += THREADS) {
        const int r = e / HS_MAX, d = e % HS_MAX, t = first + r;
        tile[r * (HS_MAX + 1) + d] = (t < T && d < hs) ? source[size_t(t) * row_stride + d] : 0.0f;
    }
}

// Loads a tile's TILE per-row values of one (b,h) of a (B,NH,T) tensor (zero past T).
__device__ void load_rows(float* tile, const float* __restrict__ source, int first, int T) {
    if (threadIdx.x < TILE) tile[threadIdx.x] = first + int(threadIdx.x) < T ? source[first + threadIdx.x] : 0.0f;
}

// The shared memory of the forward, in floats: Q, K, V tiles and the weights.
// accumulator[i][j] += sum_c scores[warp + i * WARPS, c] * tile[c, lane + 32 j]: the warp's rows of a (TILE,
// SCORES_PITCH) tile of scores (weights or dS) times a (TILE, HS_MAX + 1) tile of keys or values.
template <int HS_MAX>
__device__ void accumulate_scores_times_tile(float (&accumulator)[ROWS_PER_WARP][HS_MAX / 32],
                                             const float* scores, const float* tile) {
    constexpr int PITCH = HS_MAX + 1;
    constexpr int CHANNELS_PER_LANE = HS_MAX / 32;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int c = 0; c < TILE; c++) {
        float row[CHANNELS_PER_LANE];
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) row[j] = tile[c * PITCH + lane + 32 * j];
#pragma unroll
        for (int i = 0; i < ROWS_PER_WARP; i++) {
            const float score = scores[(warp + i * WARPS) * SCORES_PITCH + c];
#pragma unroll
            for (int j = 0; j < CHANNELS_PER_LANE; j++) accumulator[i][j] += score * row[j];
        }
    }
}

template <int HS_MAX>
constexpr size_t forward_shared_floats() {
    return 3 * TILE * (HS_MAX + 1) + TILE * SCORES_PITCH;
}

// out (B,T,C), lse (B,NH,T), qkv (B,T,3,NH,hs). Grid (query tiles, NH, B); the longest rows (the last query
// tiles) are scheduled first. Per key tile: the scores, the online softmax and the accumulation of a row all stay
// in the warp that owns the row, so only the loads of K and V need the whole block.
template <int HS_MAX>
__global__ void __launch_bounds__(THREADS)
    attention_forward_kernel(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ qkv, int T,
                             int NH, int hs, float scale) {
    constexpr int PITCH = HS_MAX + 1;
    constexpr int CHANNELS_PER_LANE = HS_MAX / 32;
    extern __shared__ float shared[];
    float* q_tile = shared;                 // (TILE, PITCH)
    float* k_tile = q_tile + TILE * PITCH;  // (TILE, PITCH)
    float* v_tile = k_tile + TILE * PITCH;  // (TILE, PITCH)
    float* weights = v_tile + TILE * PITCH;  // (TILE, SCORES_PITCH): exp(S - m) of the key tile, per row

    const int C = NH * hs;
    const int q0 = (gridDim.x - 1 - blockIdx.x) * TILE, h = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t row_stride = 3 * size_t(C);
    const float* q_head = qkv + size_t(b) * T * row_stride + size_t(h) * hs;
    const float* k_head = q_head + C;
    const float* v_head = q_head + 2 * C;

    load_tile<HS_MAX>(q_tile, q_head, row_stride, q0, T, hs);
    float accumulator[ROWS_PER_WARP][CHANNELS_PER_LANE];  // o of rows warp + i * WARPS, channels lane + 32 j
    SoftmaxRowState states[ROWS_PER_WARP];                 // of the same rows, the same in every lane of the warp
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++) {
        states[i] = softmax_row_start();
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) accumulator[i][j] = 0.0f;
    }

    const int last_query = min(q0 + TILE, T) - 1;
    for (int k0 = 0; k0 <= last_query; k0 += TILE) {
        __syncthreads();  // every warp is done with the previous key tile's K and V (and Q is loaded)
        load_tile<HS_MAX>(k_tile, k_head, row_stride, k0, T, hs);
        load_tile<HS_MAX>(v_tile, v_head, row_stride, k0, T, hs);
        __syncthreads();
        // scores of the warp's rows against key k0 + lane
        float dots[ROWS_PER_WARP];
#pragma unroll
        for (int i = 0; i < ROWS_PER_WARP; i++) dots[i] = 0.0f;
        for (int k = 0; k < hs; k++) {
            const float key = k_tile[lane * PITCH + k];
#pragma unroll
            for (int i = 0; i < ROWS_PER_WARP; i++) dots[i] += q_tile[(warp + i * WARPS) * PITCH + k] * key;
        }
        // the online softmax of each row: rescale its state and accumulator, its weights for this tile
#pragma unroll
        for (int i = 0; i < ROWS_PER_WARP; i++) {
            const int r = warp + i * WARPS;
            const float score = attention_masked_score(dots[i], scale, q0 + r, k0 + lane, T);
            const float factor = softmax_row_rescale(states[i], warp_max(score));
            const float weight = attention_weight(score, states[i].max);
            softmax_row_add(states[i], warp_sum(weight));
            weights[r * SCORES_PITCH + lane] = weight;
#pragma unroll
            for (int j = 0; j < CHANNELS_PER_LANE; j++) accumulator[i][j] *= factor;
        }
        __syncwarp();  // the warp's weights are written
        accumulate_scores_times_tile<HS_MAX>(accumulator, weights, v_tile);  // o += weights V
        __syncwarp();  // the warp's weights are read before the next tile's overwrite them
    }

#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++) {
        const int t = q0 + warp + i * WARPS;
        if (t >= T) continue;  // padding rows of the last tile
        const float normaliser = softmax_row_normaliser(states[i]);
        if (lane == 0) lse[(size_t(b) * NH + h) * T + t] = softmax_row_log_sum_exp(states[i]);
        float* out_row = out + (size_t(b) * T + t) * C + size_t(h) * hs;
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) {
            const int d = lane + 32 * j;
            if (d < hs) out_row[d] = accumulator[i][j] * normaliser;
        }
    }
}

// row_dot (B,NH,T): D = sum_d dout * out of each (b, t, h) row of hs; one warp per row.
__global__ void row_dot_kernel(float* __restrict__ row_dot, const float* __restrict__ dout,
                               const float* __restrict__ out, int B, int T, int NH, int hs) {
    const size_t row = size_t(blockIdx.x) * WARPS + threadIdx.x / 32;  // (b * NH + h) * T + t
    const int lane = threadIdx.x % 32;
    if (row >= size_t(B) * NH * T) return;  // whole warps leave together
    const int t = int(row % T), h = int((row / T) % NH), b = int(row / (size_t(T) * NH));
    const size_t offset = (size_t(b) * T + t) * NH * hs + size_t(h) * hs;
    float sum = 0.0f;
    for (int d = lane; d < hs; d += 32) sum += dout[offset + d] * out[offset + d];
    sum = warp_sum(sum);
    if (lane == 0) row_dot[row] = sum;
}

// The backward's shared memory, in floats: Q, dO, K, V tiles, P and dS, lse and D of the query rows.
template <int HS_MAX>
constexpr size_t backward_shared_floats() {
    return 4 * TILE * (HS_MAX + 1) + 2 * TILE * SCORES_PITCH + 2 * TILE;
}

struct BackwardTiles {
    float *q, *dout, *k, *v;  // (TILE, HS_MAX + 1) each
    float *p, *ds;            // (TILE, SCORES_PITCH) each: P and dS of the (query tile, key tile) pair
    float *lse, *row_dot;     // (TILE) each, of the query rows
};

template <int HS_MAX>
__device__ BackwardTiles carve_backward_tiles(float* shared) {
    constexpr int PITCH = HS_MAX + 1;
    BackwardTiles tiles;
    tiles.q = shared;
    tiles.dout = tiles.q + TILE * PITCH;
    tiles.k = tiles.dout + TILE * PITCH;
    tiles.v = tiles.k + TILE * PITCH;
    tiles.p = tiles.v + TILE * PITCH;
    tiles.ds = tiles.p + TILE * SCORES_PITCH;
    tiles.lse = tiles.ds + TILE * SCORES_PITCH;
    tiles.row_dot = tiles.lse + TILE;
    return tiles;
}

// P = exp(S - lse) and dS = P (dO V^T - D) * scale of query rows q0.. and keys k0.., from the loaded tiles, into
// tiles.p and tiles.ds: the warp's rows, column = lane.
template <int HS_MAX>
__device__ void recompute_probabilities_and_score_gradients(const BackwardTiles& tiles, int q0, int k0, int T,
                                                            int hs, float scale) {
    constexpr int PITCH = HS_MAX + 1;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float qk[ROWS_PER_WARP], dp[ROWS_PER_WARP];
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++) qk[i] = dp[i] = 0.0f;
    for (int k = 0; k < hs; k++) {
        const float key = tiles.k[lane * PITCH + k], value = tiles.v[lane * PITCH + k];
#pragma unroll
        for (int i = 0; i < ROWS_PER_WARP; i++) {
            const int r = warp + i * WARPS;
            qk[i] += tiles.q[r * PITCH + k] * key;
            dp[i] += tiles.dout[r * PITCH + k] * value;
        }
    }
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++) {
        const int r = warp + i * WARPS;
        const float p = attention_weight(attention_masked_score(qk[i], scale, q0 + r, k0 + lane, T), tiles.lse[r]);
        tiles.p[r * SCORES_PITCH + lane] = p;
        tiles.ds[r * SCORES_PITCH + lane] = attention_score_gradient(p, dp[i], tiles.row_dot[r], scale);
    }
}

// The backward's arguments: dqkv (B,T,3C) += the gradient of qkv (B,T,3C), from dout (B,T,C) and the forward's lse
// and D = row_dot (B,NH,T).
struct BackwardArgs {
    float* dqkv;
    const float *dout, *qkv, *lse, *row_dot;
    int T, NH, hs;
    float scale;
};

// A block's (batch b = blockIdx.z, head h = blockIdx.y) slices of the backward's tensors, at row 0 of its head: row t
// of Q (and of dQ) sits t * row_stride further, its K at + C and its V at + 2 C; dO rows are C apart, lse and D rows 1.
struct BackwardHead {
    int C;
    size_t row_stride;
    const float *q, *dout, *lse, *row_dot;
    float* dq;
};

__device__ BackwardHead backward_head(const BackwardArgs& args) {
    const int h = blockIdx.y, b = blockIdx.z;
    BackwardHead head;
    head.C = args.NH * args.hs;
    head.row_stride = 3 * size_t(head.C);
    const size_t offset = size_t(b) * args.T * head.row_stride + size_t(h) * args.hs;
    head.q = args.qkv + offset;
    head.dq = args.dqkv + offset;
    head.dout = args.dout + size_t(b) * args.T * head.C + size_t(h) * args.hs;
    head.lse = args.lse + (size_t(b) * args.NH + h) * args.T;
    head.row_dot = args.row_dot + (size_t(b) * args.NH + h) * args.T;
    return head;
}

// dqkv's K and V parts += dK, dV. Grid (key tiles, NH, B): block owns keys k0.. and visits the query tiles from the
// one holding row k0 to the last; the first key tiles (the most query tiles) are scheduled first.
//   dV[c] = sum_r P[r,c] dO[r],  dK[c] = sum_r dS[r,c] Q[r]; warp w accumulates keys w, w + WARPS, ...
template <int HS_MAX>
__global__ void __launch_bounds__(THREADS) attention_backward_key_value_kernel(const BackwardArgs args) {
    constexpr int PITCH = HS_MAX + 1, CHANNELS_PER_LANE = HS_MAX / 32;
    extern __shared__ float shared[];
    const BackwardTiles tiles = carve_backward_tiles<HS_MAX>(shared);
    const BackwardHead head = backward_head(args);
    const int T = args.T, hs = args.hs, C = head.C, k0 = blockIdx.x * TILE;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    load_tile<HS_MAX>(tiles.k, head.q + C, head.row_stride, k0, T, hs);
    load_tile<HS_MAX>(tiles.v, head.q + 2 * C, head.row_stride, k0, T, hs);
    float dk[ROWS_PER_WARP][CHANNELS_PER_LANE], dv[ROWS_PER_WARP][CHANNELS_PER_LANE];  // keys warp + i * WARPS
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++)
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) dk[i][j] = dv[i][j] = 0.0f;

    for (int q0 = k0; q0 < T; q0 += TILE) {  // k0 is a multiple of TILE: the query tile holding row k0 starts there
        __syncthreads();  // the previous query tile's Q, dO, P and dS are consumed
        load_tile<HS_MAX>(tiles.q, head.q, head.row_stride, q0, T, hs);
        load_tile<HS_MAX>(tiles.dout, head.dout, C, q0, T, hs);
        load_rows(tiles.lse, head.lse, q0, T);
        load_rows(tiles.row_dot, head.row_dot, q0, T);
        __syncthreads();
        recompute_probabilities_and_score_gradients<HS_MAX>(tiles, q0, k0, T, hs, args.scale);
        __syncthreads();  // a key's column of P and dS comes from every warp
        for (int r = 0; r < TILE; r++) {
            float query[CHANNELS_PER_LANE], gradient[CHANNELS_PER_LANE];
#pragma unroll
            for (int j = 0; j < CHANNELS_PER_LANE; j++) {
                query[j] = tiles.q[r * PITCH + lane + 32 * j];
                gradient[j] = tiles.dout[r * PITCH + lane + 32 * j];
            }
#pragma unroll
            for (int i = 0; i < ROWS_PER_WARP; i++) {
                const int c = warp + i * WARPS;
                const float p = tiles.p[r * SCORES_PITCH + c], ds = tiles.ds[r * SCORES_PITCH + c];
#pragma unroll
                for (int j = 0; j < CHANNELS_PER_LANE; j++) {
                    dv[i][j] += p * gradient[j];
                    dk[i][j] += ds * query[j];
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++) {
        const int s = k0 + warp + i * WARPS;
        if (s >= T) continue;
        float* key_gradient = head.dq + size_t(s) * head.row_stride + C;
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) {
            const int d = lane + 32 * j;
            if (d < hs) {
                key_gradient[d] += dk[i][j];
                key_gradient[C + d] += dv[i][j];
            }
        }
    }
}

// dqkv's Q part += dQ. Grid (query tiles, NH, B): block owns query rows q0.. and visits the key tiles up to the
// diagonal; the longest rows are scheduled first.   dQ[r] = sum_c dS[r,c] K[c]; a row stays in its warp.
template <int HS_MAX>
__global__ void __launch_bounds__(THREADS) attention_backward_query_kernel(const BackwardArgs args) {
    constexpr int CHANNELS_PER_LANE = HS_MAX / 32;
    extern __shared__ float shared[];
    const BackwardTiles tiles = carve_backward_tiles<HS_MAX>(shared);
    const BackwardHead head = backward_head(args);
    const int T = args.T, hs = args.hs, C = head.C, q0 = (gridDim.x - 1 - blockIdx.x) * TILE;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    load_tile<HS_MAX>(tiles.q, head.q, head.row_stride, q0, T, hs);
    load_tile<HS_MAX>(tiles.dout, head.dout, C, q0, T, hs);
    load_rows(tiles.lse, head.lse, q0, T);
    load_rows(tiles.row_dot, head.row_dot, q0, T);
    float dq[ROWS_PER_WARP][CHANNELS_PER_LANE];  // rows warp + i * WARPS, channels lane + 32 j
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++)
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) dq[i][j] = 0.0f;

    const int last_query = min(q0 + TILE, T) - 1;
    for (int k0 = 0; k0 <= last_query; k0 += TILE) {
        __syncthreads();  // every warp is done with the previous key tile's K (and Q, dO, lse, D are loaded)
        load_tile<HS_MAX>(tiles.k, head.q + C, head.row_stride, k0, T, hs);
        load_tile<HS_MAX>(tiles.v, head.q + 2 * C, head.row_stride, k0, T, hs);
        __syncthreads();
        recompute_probabilities_and_score_gradients<HS_MAX>(tiles, q0, k0, T, hs, args.scale);
        __syncwarp();  // the warp's rows of dS are written
        accumulate_scores_times_tile<HS_MAX>(dq, tiles.ds, tiles.k);  // dQ += dS K
        __syncwarp();  // the warp's rows of dS are read before the next tile's overwrite them
    }

#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; i++) {
        const int t = q0 + warp + i * WARPS;
        if (t >= T) continue;
        float* query_gradient = head.dq + size_t(t) * head.row_stride;
#pragma unroll
        for (int j = 0; j < CHANNELS_PER_LANE; j++) {
            const int d = lane + 32 * j;
            if (d < hs) query_gradient[d] += dq[i][j];
        }
    }
}

// Sets a kernel's dynamic shared memory limit (above 48 KiB it must be asked for) and returns the bytes.
template <typename Kernel>
size_t allow_shared_memory(Kernel kernel, size_t floats) {
    const size_t bytes = floats * sizeof(float);
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    return bytes;
}

void check_head_size(int C, int NH) {
    if (NH <= 0 || C % NH != 0 || C / NH > 128 || C / NH < 1)
        fail("cuda attention: head size C/NH = " + std::to_string(C) + "/" + std::to_string(NH) +
             " must be a whole number from 1 to 128");
}

template <int HS_MAX>
void fused_forward(float* out, float* lse, const float* qkv, int B, int T, int NH, int hs, float scale) {
    const size_t bytes = allow_shared_memory(attention_forward_kernel<HS_MAX>, forward_shared_floats<HS_MAX>());
    const dim3 grid(ceil_div(T, TILE), NH, B);
    attention_forward_kernel<HS_MAX><<<grid, THREADS, bytes>>>(out, lse, qkv, T, NH, hs, scale);
    CUDA_CHECK_LAUNCH();
}

template <int HS_MAX>
void fused_backward(float* dqkv, const float* dout, const float* qkv, const float* lse, const float* row_dot, int B,
                    int T, int NH, int hs, float scale) {
    const dim3 grid(ceil_div(T, TILE), NH, B);
    const BackwardArgs args{dqkv, dout, qkv, lse, row_dot, T, NH, hs, scale};
    const size_t key_value_bytes =
        allow_shared_memory(attention_backward_key_value_kernel<HS_MAX>, backward_shared_floats<HS_MAX>());
    attention_backward_key_value_kernel<HS_MAX><<<grid, THREADS, key_value_bytes>>>(args);
    CUDA_CHECK_LAUNCH();
    const size_t query_bytes =
        allow_shared_memory(attention_backward_query_kernel<HS_MAX>, backward_shared_floats<HS_MAX>());
    attention_backward_query_kernel<HS_MAX><<<grid, THREADS, query_bytes>>>(args);
    CUDA_CHECK_LAUNCH();
}

}  // namespace

namespace cuda {

void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int NH) {
    check_head_size(C, NH);
    const int hs = C / NH;
    const float scale = 1.0f / std::sqrt(float(hs));
    if (B == 0 || T == 0) return;
    if (hs <= 64)
        fused_forward<64>(out, lse, qkv, B, T, NH, hs, scale);
    else
        fused_forward<128>(out, lse, qkv, B, T, NH, hs, scale);
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out, const float* lse, int B,
                        int T, int C, int NH) {
    check_head_size(C, NH);
    const int hs = C / NH;
    const float scale = 1.0f / std::sqrt(float(hs));
    if (B == 0 || T == 0) return;
    const size_t rows = size_t(B) * NH * T;
    float* row_dot = row_dot_scratch.get(rows);
    row_dot_kernel<<<ceil_div(rows, WARPS), THREADS>>>(row_dot, dout, out, B, T, NH, hs);
    CUDA_CHECK_LAUNCH();
    if (hs <= 64)
        fused_backward<64>(dqkv, dout, qkv, lse, row_dot, B, T, NH, hs, scale);
    else
        fused_backward<128>(dqkv, dout, qkv, lse, row_dot, B, T, NH, hs, scale);
}

}  // namespace cuda
