// Batches of (inputs, targets) from llm.c token shards (or from tokens in memory), in one of two orders:
//
//   sequential (llm.c's order): each batch is the next window of B*T+1 consecutive tokens; inputs are its first
//       B*T, targets the next B*T. A shard too short for the next window is left for the next shard; after the
//       last shard, the first. Position: (shard, token offset).
//   random (the default of `train pretrain`): row b of batch k starts at a seeded random offset of the whole
//       data (every shard's starts of T+1 tokens, as one range), drawn from (seed, k, b) alone, so that every step
//       mixes documents from across the data and a batch can be recomputed from its index. Position: k, the
//       number of batches drawn. Rows are drawn with replacement; the chance that two overlap is ~B*T / tokens.
//
// Data parallelism: each rank keeps its own rows of every global batch of B rows (rank r: rows r*B/W ..
// (r+1)*B/W - 1), so the ranks' rows are disjoint slices and the position is the global batch's.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

enum class DataOrder { sequential, random };
DataOrder parse_data_order(const std::string& name);  // "sequential" or "random"; fails otherwise
const char* data_order_name(DataOrder order);

struct TokenLoader {
    int batch_size, seq_len, vocab_size;
    std::vector<std::string> shard_paths;  // empty when the tokens were given in memory
    std::vector<int64_t> shard_tokens;     // the token count of each shard (one entry for tokens in memory)
    std::vector<uint16_t> tokens;          // the current shard (sequential order, or tokens in memory)
    DataOrder order = DataOrder::sequential;
    uint64_t seed = 0;                     // random order: the stream of offsets
    int64_t shard_index = 0;               // sequential position: shard and token offset of the next window
    int64_t position = 0;
    int64_t batches_drawn = 0;             // random position: batches drawn so far
    std::vector<int> inputs, targets;      // (rows,T) the last batch: its rows first_row .. first_row + rows - 1
    int first_row = 0, rows = 0;

    // Shards matching a glob pattern. Every shard is read and checked here, before the first batch (checksum,
    // tokens < vocab_size, at least B*T+1 tokens: "<path>: no tokens" for none), and again whenever it is loaded;
    // the first stays loaded. (One extra pass over the data at the start.)
    TokenLoader(const std::string& pattern, int batch_size, int seq_len, int vocab_size);
    // One in-memory stream.
    TokenLoader(std::vector<uint16_t> stream, int batch_size, int seq_len, int vocab_size);

    // Switches to random order with this seed, at batch 0 (sequential order is the default of the loader).
    void use_random_order(uint64_t seed);
    void next_batch();
    // Keeps rank `rank`'s rows of every window of B rows split over `world_size` ranks; fails unless B is a
    // multiple of world_size (every rank then holds B / world_size rows, weighing alike).
    void keep_rank_rows(int rank, int world_size);
    void reset();  // back to the first batch
    void seek(int64_t shard_index, int64_t position);  // sequential order; fails outside the data
    void seek_batch(int64_t batches_drawn);            // random order; fails if negative

    // Random order: where row `row` of batch `batch` starts, as (shard, token offset). A pure function of
    // (seed, batch, row) and the shards' sizes.
    std::pair<int64_t, int64_t> random_start(int64_t batch, int row) const;

private:
    void load_shard(int64_t index);
    void read_window(int64_t shard, int64_t offset, int count, uint16_t* out);  // count tokens from (shard, offset)
    int64_t loaded_shard = -1;
};
