// The 256-int32 header that opens every llm.c-style binary file (checkpoints, debug states, token shards,
// training states), and the checks the four formats share: magic, version, sizes against the bytes present.
// Files are little-endian, as written by llm.c on x86 and ARM hosts.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "data/file_io.h"

constexpr int LLMC_HEADER_INTS = 256;
using LlmcHeader = std::array<int32_t, LLMC_HEADER_INTS>;  // (256,) int32, 1024 bytes

// A zeroed header with [0] = magic and [1] = version.
LlmcHeader make_llmc_header(int32_t magic, int32_t version);

// Reads the header at the reader's cursor. The magic is checked first, as soon as 4 bytes are there, so a
// file of the wrong kind fails with "<path>: not a <kind>: magic X, expected Y" rather than as truncated.
LlmcHeader read_llmc_header(FileReader& reader, int32_t expected_magic, const std::string& kind);

// Fails with "<path>: unsupported <kind> version V (supported: 3, 5)<note>" unless header[1] is listed.
void expect_llmc_version(const FileReader& reader, const LlmcHeader& header, const std::string& kind,
                         std::initializer_list<int32_t> supported_versions, const std::string& note = "");

void write_llmc_header(AtomicFileWriter& writer, const LlmcHeader& header);

// 64-bit values take two slots: [slot] the low 32 bits, [slot + 1] the high 32 bits.
void set_header_int64(LlmcHeader& header, int slot, int64_t value);
int64_t get_header_int64(const LlmcHeader& header, int slot);

// Fails as truncated unless count elements of element_size bytes remain (checked before anything is
// allocated, so a corrupt count cannot ask for terabytes).
void expect_payload(const FileReader& reader, size_t count, size_t element_size, const char* what);

// read_array with that check done first.
template <typename T>
std::vector<T> read_payload(FileReader& reader, size_t count, const char* what) {
    expect_payload(reader, count, sizeof(T), what);
    return reader.read_array<T>(count, what);
}
