// The shared 256-int32 file header, its checksum seal and run stamp, and the size checks of llm.c-style files.
#include "data/llmc_header.h"

#include <cstdio>
#include <cstring>
#include <limits>

#include "data/checksum.h"

namespace {
constexpr size_t HEADER_BYTES = LLMC_HEADER_INTS * sizeof(int32_t);
constexpr size_t CHECKSUM_OFFSET = CHECKSUM_SLOT * sizeof(int32_t);

std::string hex32(uint32_t value) {
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "0x%08X", unsigned(value));
    return buffer;
}

int32_t header_slot(const std::vector<uint8_t>& bytes, int slot) {
    int32_t value;
    std::memcpy(&value, bytes.data() + slot * sizeof(int32_t), sizeof(value));
    return value;
}

// A sealed file's checksum must match; an unsealed one must hold 0 in both slots.
void verify_checksum(const FileReader& reader) {
    const int32_t tag = header_slot(reader.bytes, CHECKSUM_TAG_SLOT);
    const uint32_t stored = uint32_t(header_slot(reader.bytes, CHECKSUM_SLOT));
    if (tag != LLMC_CHECKSUM_TAG) {
        if (tag != 0 || stored != 0)
            reader.fail_here("header slots [254], [255] hold " + hex32(uint32_t(tag)) + ", " + hex32(stored) +
                             ": neither clora's checksum seal (" + hex32(uint32_t(LLMC_CHECKSUM_TAG)) +
                             " and a CRC-32C) nor an unsealed llm.c header (0, 0): the file is corrupt");
        return;
    }
    const uint32_t computed = llmc_file_checksum(reader.bytes.data(), reader.bytes.size());
    if (computed != stored)
        reader.fail_here("checksum mismatch (stored " + hex32(stored) + ", computed " + hex32(computed) +
                         "): the file is corrupt");
}

void seal_bytes(std::vector<uint8_t>& bytes) { seal_llmc_checksum(bytes); }
}  // namespace

LlmcHeader make_llmc_header(int32_t magic, int32_t version) {
    LlmcHeader header{};
    header[0] = magic;
    header[1] = version;
    return header;
}

LlmcHeader read_llmc_header(FileReader& reader, int32_t expected_magic, const std::string& kind) {
    if (reader.offset != 0) reader.fail_here("the " + kind + " header must start the file");
    if (reader.remaining() >= sizeof(int32_t)) {
        int32_t magic;
        std::memcpy(&magic, reader.bytes.data() + reader.offset, sizeof(magic));
        if (magic != expected_magic)
            reader.fail_here("not a " + kind + ": magic " + std::to_string(magic) + ", expected " +
                             std::to_string(expected_magic));
    }
    LlmcHeader header;
    reader.read(header.data(), sizeof(header), "header");
    verify_checksum(reader);
    return header;
}

void expect_llmc_version(const FileReader& reader, const LlmcHeader& header, const std::string& kind,
                         std::initializer_list<int32_t> supported_versions, const std::string& note) {
    std::string listed;
    for (int32_t version : supported_versions) {
        if (header[1] == version) return;
        listed += (listed.empty() ? "" : ", ") + std::to_string(version);
    }
    reader.fail_here("unsupported " + kind + " version " + std::to_string(header[1]) + " (supported: " + listed +
                     ")" + note);
}

void write_llmc_header(AtomicFileWriter& writer, const LlmcHeader& header) {
    if (!writer.bytes.empty()) fail(writer.path + ": the llm.c header must be the first bytes written");
    LlmcHeader sealed = header;
    sealed[CHECKSUM_TAG_SLOT] = LLMC_CHECKSUM_TAG;
    sealed[CHECKSUM_SLOT] = 0;  // the CRC, filled in by commit()
    writer.write(sealed.data(), sizeof(sealed));
    writer.seal = seal_bytes;
}

uint32_t llmc_file_checksum(const uint8_t* bytes, size_t size) {
    if (size < HEADER_BYTES) return crc32c(bytes, size);
    const uint8_t zero[sizeof(int32_t)] = {};
    uint32_t crc = crc32c(bytes, CHECKSUM_OFFSET);
    crc = crc32c(zero, sizeof(zero), crc);
    return crc32c(bytes + HEADER_BYTES, size - HEADER_BYTES, crc);
}

void seal_llmc_checksum(std::vector<uint8_t>& file_bytes) {
    if (file_bytes.size() < HEADER_BYTES)
        fail("cannot seal " + std::to_string(file_bytes.size()) + " bytes: fewer than an llm.c header");
    const int32_t tag = LLMC_CHECKSUM_TAG;
    std::memcpy(file_bytes.data() + CHECKSUM_TAG_SLOT * sizeof(int32_t), &tag, sizeof(tag));
    const uint32_t crc = llmc_file_checksum(file_bytes.data(), file_bytes.size());
    std::memcpy(file_bytes.data() + CHECKSUM_OFFSET, &crc, sizeof(crc));
}

void set_header_int64(LlmcHeader& header, int slot, int64_t value) {
    uint64_t bits = uint64_t(value);
    header.at(slot) = int32_t(uint32_t(bits & 0xFFFFFFFFu));
    header.at(slot + 1) = int32_t(uint32_t(bits >> 32));
}

int64_t get_header_int64(const LlmcHeader& header, int slot) {
    uint64_t low = uint32_t(header.at(slot)), high = uint32_t(header.at(slot + 1));
    return int64_t((high << 32) | low);
}

void set_run_stamp(LlmcHeader& header, const RunStamp& stamp, const std::string& path) {
    if (stamp.stamped() && stamp.step < 0)
        fail(path + ": cannot stamp run " + std::to_string(stamp.run_id) + " with the negative step " +
             std::to_string(stamp.step));
    set_header_int64(header, RUN_ID_SLOT, int64_t(stamp.run_id));
    set_header_int64(header, RUN_STEP_SLOT, stamp.stamped() ? stamp.step : 0);
}

RunStamp get_run_stamp(const FileReader& reader, const LlmcHeader& header) {
    RunStamp stamp;
    stamp.run_id = uint64_t(get_header_int64(header, RUN_ID_SLOT));
    const int64_t step = get_header_int64(header, RUN_STEP_SLOT);
    if (!stamp.stamped()) {
        if (step != 0) reader.fail_here("run stamp: step " + std::to_string(step) + " without a run id");
        return stamp;
    }
    if (step < 0) reader.fail_here("run stamp: negative step " + std::to_string(step));
    stamp.step = step;
    return stamp;
}

void expect_payload(const FileReader& reader, size_t count, size_t element_size, const char* what) {
    bool overflows = element_size != 0 && count > std::numeric_limits<size_t>::max() / element_size;
    if (overflows || count * element_size > reader.remaining())
        reader.fail_here(std::string("truncated: ") + what + " needs " +
                         (overflows ? std::string("more than 2^64") : std::to_string(count * element_size)) +
                         " bytes at offset " + std::to_string(reader.offset) + ", only " +
                         std::to_string(reader.remaining()) + " remain");
}
