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
struct IncLora;

// `--method inclora`, a baseline (lora/method_info.h; registered in lora/methods/registry.h)
struct IncLoraMethod {
    static inline const MethodInfo info{"inclora", true, {}};
    template <class Backend>
    static auto make(const ContinualOptions&) { return std::make_unique<IncLora<Backend>>(); }
};

template <class Backend>
struct IncLora : ContinualMethod<Backend> {
    using Context = ContinualContext<Backend>;
    std::string name() const override { return IncLoraMethod::info.name; }
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
