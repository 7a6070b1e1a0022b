// SeqLoRA (../shared/docs/METHODS.md section 4): one LoRA, trained on task after task with a fresh optimizer at
// each task (the loop resets it). Nothing protects old tasks: the lower bound.
#pragma once
#include "lora/method.h"

template <class Backend>
struct SeqLora : ContinualMethod<Backend> {
    using Context = ContinualContext<Backend>;
    std::string name() const override { return "seqlora"; }
    void task_start(Context& context) override {
        if (context.adapters.branches == 0) lora_add_branch(context.adapters, context.seed + 1, false);
    }
};
