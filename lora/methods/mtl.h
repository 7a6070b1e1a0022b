// MTL (lora/METHODS.md section 4): one LoRA trained jointly on the union of the tasks. Not continual:
// the upper bound. So that it fills an accuracy matrix like the others, stage t trains on the union of tasks 1..t
// from the base adapters: at every task start the LoRA is re-initialised exactly as at the run's start (the same
// seed as SeqLoRA's first branch, lora_reinitialize), and the loop gives it a fresh optimizer. So row t of its
// matrix is a true multi-task upper bound for the tasks seen so far, independent of what earlier stages trained (a
// stage continuing the previous one would train the early tasks longer than the late ones); the last row is joint
// training on every task. A resumed run re-initialises the same way, so it ends bit-identical.
// On the synthetic benchmark at its preset lr 3e-3 joint training from fresh adapters learns the tasks together
// poorly (stage 2 of 2: 27% / 21%; 4 tasks: AA 5.2), where stages continuing the previous one learned them all (AA
// 99.5); at lr 1e-3 stage 2 reaches 99% / 93% (test/test_continual.cpp). The tasks differ only in the task word.
#pragma once
#include "lora/methods/seq_lora.h"

template <class Backend>
struct Mtl : SeqLora<Backend> {
    using Context = ContinualContext<Backend>;
    void task_start(Context& context) override { lora_reinitialize(context.adapters, context.seed + 1); }
    std::vector<const EncodedExample*> training_examples(Context& context) override {
        std::vector<const EncodedExample*> rows;
        for (int t = 0; t <= context.task; t++)
            for (const EncodedExample& e : context.tasks[t].train) rows.push_back(&e);
        return rows;
    }
};

// `--method mtl`, a baseline (lora/method_info.h; registered in lora/methods/registry.h)
struct MtlMethod : MethodFactory<Mtl> {
    static inline const MethodInfo info{"mtl", true, {}};
};
