// A training step's rows and this rank's slice of them (lora/step_batch.h).
#include "lora/step_batch.h"

#include <algorithm>

#include "model/distributed.h"

TrainingBatch make_step_batch(const std::vector<std::vector<const EncodedExample*>>& groups, int max_T,
                              std::vector<const EncodedExample*>& all_rows) {
    all_rows.clear();
    for (const auto& group : groups) all_rows.insert(all_rows.end(), group.begin(), group.end());
    TrainingBatch batch = make_training_batch(all_rows, max_T);
    size_t row = 0;
    for (const auto& group : groups) {
        double count = 0;
        for (size_t r = row; r < row + group.size(); r++)
            for (int t = 0; t < batch.T; t++) count += batch.loss_weights[r * batch.T + t];
        for (size_t r = row; r < row + group.size(); r++)
            for (int t = 0; t < batch.T; t++)
                batch.loss_weights[r * batch.T + t] *= float(count > 0 ? 1.0 / (groups.size() * count) : 0.0);
        row += group.size();
    }
    return batch;
}

TrainingBatch take_rank_rows(const TrainingBatch& global, const std::vector<std::vector<const EncodedExample*>>& groups,
                             const std::vector<const EncodedExample*>& all_rows,
                             std::vector<const EncodedExample*>& rows, std::vector<int>& group_rows,
                             size_t& first_row) {
    const Distributed& d = distributed();
    const RankSlice slice = rank_slice(size_t(global.B), d.rank, d.world_size);
    const bool empty = slice.count == 0;
    first_row = empty ? 0 : slice.first;
    const size_t count = empty ? 1 : slice.count, T = size_t(global.T);
    TrainingBatch local;
    local.B = int(count), local.T = global.T;
    local.inputs.assign(global.inputs.begin() + first_row * T, global.inputs.begin() + (first_row + count) * T);
    local.targets.assign(global.targets.begin() + first_row * T, global.targets.begin() + (first_row + count) * T);
    local.loss_weights.assign(global.loss_weights.begin() + first_row * T,
                              global.loss_weights.begin() + (first_row + count) * T);
    if (empty) std::fill(local.loss_weights.begin(), local.loss_weights.end(), 0.0f);
    rows.assign(all_rows.begin() + first_row, all_rows.begin() + first_row + count);
    group_rows.clear();
    size_t group_first = 0;
    for (const auto& group : groups) {  // |[group_first, + size) intersected with the slice|
        const size_t begin = std::max(group_first, slice.first);
        const size_t end = std::min(group_first + group.size(), slice.first + slice.count);
        group_rows.push_back(int(end > begin ? end - begin : 0));
        group_first += group.size();
    }
    return local;
}
