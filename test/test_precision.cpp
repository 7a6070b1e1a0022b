// --precision (model/precision.h): which precision each flag value gives on each device, and the bf16 products of
// the CUDA backend against the CPU reference at the bf16 tolerance (skipped without a GPU).
#include "model/backend_cpu.h"
#include "model/cpu/matmul.h"
#include "model/cuda/kernels.h"
#include "model/precision.h"
#include "test/cuda_test_support.h"

TEST_CASE("precision: auto is bf16 on CUDA and fp32 on the CPU; bf16 on the CPU is a clear error") {
    CHECK(resolve_precision("auto", Device::cuda) == MatmulPrecision::bf16);
    CHECK(resolve_precision("auto", Device::cpu) == MatmulPrecision::fp32);
    CHECK(resolve_precision("fp32", Device::cuda) == MatmulPrecision::fp32);
    CHECK(resolve_precision("fp32", Device::cpu) == MatmulPrecision::fp32);
    CHECK(resolve_precision("bf16", Device::cuda) == MatmulPrecision::bf16);
    CHECK_THROWS_WITH(resolve_precision("bf16", Device::cpu), Catch::Contains("CPU backend computes in fp32 only"));
    CHECK_THROWS_WITH(resolve_precision("fp16", Device::cuda), Catch::Contains("expected fp32, bf16 or auto"));
    CHECK(std::string(precision_name(MatmulPrecision::bf16)) == "bf16");
    CHECK(std::string(precision_name(MatmulPrecision::fp32)) == "fp32");
}

TEST_CASE("precision: apply_precision sets the process-wide precision, fp32 by default") {
    CHECK(cuda::matmul_precision() == MatmulPrecision::fp32);
    MatmulPrecisionScope restore(MatmulPrecision::fp32);  // fp32 again after the test, whatever it checks
    CHECK(apply_precision("auto", Device::cuda) == MatmulPrecision::bf16);
    CHECK(cuda::matmul_precision() == MatmulPrecision::bf16);
    CHECK(apply_precision("auto", Device::cpu) == MatmulPrecision::fp32);
    CHECK(cuda::matmul_precision() == MatmulPrecision::fp32);
}

GPU_TEST_CASE("cuda kernels: bf16 matmul forward and backward match the CPU reference within the bf16 tolerance",
              "[matmul]") {
    const int N = 64 * 33, C = 768, OC = 2304;
    std::vector<float> inp = random_vector<float>(size_t(N) * C, 1), weight = random_vector<float>(size_t(OC) * C, 2);
    std::vector<float> bias = random_vector<float>(OC, 3), dout = random_vector<float>(size_t(N) * OC, 4);
    std::vector<float> out(size_t(N) * OC), dinp(inp.size(), 0.0f), dweight(weight.size(), 0.0f), dbias(OC, 0.0f);
    cpu::matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
    cpu::matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(), N, C, OC);

    DeviceBuffer<float> d_inp(inp), d_weight(weight), d_bias(bias), d_dout(dout), d_out(out.size());
    std::vector<float> zeros_inp(inp.size(), 0.0f), zeros_weight(weight.size(), 0.0f), zeros_bias(OC, 0.0f);
    DeviceBuffer<float> d_dinp(zeros_inp), d_dweight(zeros_weight), d_dbias(zeros_bias);
    MatmulPrecisionScope bf16(MatmulPrecision::bf16);
    d_out.poison();
    cuda::matmul_forward(d_out.data, d_inp.data, d_weight.data, d_bias.data, N, C, OC);
    cuda::matmul_backward(d_dinp.data, d_dweight.data, d_dbias.data, d_dout.data, d_inp.data, d_weight.data, N, C, OC);
    const double forward_error = relative_error(d_out.download(), out);
    INFO("bf16 forward relative error " << forward_error);
    CHECK(forward_error < BF16_TOLERANCE);
    CHECK(forward_error > FP32_TOLERANCE);  // the products did round to bf16: not the fp32 path
    CHECK(relative_error(d_dinp.download(), dinp) < BF16_TOLERANCE);
    CHECK(relative_error(d_dweight.download(), dweight) < BF16_TOLERANCE);
    CHECK(relative_error(d_dbias.download(), dbias) < FP32_TOLERANCE);  // the bias gradient is not a product
}
