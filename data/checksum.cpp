// CRC-32C: slicing-by-8 tables (eight bytes per step through eight 256-entry tables), and SSE4.2's crc32
// instruction, which computes the same polynomial, eight bytes per instruction.
#include "data/checksum.h"

#include <array>
#include <cstring>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace {

constexpr uint32_t REFLECTED_POLYNOMIAL = 0x82F63B78u;

// table[0][b]: the CRC register after shifting byte b through it; table[k][b]: the same byte followed by k zero
// bytes, so that one 8-byte step looks up each of its bytes at its distance from the end.
struct SlicingTables {
    std::array<std::array<uint32_t, 256>, 8> table;
    SlicingTables() {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t crc = b;
            for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (crc & 1 ? REFLECTED_POLYNOMIAL : 0);
            table[0][b] = crc;
        }
        for (int k = 1; k < 8; k++)
            for (uint32_t b = 0; b < 256; b++)
                table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
    }
};

const SlicingTables& slicing_tables() {
    static const SlicingTables tables;
    return tables;
}

}  // namespace

uint32_t crc32c_portable(const void* data, size_t size, uint32_t seed) {
    const auto& t = slicing_tables().table;
    const auto* p = static_cast<const uint8_t*>(data);
    uint32_t crc = ~seed;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; size >= 8; p += 8, size -= 8) {
        uint32_t low, high;  // the next 8 bytes as two little-endian words, the register folded into the first
        std::memcpy(&low, p, 4);
        std::memcpy(&high, p + 4, 4);
        low ^= crc;
        crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24] ^
              t[3][high & 0xFF] ^ t[2][(high >> 8) & 0xFF] ^ t[1][(high >> 16) & 0xFF] ^ t[0][high >> 24];
    }
#endif
    for (; size > 0; p++, size--) crc = t[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c(const void* data, size_t size, uint32_t seed) {
#if defined(__SSE4_2__)
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t crc = ~seed;
    for (; size >= 8; p += 8, size -= 8) {
        uint64_t word;
        std::memcpy(&word, p, 8);
        crc = _mm_crc32_u64(crc, word);
    }
    uint32_t crc32 = uint32_t(crc);
    for (; size > 0; p++, size--) crc32 = _mm_crc32_u8(crc32, *p);
    return ~crc32;
#else
    return crc32c_portable(data, size, seed);
#endif
}
