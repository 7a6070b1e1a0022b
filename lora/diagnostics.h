// Diagnostics of the per-task branches (lora/METHODS.md section 3), computed on the host from the adapters'
// parameters (LoraAdapters::parameters_to_host, layout in model/lora_adapters.h) at a task boundary. For every
// adapted linear (slot) with branches i = 0..t-1 of rank r: A_i = rows i*r .. i*r+r-1 of A (R,in), Bt_i the same
// rows of Bt (R,out), B_i = Bt_i^T (out,r), and the branch's update DW_i = s B_i A_i (out,in), s = alpha / r.
// For every pair i < j of one slot:
//   collision_<tau>   the fraction of the out*in entries where both |DW_i| and |DW_j| exceed
//                     tau * max(max |DW_i|, max |DW_j|); tau in {1e-3, 1e-2, 1e-1}    (N-LoRA's collision rate)
//   orthogonality_A   ||A_i A_j^T||_F^2                                                 (O-LoRA's measure)
//   update_cosine     |<DW_i, DW_j>_F| / (||DW_i||_F ||DW_j||_F), 0 when either is 0
// Reported: the collision rates and update_cosine averaged over every (slot, pair); orthogonality_A summed over
// them. Nothing with fewer than two branches (no pair). Computed in double.
#pragma once
#include <vector>

#include "model/lora_adapters.h"
#include "lora/method.h"

// The thresholds of the collision rate, as fractions of the pair's largest |DW| entry.
inline const double COLLISION_TAUS[] = {1e-3, 1e-2, 1e-1};

// parameters: (num_parameters) in the layout of `slots` for `branches` branches of rank `rank`; scale = alpha / r.
Diagnostics branch_diagnostics(const std::vector<float>& parameters, const std::vector<LoraSlot>& slots,
                               int branches, int rank, double scale);

template <class Backend>
Diagnostics branch_diagnostics(const LoraAdapters<Backend>& adapters) {
    if (adapters.branches < 2) return {};
    return branch_diagnostics(adapters.parameters_to_host(), adapters.slots, adapters.branches,
                              adapters.config.rank, adapters.config.scale());
}
