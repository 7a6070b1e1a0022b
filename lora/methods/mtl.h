// MTL (../shared/docs/METHODS.md section 4): one LoRA trained jointly on the union of the tasks. Not continual:
// the upper bound. So that it fills an accuracy matrix like the others, stage t trains (continuing the same LoRA,
// fresh optimizer) on the union of tasks 1..t; the last row is joint training on every task.
#pragma once
#include "lora/methods/seq_lora.h"

template <class Backend>
struct Mtl : SeqLora<Backend> {
    using Context = ContinualContext<Backend>;
    std::string name() const override { return "mtl"; }
    std::vector<const EncodedExample*> training_examples(Context& context) override {
        std::vector<const EncodedExample*> rows;
        for (int t = 0; t <= context.task; t++)
            for (const EncodedExample& e : context.tasks[t].train) rows.push_back(&e);
        return rows;
    }
};
