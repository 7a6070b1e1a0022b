#include "model/precision.h"

#include "data/file_io.h"

const char* precision_name(MatmulPrecision precision) { return precision == MatmulPrecision::bf16 ? "bf16" : "fp32"; }

MatmulPrecision resolve_precision(const std::string& flag, Device device) {
    if (flag == "fp32") return MatmulPrecision::fp32;
    if (flag == "auto") return device == Device::cuda ? MatmulPrecision::bf16 : MatmulPrecision::fp32;
    if (flag != "bf16") fail("--precision '" + flag + "': expected fp32, bf16 or auto");
    if (device == Device::cpu)
        fail("--precision bf16: the CPU backend computes in fp32 only (use --device cuda, or --precision fp32)");
    return MatmulPrecision::bf16;
}

MatmulPrecision apply_precision(const std::string& flag, Device device) {
    const MatmulPrecision precision = resolve_precision(flag, device);
    cuda::set_matmul_precision(precision);
    return precision;
}
