// Replay / ER (lora/METHODS.md section 4): SeqLoRA plus a reservoir buffer (Vitter's algorithm R over
// the whole stream of training examples, default 500). Each step trains on the current batch plus an equal-size
// batch drawn from the buffer; the loss is the mean of the two batches' losses. A task's examples enter the buffer
// when the task ends, so replay during task t draws from tasks 1..t-1 (task 1 trains alone). Its capacity is
// `--replay-size` (ContinualOptions::replay_size, which I-LoRA's buffer shares).
#pragma once
#include "data/replay_buffer.h"
#include "lora/methods/seq_lora.h"

template <class Backend>
struct Replay : SeqLora<Backend> {
    using Context = ContinualContext<Backend>;
    ReplayBuffer buffer;
    explicit Replay(size_t capacity, uint64_t seed) : buffer(capacity, seed) {}

    void extend_batch(Context&, std::vector<std::vector<const EncodedExample*>>& groups, uint64_t step_seed) override {
        if (buffer.size() == 0) return;
        Random random(step_seed);
        groups.push_back(buffer.sample(int(groups[0].size()), random));
    }
    void task_end(Context& context) override {
        for (const EncodedExample& e : context.tasks[context.task].train) buffer.offer(e);
    }
    // The buffer is not saved: it is rebuilt by offering the completed tasks again, in order, which makes the
    // same reservoir decisions (the buffer's random stream depends only on its seed and the offers).
    void load_state(Context& context, const AdapterFile& file) override {
        SeqLora<Backend>::load_state(context, file);  // tasks_completed == context.task <= the tasks of the order
        for (int t = 0; t < file.tasks_completed; t++)
            for (const EncodedExample& e : context.tasks[t].train) buffer.offer(e);
    }
    Diagnostics diagnostics(Context&) override { return {{"replay_buffer_size", double(buffer.size())}}; }
};

// `--method replay`, a baseline (lora/method_info.h; registered in lora/methods/registry.h)
struct ReplayMethod {
    static inline const MethodInfo info{"replay", true, {}};
    template <class Backend>
    static auto make(const ContinualOptions& options) {
        return std::make_unique<Replay<Backend>>(size_t(options.replay_size), options.seed + 7);
    }
};
