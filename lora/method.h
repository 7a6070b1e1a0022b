// The interface every continual-learning method implements (one file each under lora/methods/). The task loop
// (lora/continual.cpp) owns the model, the adapters, the data and the optimizer steps, and calls the method
// at the points where methods differ:
//
//   for each task t:   task_start           add a branch, reset state, collect statistics ...
//     for each epoch:  training_examples    what the epochs run over (the task; MTL: every task so far)
//       each batch:    extend_batch         extra row groups (Replay: a replay batch), each weighing as much
//                      before_forward       per-row branch weights (gates) for the rows about to run
//                      (forward of the cross-entropy)
//                      before_backward      a loss on the hidden states (I-LoRA: model.extra_dlnf)
//                      (backward)
//                      extra_loss           add a regulariser's gradient; returns its value
//                      (clip over every trained tensor, AdamW)
//                      after_step           projections, EMA ...
//   task_end                                extend bases, fill the replay buffer ...
//   evaluation:        before_forward       per-row weights for the test prompts (task-agnostic: no task id)
//   diagnostics                             numbers for the metrics file at the task boundary
//   save_state / load_state                 what the method keeps beside the adapters, for resume
//
// Data parallelism (mpirun / srun, model/distributed.h). Every rank runs every hook, in the same order, on the
// same parameters; the steps differ only in the rows:
//   - extend_batch sees the step's global groups (identical on every rank: sample from the step seed, keep
//     buffers by the same reservoir decisions everywhere). The loop then gives each rank its slice of every
//     group; before_forward, the forward and the backward see only the rank's rows (context.batch, and
//     context.group_rows: how many of them each group holds; a rank left without rows gets one row of weight 0).
//     The loss weights are the global batch's, and the backward divides by the global weight sum.
//   - after the backward the loop sums the adapters' gradients over the ranks; extra_loss then adds a
//     regulariser's gradient (a function of the parameters alone: the same on every rank, added once).
//   - a method with data-dependent state sums it over the ranks itself, with sum_over_ranks[_host] (below):
//     gradients of its own trained tensors (GainLoRA's gates: in extra_loss, once complete, before the norm), a
//     data-dependent loss or its normaliser (I-LoRA), statistics (GainLoRA's covariances, before the
//     eigendecomposition).
//   - every call to them must be made by every rank (collectives): condition it on global state only.
// In a single process they do nothing.
#pragma once
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "data/cl_batches.h"
#include "lora/adapter_file.h"
#include "lora/continual.h"
#include "model/lora_adapters.h"
#include "lora/task_metrics.h"
#include "model/distributed.h"
#include "model/gpt2.h"

// One task of a run, tokenized: its examples as model input, and the answers as text for exact match.
struct EncodedTask {
    std::string name;
    std::vector<EncodedExample> train, test;
    std::vector<std::string> test_prompts, test_answers;  // (test.size()) the prompts' text, the reference answers
    TaskMetric metric = TaskMetric::exact_match;  // how a generated answer is scored (lora/task_metrics.h)
};

// What the methods see of the run.
template <class Backend>
struct ContinualContext {
    GPT2<Backend>& model;
    LoraAdapters<Backend>& adapters;
    const std::vector<EncodedTask>& tasks;  // the whole order
    int task = 0;                           // the current task (0-based)
    uint64_t seed = 0;                      // the run's seed
    const TrainingBatch* batch = nullptr;   // the current training step's batch (rows of every group), or null
    int step = 0;                           // optimizer steps done in the current task
    std::vector<int> group_rows = {};       // rows of each group of the step's batch held by this rank
};

// Sums values (count, backend memory) element-wise over every rank, in place: NCCL on the GPU, MPI on the CPU.
template <class Backend>
void sum_over_ranks(ContinualContext<Backend>&, typename Backend::real* values, size_t count, const char* what) {
    Backend::all_reduce_sum(values, count, what);
}
// The same for host values (counts, losses, statistics gathered on the host).
inline void sum_over_ranks_host(double* values, size_t count, const char* what) {
    all_reduce_sum_host(values, count, what);
}

// Diagnostics of a task boundary: (name, value) pairs, written to the metrics file and printed.
using Diagnostics = std::vector<std::pair<std::string, double>>;

template <class Backend>
struct ContinualMethod {
    using Context = ContinualContext<Backend>;
    virtual ~ContinualMethod() = default;

    virtual void task_start(Context&) {}
    // The examples task t's epochs run over; by default the task's training set.
    virtual std::vector<const EncodedExample*> training_examples(Context& context) {
        std::vector<const EncodedExample*> rows;
        for (const EncodedExample& e : context.tasks[context.task].train) rows.push_back(&e);
        return rows;
    }
    // Appends row groups to the step's batch: groups[0] is the current batch; the loss is the mean of the groups'
    // mean losses. step_seed makes any sampling reproducible.
    virtual void extend_batch(Context&, std::vector<std::vector<const EncodedExample*>>& /*groups*/,
                              uint64_t /*step_seed*/) {}
    // Called before every forward over rows of these prompts (training and evaluation).
    virtual void before_forward(Context&, const std::vector<const EncodedExample*>& /*rows*/, int /*T*/) {}
    // After the forward, before the backward: the model's activations are the step's (I-LoRA sets extra_dlnf).
    virtual void before_backward(Context&) {}
    // Adds the gradient of a regulariser to the trained tensors; returns its value (0: none).
    virtual double extra_loss(Context&) { return 0; }
    // Trained tensors beyond the adapters (gates, attention...): their squared gradient norm and their AdamW step.
    virtual double extra_gradient_sum_of_squares(Context&) { return 0; }
    virtual void extra_update(Context&, const AdamWSettings&, int /*t*/, float /*grad_scale*/) {}
    virtual void after_step(Context&) {}
    virtual void task_end(Context&) {}
    virtual Diagnostics diagnostics(Context&) { return {}; }
    virtual void save_state(Context&, AdapterFile&) {}
    virtual void load_state(Context&, const AdapterFile&) {}
};

// The factory of a method class built from the run's options alone: Class<Backend>(options) when it takes them,
// else Class<Backend>(options.method) when it takes its method options, else Class<Backend>(). A method file's
// <Name>Method derives from it (lora/method_info.h), or writes its own make where the class needs more.
template <template <class> class Class>
struct MethodFactory {
    template <class Backend>
    static std::unique_ptr<ContinualMethod<Backend>> make(const ContinualOptions& options) {
        if constexpr (std::is_constructible_v<Class<Backend>, const ContinualOptions&>)
            return std::make_unique<Class<Backend>>(options);
        else if constexpr (std::is_constructible_v<Class<Backend>, const MethodOptions&>)
            return std::make_unique<Class<Backend>>(options.method);
        else
            return std::make_unique<Class<Backend>>();
    }
};
