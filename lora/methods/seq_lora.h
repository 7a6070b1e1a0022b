// SeqLoRA (lora/METHODS.md section 4): one LoRA, trained on task after task with a fresh optimizer at
// each task (the loop resets it). Nothing protects old tasks: the lower bound.
#pragma once
#include <memory>

#include "lora/continual.h"
#include "lora/method.h"

template <class Backend>
struct SeqLora : ContinualMethod<Backend> {
    using Context = ContinualContext<Backend>;
    void task_start(Context& context) override {
        if (context.adapters.branches == 0) lora_add_branch(context.adapters, context.seed + 1, false);
    }
    // Nothing beside the adapters; the file must hold the one trainable branch of context.task completed tasks.
    void load_state(Context& context, const AdapterFile& file) override {
        expect_tasks_completed(file, context.task, context.tasks.size());
        expect_branches(file, context.task > 0 ? 1 : 0, 0);
    }
};

// `--method seqlora`, a baseline (lora/method_info.h; registered in lora/methods/registry.h)
struct SeqLoraMethod : MethodFactory<SeqLora> {
    static inline const MethodInfo info{"seqlora", true, {}};
};
