// llm.c token shards: a 256-int32 header, then the tokens.
//   header[0] = 20240520 (magic), [1] = 1 (version), [2] = N, the number of tokens; then (N,) uint16 tokens.
//   Written by clora: [254] checksum tag, [255] CRC-32C of the file (data/llmc_header.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

constexpr int32_t TOKEN_SHARD_MAGIC = 20240520;
constexpr int32_t TOKEN_SHARD_VERSION = 1;

// Reads every token (none is valid here; TokenLoader refuses to train on them). Fails with "<path>: ..." on a
// wrong magic, a checksum mismatch, a wrong version, a token count that does not match the file size (truncated
// or trailing bytes), or a token id >= vocab_size ("token id X at position I ...").
std::vector<uint16_t> read_token_shard(const std::string& path, int vocab_size);

// Writes atomically; fails if there are more tokens than an int32 count can hold.
void write_token_shard(const std::string& path, const std::vector<uint16_t>& tokens);
