// Data-parallel steps over model/distributed.h's ranks, for both backends. Each rank runs the forward and the
// backward on its slice of the step's global batch; then
//   gpt2_global_loss        the loss of the global batch: weight * loss and the weights summed over the ranks.
//                           It also makes model.weight_sum the global one, which the backward divides by, so the
//                           gradients of the ranks add up to the gradient of the global batch's weighted mean loss
//                           (a masked loss weighs answer tokens over the whole batch, not over each rank's rows)
//   gpt2_sum_gradients      the parameter gradients summed over the ranks (NCCL on the GPU, MPI on the CPU),
//                           before the norm, the clipping and AdamW, which are then identical on every rank
// In a process without a launcher both are no-ops: the single-process run is unchanged.
#pragma once
#include <cstdint>
#include <vector>

#include "model/distributed.h"
#include "model/gpt2.h"

// Call after gpt2_forward with targets, before gpt2_backward.
template <class Backend>
void gpt2_global_loss(GPT2<Backend>& model) {
    if (!distributed().launched) return;
    double sums[2] = {model.weighted_loss_sum, model.weight_sum};
    all_reduce_sum_host(sums, 2, "the loss and its weight sum");
    model.weighted_loss_sum = sums[0];
    model.weight_sum = sums[1];
    model.mean_loss = sums[1] > 0 ? float(sums[0] / sums[1]) : 0.0f;
}

// Call after gpt2_backward, before gpt2_update.
template <class Backend>
void gpt2_sum_gradients(GPT2<Backend>& model) {
    model.require_gradients("sum_gradients");
    Backend::all_reduce_sum(model.gradients_memory, model.num_parameters, "the parameter gradients");
}

// FNV-1a over the values' bytes: the parameters of every rank must hash alike (check_same_on_all_ranks).
inline unsigned long long checksum(const std::vector<float>& values) {
    uint64_t hash = 1469598103934665603ULL;
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(values.data());
    for (size_t i = 0; i < values.size() * sizeof(float); i++) hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}
