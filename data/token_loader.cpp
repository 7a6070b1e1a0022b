#include "data/token_loader.h"

#include "data/file_io.h"
#include "data/token_shard.h"

namespace {
// Fails unless a shard's tokens hold at least one window of B*T+1.
void expect_window(const std::string& path, size_t tokens, int batch_size, int seq_len) {
    if (tokens == 0) fail(path + ": no tokens");
    if (tokens < size_t(batch_size) * seq_len + 1)
        fail(path + ": " + std::to_string(tokens) + " tokens, too few for one batch of " + std::to_string(batch_size) +
             "x" + std::to_string(seq_len) + " (+1)");
}
}  // namespace

TokenLoader::TokenLoader(const std::string& pattern, int batch_size, int seq_len, int vocab_size)
    : batch_size(batch_size), seq_len(seq_len), vocab_size(vocab_size), shard_paths(glob_files(pattern)),
      rows(batch_size) {
    if (batch_size < 1 || seq_len < 1)
        fail("token loader: batch size " + std::to_string(batch_size) + " and sequence length " +
             std::to_string(seq_len) + " must be positive");
    // Every shard is read and checked now (checksum, ids, length), so that a bad shard fails the run before its
    // first step rather than when the data reaches it; the first stays loaded.
    for (size_t index = shard_paths.size(); index-- > 0;) {
        tokens = read_token_shard(shard_paths[index], vocab_size);
        expect_window(shard_paths[index], tokens.size(), batch_size, seq_len);
    }
    loaded_shard = 0;
}

TokenLoader::TokenLoader(std::vector<uint16_t> stream, int batch_size, int seq_len, int vocab_size)
    : batch_size(batch_size), seq_len(seq_len), vocab_size(vocab_size), tokens(std::move(stream)),
      rows(batch_size) {
    if (batch_size < 1 || seq_len < 1)
        fail("token stream: batch size " + std::to_string(batch_size) + " and sequence length " +
             std::to_string(seq_len) + " must be positive");
    for (size_t i = 0; i < tokens.size(); i++)
        if (tokens[i] >= vocab_size)
            fail("token stream: token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                 " is out of range for vocabulary size " + std::to_string(vocab_size));
    expect_window("token stream", tokens.size(), batch_size, seq_len);
    loaded_shard = 0;
}

void TokenLoader::load_shard(int64_t index) {
    if (shard_paths.empty() || index == loaded_shard) return;
    const std::string& path = shard_paths.at(index);
    tokens = read_token_shard(path, vocab_size);  // checked again: the file may have changed since the start
    expect_window(path, tokens.size(), batch_size, seq_len);
    loaded_shard = index;
}

void TokenLoader::seek(int64_t shard, int64_t offset) {
    int64_t shards = shard_paths.empty() ? 1 : int64_t(shard_paths.size());
    if (shard < 0 || shard >= shards) fail("data position: shard " + std::to_string(shard) + " does not exist");
    load_shard(shard);
    if (offset < 0 || offset + int64_t(batch_size) * seq_len + 1 > int64_t(tokens.size()))
        fail("data position: offset " + std::to_string(offset) + " is past the end of shard " + std::to_string(shard));
    shard_index = shard;
    position = offset;
}

void TokenLoader::next_batch() {
    const int64_t window = int64_t(batch_size) * seq_len;
    if (position + window + 1 > int64_t(tokens.size())) {  // move on to the next shard, wrapping around
        int64_t shards = shard_paths.empty() ? 1 : int64_t(shard_paths.size());
        seek((shard_index + 1) % shards, 0);
    }
    const int64_t kept = int64_t(rows) * seq_len, first = position + int64_t(first_row) * seq_len;
    inputs.resize(kept);
    targets.resize(kept);
    for (int64_t i = 0; i < kept; i++) {
        inputs[i] = tokens[first + i];
        targets[i] = tokens[first + i + 1];
    }
    position += window;
}

void TokenLoader::keep_rank_rows(int rank, int world_size) {
    if (world_size < 1 || rank < 0 || rank >= world_size || batch_size % world_size != 0)
        fail("data parallelism: the batch size " + std::to_string(batch_size) + " must be a multiple of the " +
             std::to_string(world_size) + " ranks");
    rows = batch_size / world_size;
    first_row = rank * rows;
}
