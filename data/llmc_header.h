// The 256-int32 header that opens every llm.c-style binary file (checkpoints, debug states, token shards,
// training states, adapter files), and the checks the formats share: magic, version, sizes against the bytes
// present, and clora's checksum. Files are little-endian, as written by llm.c on x86 and ARM hosts.
//
// Slots clora fills at the end of the header, which llm.c leaves 0 and never reads (it reads [0..7] of a
// checkpoint, [0..2] of a token shard), so llm.c still reads clora's files:
//   [248,249] run id (uint64, 0: no stamp) and [250,251] step (int64) of a run stamp: checkpoints and training
//             states, so that a model and a training state can be matched to one run and step (RunStamp)
//   [254]     LLMC_CHECKSUM_TAG: the file is sealed
//   [255]     CRC-32C (data/checksum.h) of the whole file, header and payload, with this slot read as 0
// Every file written through write_llmc_header + AtomicFileWriter is sealed by commit(); read_llmc_header verifies
// a sealed file before anything else reads it. A file without the tag (llm.c's, or clora's from before the
// checksum) loads unverified, but then [254] and [255] must be 0: a tag damaged into anything else is an error.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "data/file_io.h"

constexpr int LLMC_HEADER_INTS = 256;
using LlmcHeader = std::array<int32_t, LLMC_HEADER_INTS>;  // (256,) int32, 1024 bytes

constexpr int RUN_ID_SLOT = 248, RUN_STEP_SLOT = 250, CHECKSUM_TAG_SLOT = 254, CHECKSUM_SLOT = 255;
constexpr int32_t LLMC_CHECKSUM_TAG = 0x43524333;  // the bytes "3CRC"

// Which run wrote a file, and at which step: stored in [248..251] of checkpoints and training states.
struct RunStamp {
    uint64_t run_id = 0;  // 0: not stamped (files of llm.c, of older clora, or written without one)
    int64_t step = -1;    // >= 0 when stamped; -1 when not
    bool stamped() const { return run_id != 0; }
    bool operator==(const RunStamp& other) const { return run_id == other.run_id && step == other.step; }
    bool operator!=(const RunStamp& other) const { return !(*this == other); }
};

// A zeroed header with [0] = magic and [1] = version.
LlmcHeader make_llmc_header(int32_t magic, int32_t version);

// Reads the header at the start of the file. The magic is checked first, as soon as 4 bytes are there, so a
// file of the wrong kind fails with "<path>: not a <kind>: magic X, expected Y" rather than as truncated. Then
// a sealed file's checksum: "<path>: checksum mismatch (stored X, computed Y): the file is corrupt".
LlmcHeader read_llmc_header(FileReader& reader, int32_t expected_magic, const std::string& kind);

// Fails with "<path>: unsupported <kind> version V (supported: 3, 5)<note>" unless header[1] is listed.
void expect_llmc_version(const FileReader& reader, const LlmcHeader& header, const std::string& kind,
                         std::initializer_list<int32_t> supported_versions, const std::string& note = "");

// Writes the header as the file's first bytes and marks the writer so that commit() seals the file: [254] = the
// tag, [255] = the CRC-32C. Fails (a bug) unless the writer is still empty.
void write_llmc_header(AtomicFileWriter& writer, const LlmcHeader& header);

// Seals a whole file's bytes in place, as commit() does: [254] = the tag, [255] = the CRC-32C of the rest. For
// tests, to give a deliberately altered file a valid checksum. Fails on fewer bytes than a header.
void seal_llmc_checksum(std::vector<uint8_t>& file_bytes);
// The CRC-32C of a file's bytes with slot [255] read as 0 (the value a sealed file stores there).
uint32_t llmc_file_checksum(const uint8_t* bytes, size_t size);

// 64-bit values take two slots: [slot] the low 32 bits, [slot + 1] the high 32 bits.
void set_header_int64(LlmcHeader& header, int slot, int64_t value);
int64_t get_header_int64(const LlmcHeader& header, int slot);

// Stores a stamp in [248..251] (zeros for an unstamped one). Fails naming path on a stamp with a run id and a
// negative step.
void set_run_stamp(LlmcHeader& header, const RunStamp& stamp, const std::string& path);
// The stamp of a file: {0, -1} when [248,249] is 0; fails on a stamped negative step.
RunStamp get_run_stamp(const FileReader& reader, const LlmcHeader& header);

// Fails as truncated unless count elements of element_size bytes remain (checked before anything is
// allocated, so a corrupt count cannot ask for terabytes).
void expect_payload(const FileReader& reader, size_t count, size_t element_size, const char* what);

// read_array with that check done first.
template <typename T>
std::vector<T> read_payload(FileReader& reader, size_t count, const char* what) {
    expect_payload(reader, count, sizeof(T), what);
    return reader.read_array<T>(count, what);
}
