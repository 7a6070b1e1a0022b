#include "data/token_loader.h"

#include <fstream>

#include "data/file_io.h"
#include "data/token_shard.h"
#include "data/random.h"

namespace {
// Fails unless a shard's tokens hold at least one window of B*T+1.
void expect_window(const std::string& path, size_t tokens, int batch_size, int seq_len) {
    if (tokens == 0) fail(path + ": no tokens");
    if (tokens < size_t(batch_size) * seq_len + 1)
        fail(path + ": " + std::to_string(tokens) + " tokens, too few for one batch of " + std::to_string(batch_size) +
             "x" + std::to_string(seq_len) + " (+1)");
}
constexpr int64_t SHARD_HEADER_BYTES = 256 * 4;
}  // namespace

DataOrder parse_data_order(const std::string& name) {
    if (name == "sequential") return DataOrder::sequential;
    if (name == "random") return DataOrder::random;
    fail("data order '" + name + "': expected sequential or random");
}

const char* data_order_name(DataOrder order) { return order == DataOrder::random ? "random" : "sequential"; }

TokenLoader::TokenLoader(const std::string& pattern, int batch_size, int seq_len, int vocab_size)
    : batch_size(batch_size), seq_len(seq_len), vocab_size(vocab_size), shard_paths(glob_files(pattern)),
      rows(batch_size) {
    if (batch_size < 1 || seq_len < 1)
        fail("token loader: batch size " + std::to_string(batch_size) + " and sequence length " +
             std::to_string(seq_len) + " must be positive");
    // Every shard is read and checked now (checksum, ids, length), so that a bad shard fails the run before its
    // first step rather than when the data reaches it; the first stays loaded.
    shard_tokens.resize(shard_paths.size());
    for (size_t index = shard_paths.size(); index-- > 0;) {
        tokens = read_token_shard(shard_paths[index], vocab_size);
        expect_window(shard_paths[index], tokens.size(), batch_size, seq_len);
        shard_tokens[index] = int64_t(tokens.size());
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
    shard_tokens = {int64_t(tokens.size())};
    loaded_shard = 0;
}

void TokenLoader::use_random_order(uint64_t random_seed) {
    order = DataOrder::random;
    seed = random_seed;
    batches_drawn = 0;
}

void TokenLoader::load_shard(int64_t index) {
    if (shard_paths.empty() || index == loaded_shard) return;
    const std::string& path = shard_paths.at(index);
    tokens = read_token_shard(path, vocab_size);  // checked again: the file may have changed since the start
    expect_window(path, tokens.size(), batch_size, seq_len);
    loaded_shard = index;
}

void TokenLoader::reset() {
    if (order == DataOrder::random) seek_batch(0);
    else seek(0, 0);
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

void TokenLoader::seek_batch(int64_t batches) {
    if (batches < 0) fail("data position: batch " + std::to_string(batches) + " is negative");
    batches_drawn = batches;
}

std::pair<int64_t, int64_t> TokenLoader::random_start(int64_t batch, int row) const {
    // every shard offers its n - T starts of a row of T + 1 tokens; they are numbered across the shards in order
    int64_t starts = 0;
    for (int64_t n : shard_tokens) starts += n - seq_len;
    Random mix(seed ^ (uint64_t(batch) * 0x9E3779B97F4A7C15ULL) ^ (uint64_t(row + 1) * 0xC2B2AE3D27D4EB4FULL));
    Random random(mix.next());
    int64_t start = int64_t(random.next() % uint64_t(starts));
    for (size_t shard = 0; shard < shard_tokens.size(); shard++) {
        const int64_t here = shard_tokens[shard] - seq_len;
        if (start < here) return {int64_t(shard), start};
        start -= here;
    }
    fail("token loader: random start out of range");  // unreachable: start < starts
}

void TokenLoader::read_window(int64_t shard, int64_t offset, int count, uint16_t* out) {
    if (shard_paths.empty() || shard == loaded_shard) {
        std::copy(tokens.begin() + offset, tokens.begin() + offset + count, out);
        return;
    }
    // another shard: read just the window (the shard was checked whole when the loader was made)
    const std::string& path = shard_paths[size_t(shard)];
    std::ifstream file(path, std::ios::binary);
    file.seekg(SHARD_HEADER_BYTES + offset * int64_t(sizeof(uint16_t)));
    file.read(reinterpret_cast<char*>(out), std::streamsize(count) * std::streamsize(sizeof(uint16_t)));
    if (!file) fail(path + ": cannot read " + std::to_string(count) + " tokens at offset " + std::to_string(offset) +
                    " (the shard changed since the run started?)");
    for (int i = 0; i < count; i++)
        if (out[i] >= vocab_size)
            fail(path + ": token id " + std::to_string(out[i]) + " at position " + std::to_string(offset + i) +
                 " is out of range for vocabulary size " + std::to_string(vocab_size));
}

void TokenLoader::next_batch() {
    const int T = seq_len;
    inputs.resize(size_t(rows) * T);
    targets.resize(size_t(rows) * T);
    if (order == DataOrder::random) {
        std::vector<uint16_t> window(size_t(T) + 1);
        for (int r = 0; r < rows; r++) {
            const auto [shard, offset] = random_start(batches_drawn, first_row + r);
            read_window(shard, offset, T + 1, window.data());
            for (int t = 0; t < T; t++) {
                inputs[size_t(r) * T + t] = window[t];
                targets[size_t(r) * T + t] = window[t + 1];
            }
        }
        batches_drawn++;
        return;
    }
    const int64_t window = int64_t(batch_size) * T;
    if (position + window + 1 > int64_t(tokens.size())) {  // move on to the next shard, wrapping around
        int64_t shards = shard_paths.empty() ? 1 : int64_t(shard_paths.size());
        seek((shard_index + 1) % shards, 0);
    }
    const int64_t kept = int64_t(rows) * T, first = position + int64_t(first_row) * T;
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
