// The shared 256-int32 file header and the size checks of llm.c-style binary files.
#include "data/llmc_header.h"

#include <cstring>
#include <limits>

LlmcHeader make_llmc_header(int32_t magic, int32_t version) {
    LlmcHeader header{};
    header[0] = magic;
    header[1] = version;
    return header;
}

LlmcHeader read_llmc_header(FileReader& reader, int32_t expected_magic, const std::string& kind) {
    if (reader.remaining() >= sizeof(int32_t)) {
        int32_t magic;
        std::memcpy(&magic, reader.bytes.data() + reader.offset, sizeof(magic));
        if (magic != expected_magic)
            reader.fail_here("not a " + kind + ": magic " + std::to_string(magic) + ", expected " +
                             std::to_string(expected_magic));
    }
    LlmcHeader header;
    reader.read(header.data(), sizeof(header), "header");
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
    writer.write(header.data(), sizeof(header));
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

void expect_payload(const FileReader& reader, size_t count, size_t element_size, const char* what) {
    bool overflows = element_size != 0 && count > std::numeric_limits<size_t>::max() / element_size;
    if (overflows || count * element_size > reader.remaining())
        reader.fail_here(std::string("truncated: ") + what + " needs " +
                         (overflows ? std::string("more than 2^64") : std::to_string(count * element_size)) +
                         " bytes at offset " + std::to_string(reader.offset) + ", only " +
                         std::to_string(reader.remaining()) + " remain");
}
