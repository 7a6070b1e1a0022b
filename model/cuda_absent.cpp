// A CPU-only build (make CPU_ONLY=1) has no CUDA runtime: these are its answers to the few questions the host code
// asks of the GPU side outside the CUDA backend. No GPU is ever usable, so --device auto runs on the CPU and
// --device cuda stops with the reason below; the matmul precision is only a setting, kept for the CPU's checks of
// it (model/precision.cpp).
#include "data/file_io.h"
#include "model/cuda/nccl.h"
#include "model/device.h"
#include "model/precision.h"

int cuda_device_count() { return 0; }

std::string cuda_unavailable_reason() { return "this clora was built without CUDA: make CPU_ONLY=1"; }

namespace cuda {

namespace {
MatmulPrecision current_precision = MatmulPrecision::fp32;
}  // namespace

void set_matmul_precision(MatmulPrecision precision) { current_precision = precision; }
MatmulPrecision matmul_precision() { return current_precision; }

void use_device(int) { fail("use_device: " + cuda_unavailable_reason()); }
void all_reduce_sum(float*, size_t) { fail("all_reduce_sum: " + cuda_unavailable_reason()); }

}  // namespace cuda
