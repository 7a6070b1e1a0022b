// Kernel lab: matmul (model/cuda/matmul.cu, the CPU reference model/cpu/matmul.h): the bf16 matrix products of
// GPT-2 124M's linears, and what storing their operands in bf16 would buy.
// Mixed precision (model/cuda/matmul_precision.h) keeps the operands in fp32 and asks cuBLAS for
// CUBLAS_COMPUTE_32F_FAST_16BF, except a frozen base's forward products, which read a bf16 copy of the weights
// (GPT2::bf16_base, issue 7's bf16 storage). This lab measures, at the model's shapes (B=8, T=1024, C=768,
// Vp=50304), what each way of getting bf16 operands costs.
//
// Build and run (from the repository root):
//   make lab && ./build/lab/matmul [version]
// Exits non-zero when a version disagrees with its reference. The last line sums up the shipped version (1).
//
// Each product is written as the row-major out (rows, cols) = X (rows, K) . Y (K, cols), where the stored X or Y
// may be the transpose (a weight W (OC, C) used as W^T, or dout^T for a weight gradient). Versions:
//   1. shipped: cuda::gemm in bf16 mode: fp32 operands and output, FAST_16BF (cuBLAS rounds the operands itself)
//   2. cast, then native bf16: both operands converted to bf16 by a kernel (__float2bfloat16_rn), then
//      cublasGemmEx with bf16 operands, fp32 output, fp32 accumulation; the conversion is timed with the product
//   3. native bf16, operands already bf16: what bf16 storage of the activations and the frozen weights gives
//   4. as 3 with a bf16 output: what storing the product's output in bf16 too gives
//   5. what a frozen base stored in bf16 ships (GPT2::bf16_base): the weight Y already bf16 (the copy made once),
//      the input X cast to bf16 per product; only the forward products (the first five) run this way in the model
// Checks, on 4096 sampled output entries against a double-precision CPU dot product: version 1 against the
// unrounded operands at DESIGN.md's bf16 tolerance (1e-2, cuBLAS's rounding of the operands is not documented;
// the line also prints its error against the bf16-rounded operands, which shows how it rounds); versions 2 and 3
// and 5 against the bf16-rounded (round to nearest even) operands at 1e-4 (only the fp32 accumulation order
// differs); version 4 at 1e-2 (its output is rounded to bf16).
//
// Prediction (before any GPU run): FAST_16BF reads fp32 operands (twice the bytes of bf16) and converts them inside
// the product, so version 3 runs 1.3-2x faster than version 1 on these shapes; the conversion of version 2 moves
// 6 bytes per operand element (about 15 us for the qkv input at 3 TB/s, against a product of about 60 us), so
// version 2 beats version 1 only where version 1 is at least ~1.3x slower than version 3, and loses on the
// classifier's backward (its (N, Vp) dlogits are the largest operand). Version 5 casts only X (6 bytes per element of
// the input, none of the weight): between 2 and 3, nearer 3 where the weight is the larger operand (the classifier
// forward: wte is 6x lnf here, 49x a chunk of 1024 rows in the model). Result: to be measured on a GPU (dev/gpu_check.sh runs
// this lab). The model ships version 5 for a frozen base's forward products and version 1 elsewhere; if version 3
// beats 5 by more than ~1.2x, the next step is to have the producers of the linears' inputs (layer norm, GELU,
// attention) write bf16 themselves.
#include <cuda_bf16.h>

#include "dev/cuda/lab_common.h"
#include "model/bf16.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/matmul_precision.h"

// ---------------------------------------------------------------------------------------------------------
// The products: row-major out (rows, cols) = X (rows, K) . Y (K, cols)

struct Product {
    const char* name;
    int rows, cols, K;
    bool x_transposed;  // X stored (K, rows): dout of a weight gradient, used as dout^T
    bool y_transposed;  // Y stored (cols, K): a weight W (OC, C) used as W^T in the forward
};

// The column-major cuBLAS arguments of a row-major product: cuBLAS computes out^T (cols, rows) = op(Y)^T op(X)^T.
struct GemmArguments {
    cublasOperation_t op_a, op_b;
    int m, n, k, lda, ldb, ldc;
};

GemmArguments gemm_arguments(const Product& p) {
    return {p.y_transposed ? CUBLAS_OP_T : CUBLAS_OP_N,
            p.x_transposed ? CUBLAS_OP_T : CUBLAS_OP_N,
            p.cols,
            p.rows,
            p.K,
            p.y_transposed ? p.K : p.cols,
            p.x_transposed ? p.rows : p.K,
            p.cols};
}

size_t x_size(const Product& p) { return size_t(p.rows) * p.K; }
size_t y_size(const Product& p) { return size_t(p.K) * p.cols; }
size_t out_size(const Product& p) { return size_t(p.rows) * p.cols; }

// ---------------------------------------------------------------------------------------------------------
// CPU reference

// out[r, c] for the sampled entries, in double, from the operands rounded to bf16 (rounded) or not
std::vector<float> reference_entries(const Product& p, const std::vector<float>& X, const std::vector<float>& Y,
                                     const std::vector<size_t>& entries, bool rounded) {
    std::vector<float> values;
    auto operand = [&](float v) { return double(rounded ? round_to_bf16(v) : v); };
    for (size_t entry : entries) {
        const size_t r = entry / p.cols, c = entry % p.cols;
        double sum = 0;
        for (int k = 0; k < p.K; k++) {
            const float x = p.x_transposed ? X[size_t(k) * p.rows + r] : X[r * p.K + k];
            const float y = p.y_transposed ? Y[c * p.K + k] : Y[size_t(k) * p.cols + c];
            sum += operand(x) * operand(y);
        }
        values.push_back(float(sum));
    }
    return values;
}

// ---------------------------------------------------------------------------------------------------------
// Versions 2 to 4

// the model's own conversion (model/cuda/matmul.cu), on this lab's __nv_bfloat16 buffers
void to_bf16(__nv_bfloat16* out, const float* inp, size_t count) {
    cuda::to_bf16(reinterpret_cast<bf16_bits*>(out), inp, count);
}

// out (fp32 or bf16) = X . Y on bf16 operands, fp32 accumulation
void native_bf16_gemm(const Product& p, const __nv_bfloat16* X, const __nv_bfloat16* Y, void* out,
                      cudaDataType_t out_type) {
    const GemmArguments g = gemm_arguments(p);
    const float one = 1.0f, zero = 0.0f;
    CHECK_CUBLAS(cublasGemmEx(cublas_handle(), g.op_a, g.op_b, g.m, g.n, g.k, &one, Y, CUDA_R_16BF, g.lda, X,
                              CUDA_R_16BF, g.ldb, &zero, out, out_type, g.ldc, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
}

// ---------------------------------------------------------------------------------------------------------
// Check and timing

struct Buffers {
    float *x, *y, *out;                  // fp32 operands and output
    __nv_bfloat16 *x16, *y16, *out16;  // bf16 operands and output
};

void run_version(int version, const Product& p, const Buffers& b) {
    switch (version) {
        case 1: {
            const GemmArguments g = gemm_arguments(p);
            const float one = 1.0f, zero = 0.0f;
            cuda::gemm(cublas_handle(), g.op_a, g.op_b, g.m, g.n, g.k, &one, b.y, g.lda, b.x, g.ldb, &zero, b.out,
                       g.ldc);
            return;
        }
        case 2:
            to_bf16(b.x16, b.x, x_size(p));
            to_bf16(b.y16, b.y, y_size(p));
            return native_bf16_gemm(p, b.x16, b.y16, b.out, CUDA_R_32F);
        case 3: return native_bf16_gemm(p, b.x16, b.y16, b.out, CUDA_R_32F);
        case 4: return native_bf16_gemm(p, b.x16, b.y16, b.out16, CUDA_R_16BF);
        default:  // 5: Y (the weight of the forward products) stored in bf16, X cast per product
            to_bf16(b.x16, b.x, x_size(p));
            return native_bf16_gemm(p, b.x16, b.y16, b.out, CUDA_R_32F);
    }
}

// The version's sampled output entries, as floats
std::vector<float> sampled_output(int version, const Product& p, const Buffers& b, const std::vector<size_t>& entries) {
    std::vector<float> values;
    if (version == 4) {
        const std::vector<__nv_bfloat16> out = download(b.out16, out_size(p));
        for (size_t entry : entries) {
            uint16_t half;
            std::memcpy(&half, &out[entry], sizeof half);
            values.push_back(bf16_to_float(half));
        }
        return values;
    }
    const std::vector<float> out = download(b.out, out_size(p));
    for (size_t entry : entries) values.push_back(out[entry]);
    return values;
}

int main(int argc, char** argv) {
    const std::vector<int> versions = versions_to_run(argc, argv, 5);
    print_device();
    cuda::set_matmul_precision(MatmulPrecision::bf16);  // version 1: the mixed precision of `train`
    const int N = 8 * 1024, C = 768, Vp = 50304;
    const Product products[] = {
        {"qkv forward", N, 3 * C, C, false, true},  // qkv (N,3C) = ln1 (N,C) W^T, W (3C,C)
        {"attproj forward", N, C, C, false, true},
        {"fc forward", N, 4 * C, C, false, true},
        {"fcproj forward", N, C, 4 * C, false, true},
        {"classifier forward", N, Vp, C, false, true},  // logits (N,Vp) = lnf (N,C) wte^T
        {"qkv dinp", N, C, 3 * C, false, false},         // dln1 (N,C) = dqkv (N,3C) W (3C,C)
        {"fc dinp", N, C, 4 * C, false, false},
        {"classifier dinp", N, C, Vp, false, false},  // dlnf (N,C) = dlogits (N,Vp) wte (Vp,C)
        {"qkv dweight", 3 * C, C, N, true, false},     // dW (3C,C) = dqkv^T (3C,N) ln1 (N,C): full training
    };
    bool ok = true;
    std::string shipped;
    std::printf("bf16 products of GPT-2 124M's linears, N = B*T = %d; TFLOP/s = 2 rows cols K / time\n", N);
    for (const Product& p : products) {
        const std::vector<float> X = random_floats(x_size(p), 1), Y = random_floats(y_size(p), 2);  // in [-1, 1)
        std::vector<size_t> entries;  // 4096 sampled output entries, the same for every version
        uint64_t state = 7;
        for (int i = 0; i < 4096; i++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            entries.push_back(size_t(state >> 17) % out_size(p));
        }
        const std::vector<float> exact = reference_entries(p, X, Y, entries, false);
        const std::vector<float> rounded = reference_entries(p, X, Y, entries, true);

        Buffers b;
        b.x = to_device(X), b.y = to_device(Y);
        CHECK_CUDA(cudaMalloc(&b.out, out_size(p) * sizeof(float)));
        CHECK_CUDA(cudaMalloc(&b.x16, x_size(p) * sizeof(__nv_bfloat16)));
        CHECK_CUDA(cudaMalloc(&b.y16, y_size(p) * sizeof(__nv_bfloat16)));
        CHECK_CUDA(cudaMalloc(&b.out16, out_size(p) * sizeof(__nv_bfloat16)));
        to_bf16(b.x16, b.x, x_size(p));  // versions 3 and 4 start from stored bf16 operands
        to_bf16(b.y16, b.y, y_size(p));
        const double flops = 2.0 * p.rows * p.cols * p.K;
        std::printf("%s: (%d, %d) = (%d, %d) . (%d, %d)\n", p.name, p.rows, p.cols, p.rows, p.K, p.K, p.cols);
        std::string times;
        for (int version : versions) {
            CHECK_CUDA(cudaMemset(b.out, 0xFF, out_size(p) * sizeof(float)));  // poison: NaN
            CHECK_CUDA(cudaMemset(b.out16, 0xFF, out_size(p) * sizeof(__nv_bfloat16)));
            run_version(version, p, b);
            const std::vector<float> got = sampled_output(version, p, b, entries);
            const bool rounded_reference = version != 1 && version != 4;
            const double error = relative_error(got, rounded_reference ? rounded : exact);
            const double tolerance = rounded_reference ? 1e-4 : 1e-2;
            const float ms = time_ms([&] { run_version(version, p, b); });
            const std::string note =
                format("%6.1f TFLOP/s", flops / ms * 1e-9) +
                (version == 1 ? format("  (vs bf16-rounded operands %.2e)", relative_error(got, rounded)) : "");
            ok &= print_result(format("  version %d", version), error, tolerance, ms, 0.0, note);
            times += format(" v%d %.3f", version, ms);
        }
        if (std::strcmp(p.name, "qkv forward") == 0) shipped = "qkv fwd ms:" + times;  // v1: fp32 storage, v5: bf16 base
        for (void* pointer : {(void*)b.x, (void*)b.y, (void*)b.out, (void*)b.x16, (void*)b.y16, (void*)b.out16})
            CHECK_CUDA(cudaFree(pointer));
    }
    return finish("matmul", ok, shipped);
}
