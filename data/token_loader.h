// Batches of (inputs, targets) read in order from llm.c token shards (or from tokens in memory):
// each batch is a window of B*T+1 consecutive tokens; inputs are its first B*T, targets the next B*T.
// A shard too short for the next window is left for the next shard; after the last shard, the first.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

struct TokenLoader {
    int batch_size, seq_len, vocab_size;
    std::vector<std::string> shard_paths;  // empty when the tokens were given in memory
    std::vector<uint16_t> tokens;          // the current shard
    int64_t shard_index = 0;               // position: shard and token offset of the next window
    int64_t position = 0;
    std::vector<int> inputs, targets;      // (rows,T) the last batch: its rows first_row .. first_row + rows - 1
    // Data parallelism: each rank keeps its own rows of every window (all B rows by default). The windows, and
    // the position, are those of the global batch, so every rank walks the data in step.
    int first_row = 0, rows = 0;

    // Shards matching a glob pattern. Every shard is read and checked here, before the first batch (checksum,
    // tokens < vocab_size, at least B*T+1 tokens: "<path>: no tokens" for none), and again whenever it is loaded;
    // the first stays loaded. (One extra pass over the data at the start.)
    TokenLoader(const std::string& pattern, int batch_size, int seq_len, int vocab_size);
    // One in-memory stream.
    TokenLoader(std::vector<uint16_t> stream, int batch_size, int seq_len, int vocab_size);

    void next_batch();
    // Keeps rank `rank`'s rows of every window of B rows split over `world_size` ranks; fails unless B is a
    // multiple of world_size (every rank then holds B / world_size rows, weighing alike).
    void keep_rank_rows(int rank, int world_size);
    void reset() { seek(0, 0); }
    void seek(int64_t shard_index, int64_t position);  // fails if the position is not within the data

private:
    void load_shard(int64_t index);
    int64_t loaded_shard = -1;
};
