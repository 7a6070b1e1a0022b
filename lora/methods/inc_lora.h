// IncLoRA (lora/METHODS.md section 4): a new branch per task, the old ones frozen, all summed with
// weight one (O-LoRA with lambda1 = 0). Old branches never change, but the new one can still overwrite what they
// did to the shared activations. At every task boundary it reports the branch diagnostics of lora/diagnostics.h
// (collision rates, orthogonality of the A's, cosine of the updates); O-LoRA and N-LoRA inherit both.
#pragma once
#include <memory>

#include "lora/continual.h"
#include "lora/diagnostics.h"
#include "lora/method.h"

template <class Backend>
struct IncLora : ContinualMethod<Backend> {
    using Context = ContinualContext<Backend>;
    void task_start(Context& context) override {
        lora_add_branch(context.adapters, context.seed + 1 + uint64_t(context.task), true);
    }
    Diagnostics diagnostics(Context& context) override { return branch_diagnostics(context.adapters); }
    // Nothing beside the adapters; the file must hold one branch per completed task, the last one trainable.
    void load_state(Context& context, const AdapterFile& file) override {
        expect_tasks_completed(file, context.task, context.tasks.size());
        expect_branches(file, context.task, context.task > 0 ? context.task - 1 : 0);
    }
};

// The newest branch of one adapted linear, as the regularisers of O-LoRA and N-LoRA see it. A_cat (R,in) and
// Bt_cat (R,out) stack the branches' rows: the k = (branches - 1) r rows of the earlier ones, then the new one's r.
template <class Backend>
struct NewBranch {
    using real = typename Backend::real;
    int k, r, in, out;
    const real* A_cat;       // (R,in): A_old = rows 0..k-1
    const real *A_t, *Bt_t;  // (r,in), (r,out)
    real *dA_t, *dBt_t;      // their gradients
};

// sum over the adapted linears of loss(NewBranch): a regulariser of the new branch, which adds its gradient.
template <class Backend, class Loss>
double sum_over_new_branches(LoraAdapters<Backend>& a, Loss loss) {
    const int r = a.config.rank, k = (a.branches - 1) * r;
    double sum = 0;
    for (const LoraSlot& s : a.slots) {
        const size_t A_t = s.A + size_t(k) * s.shape.in, Bt_t = s.Bt + size_t(k) * s.shape.out;
        sum += loss(NewBranch<Backend>{k, r, s.shape.in, s.shape.out, a.parameters + s.A, a.parameters + A_t,
                                       a.parameters + Bt_t, a.gradients + A_t, a.gradients + Bt_t});
    }
    return sum;
}

// `--method inclora`, a baseline (lora/method_info.h; registered in lora/methods/registry.h)
struct IncLoraMethod : MethodFactory<IncLora> {
    static inline const MethodInfo info{"inclora", true, {}};
};
