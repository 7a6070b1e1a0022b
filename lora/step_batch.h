// A training step's rows (lora/continual.cpp): the batch of its row groups (the task's batch, and what a method
// adds: Replay's replayed rows ...), and under data parallelism (model/distributed.h) this rank's slice of it.
#pragma once
#include <cstddef>
#include <vector>

#include "data/cl_batches.h"

// The step's batch: the groups' rows one after another; each group's answer tokens weigh 1 / (groups * its
// answer-token count), so the weighted mean loss is the mean over groups of each group's mean loss. all_rows gets
// the groups' rows in that order.
TrainingBatch make_step_batch(const std::vector<std::vector<const EncodedExample*>>& groups, int max_T,
                              std::vector<const EncodedExample*>& all_rows);

// Data parallelism: this rank's rows of the step's global batch, a contiguous slice (rank_slice) with the global
// T and loss weights; rows gets their examples, group_rows how many of each group's rows the slice holds, and
// first_row the global index of its first row (for the dropout masks). A rank left without rows (a global batch
// smaller than the world) gets the first row at weight 0: it runs the same hooks and collectives, adding nothing.
TrainingBatch take_rank_rows(const TrainingBatch& global, const std::vector<std::vector<const EncodedExample*>>& groups,
                             const std::vector<const EncodedExample*>& all_rows,
                             std::vector<const EncodedExample*>& rows, std::vector<int>& group_rows,
                             size_t& first_row);
