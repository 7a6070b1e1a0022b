// bfloat16 on the host: the top 16 bits of an fp32 (sign, 8 exponent bits, 7 mantissa bits), held as uint16_t so
// that plain C++ (the CPU backend, the model orchestration, the tests) can store and convert it. The rounding is
// round to nearest, ties to even (NaN stays NaN), which is what CUDA's __float2bfloat16_rn gives, so a CPU and a
// GPU conversion of the same fp32 value agree bit for bit. Widening back to fp32 is exact.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

using bf16_bits = uint16_t;

inline bf16_bits float_to_bf16(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu)) return bf16_bits((bits >> 16) | 0x0040u);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return bf16_bits(bits >> 16);
}

inline float bf16_to_float(bf16_bits half) {
    const uint32_t bits = uint32_t(half) << 16;
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// x rounded to the nearest bf16, as an fp32
inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }
