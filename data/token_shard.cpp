// Reading and writing llm.c token shards (uint16 tokens after a 256-int32 header).
#include "data/token_shard.h"

#include <limits>

#include "data/file_io.h"
#include "data/llmc_header.h"

namespace {
const char* const TOKEN_SHARD_KIND = "llm.c token shard";
}

std::vector<uint16_t> read_token_shard(const std::string& path, int vocab_size) {
    FileReader reader(path);
    LlmcHeader header = read_llmc_header(reader, TOKEN_SHARD_MAGIC, TOKEN_SHARD_KIND);
    expect_llmc_version(reader, header, TOKEN_SHARD_KIND, {TOKEN_SHARD_VERSION});
    const int32_t count = header[2];
    if (count < 0) reader.fail_here("negative token count " + std::to_string(count) + " in the header");
    const size_t expected_bytes = size_t(count) * sizeof(uint16_t);
    if (reader.remaining() != expected_bytes)
        reader.fail_here(std::string(reader.remaining() < expected_bytes ? "truncated" : "trailing bytes") +
                         ": the header says " + std::to_string(count) + " tokens (" + std::to_string(expected_bytes) +
                         " bytes), but " + std::to_string(reader.remaining()) + " bytes follow it");
    std::vector<uint16_t> tokens = reader.read_array<uint16_t>(count, "tokens");
    reader.expect_end();
    for (size_t i = 0; i < tokens.size(); i++)
        if (int(tokens[i]) >= vocab_size)
            reader.fail_here("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                             " is out of range for vocabulary size " + std::to_string(vocab_size));
    return tokens;
}

void write_token_shard(const std::string& path, const std::vector<uint16_t>& tokens) {
    if (tokens.size() > size_t(std::numeric_limits<int32_t>::max()))
        fail(path + ": cannot write " + std::to_string(tokens.size()) + " tokens into one shard (at most 2^31 - 1)");
    LlmcHeader header = make_llmc_header(TOKEN_SHARD_MAGIC, TOKEN_SHARD_VERSION);
    header[2] = int32_t(tokens.size());
    AtomicFileWriter writer(path);
    write_llmc_header(writer, header);
    writer.write_array(tokens);
    writer.commit();
}
