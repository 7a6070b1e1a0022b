// CRC-32C (Castagnoli: polynomial 0x1EDC6F41, bit-reflected 0x82F63B78), the checksum of iSCSI, ext4 and SSE4.2's
// crc32 instruction: crc32c("123456789") = 0xE3069283. clora seals every llm.c-style file it writes with it
// (data/llmc_header.h).
#pragma once
#include <cstddef>
#include <cstdint>

// The CRC-32C of size bytes, continuing from seed, the CRC-32C of the bytes before them (0 to start):
// crc32c(ab, n + m) == crc32c(b, m, crc32c(a, n)). SSE4.2's crc32 instruction when the build has it (-msse4.2,
// -march=native on any x86-64 since 2008), else crc32c_portable.
uint32_t crc32c(const void* data, size_t size, uint32_t seed = 0);

// The same, table-driven (slicing-by-8) on any CPU; crc32c is this where SSE4.2 is not compiled in.
uint32_t crc32c_portable(const void* data, size_t size, uint32_t seed = 0);
