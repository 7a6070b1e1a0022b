// I-LoRA (lora/METHODS.md section 8): interpolation between a fast and a slow adapter, with replay.
//
// One fast adapter theta_w (the run's adapters: a single branch created at task 1, every row trainable, kept across
// tasks as SeqLoRA) and a slow adapter theta_l of the same shape, owned here and never trained by gradient:
//   at creation          theta_l = theta_w
//   after every step     theta_l <- lambda theta_l + (1 - lambda) theta_w          lambda = --ilora-ema (0.95)
//   evaluation           with theta_l (--ilora-eval slow, the default) or theta_w (--ilora-eval fast); no task id
// lambda: the paper's 0.99 (METHODS.md; the official code, which47/LLMCL method/ILORA.py, caps it at ema_alpha =
// 0.25 and, its adapter names never matching, never updates theta_l) is a time constant of tau = 1 / (1 - lambda) =
// 100 steps, meant for thousands of steps per task. The study trains ~125 steps per task (500 examples, batch 8, 2
// epochs), after which 0.99^125 = 28% of theta_l is still its value at the task's start. The default takes a time
// constant of a tenth to a fifth of a task's steps: tau = 20 steps (a sixth of 125), lambda = 1 - 1/20 = 0.95
// (0.95^125 = 0.2%): theta_l reaches the task's end and averages its last ~20 steps. Measured on the synthetic benchmark at 2 epochs (126 steps per
// task, 4 tasks, seed 1337): AA 18.8 at 0.99 (the slow adapter never catches up: diagonal 13), 34.2 at 0.97, 40.2
// at 0.95, 45.5 at 0.93, 40.0 at 0.9; at its default 6 epochs (375 steps) 81.8 at 0.99 and 78.0 at 0.95.
// Each step of task t > 1 trains on the current batch plus an equal-size batch drawn from a reservoir buffer:
//   loss = (CE_cur + CE_replay) / 2 + gamma L_cons                                 gamma = --ilora-gamma (1.0)
//   L_cons = 1 / (count C) sum_{n in replay positions} sum_c (h_fast[n,c] - h_slow[n,c])^2
// h (B,T,C) = the final hidden states after the last layer norm (acts.lnf) of the fast model and of the slow one
// (the same base with theta_l, no gradient) on the same batch; the sum runs over the replay rows' real positions
// (prompt and answer; padding, the positions past a row's training_length, excluded), count of them.
// Task 1 trains on CE_cur alone (no replay group, no L_cons).
//
// LoRA dropout: the slow forward of a training step uses the very dropout masks of the step's fast forward, so that
// h_fast - h_slow is the effect of theta_w - theta_l alone. (A slow forward without dropout makes L_cons penalise
// the dropout noise itself: on the synthetic benchmark, with dropout 0.1 and gamma 1, the fast adapter then keeps
// 34% of task 1 after task 2 instead of 100%.) The loop sets the step's dropout seed before before_forward, which
// takes it for the slow forward; before_backward checks that the fast forward used the same. Evaluation: no dropout.
//
// The gradient of gamma L_cons reaches the fast adapter through the model's backward: with w[n] = gamma / (count C)
// on those positions (0 elsewhere), dL/d lnf[n,c] = 2 w[n] (h_fast - h_slow) is handed to gpt2_backward as
// model.extra_dlnf and added there to the cross-entropy's d lnf (lora/cpu/consistency.h, lora/cuda/consistency.cu).
//
// Per step (the hooks of lora/method.h, in the loop's order):
//   extend_batch     the replay group (task t > 1)
//   before_forward   training: the slow model's forward on the whole step batch (model.lora pointed at theta_l for
//                    it), lnf copied to h_slow, model.lora back to theta_w for the loop's forward; the row weights.
//                    evaluation (no batch): model.lora = theta_l or theta_w per --ilora-eval
//   before_backward  dlnf and the rows' losses from acts.lnf (the fast forward's) and h_slow; model.extra_dlnf
//   extra_loss       gamma L_cons (its gradient is already in the adapters' gradients)
//   after_step       the EMA
// The slow forward runs over the current rows too (their weights are 0): the step's batch as it is, so both forwards
// share the model's activation buffers without reallocating them, at the cost of the current rows' slow forward.
//
// The replay buffer (data/replay_buffer.h, Vitter's algorithm R, --replay-size examples) covers the whole stream,
// the current task included: at task_start every training example of the task is offered, in file order, so
// replay during task t draws from tasks 1..t, task t with its end-of-task share from its first step on. (Offering
// each batch as it trains would tie the buffer to the epoch shuffles; offering the whole task in file order is a
// function of the tasks alone, so a resumed run rebuilds the buffer exactly by offering the completed tasks again,
// in order, in load_state.) The slow adapter's parameters are saved in the adapter file as "ilora/slow".
// Diagnostics at each task boundary: ||theta_w - theta_l||_2, the task's mean gamma L_cons, the buffer's size.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>

#include "data/replay_buffer.h"
#include "lora/cpu/consistency.h"
#include "lora/continual.h"
#include "lora/method.h"
#include "lora/method_options.h"
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "lora/cuda/consistency_kernels.h"

// I-LoRA's kernels of one backend, as the model's come from model/backend_*.h: one specialisation per backend, the
// same names and arguments, pointers in the backend's memory. Shapes and math: lora/cpu/consistency.h.
template <class Backend>
struct ConsistencyKernels;

// the CPU reference (lora/cpu/consistency.h)
template <typename Real>
struct ConsistencyKernels<CpuBackend<Real>> {
    using real = Real;
    // dh (N,C) = 2 w[n] (h_fast - h_slow); row_losses (N) = w[n] sum_c (h_fast - h_slow)^2
    static void consistency_loss(real* dh, real* row_losses, const real* h_fast, const real* h_slow,
                                 const real* row_weights, int N, int C) {
        cpu::consistency_loss(dh, row_losses, h_fast, h_slow, row_weights, N, C);
    }
    // slow (count) = lambda slow + (1 - lambda) fast
    static void ema_update(real* slow, const real* fast, size_t count, real lambda) {
        cpu::ema_update(slow, fast, count, lambda);
    }
    // destination (count) = source (count), in backend memory
    static void copy(real* destination, const real* source, size_t count) {
        std::copy(source, source + count, destination);
    }
};

// the GPU kernels (lora/cuda/consistency.cu)
template <>
struct ConsistencyKernels<CudaBackend> {
    using real = float;
    static void consistency_loss(real* dh, real* row_losses, const real* h_fast, const real* h_slow,
                                 const real* row_weights, int N, int C) {
        cuda::consistency_loss(dh, row_losses, h_fast, h_slow, row_weights, N, C);
    }
    static void ema_update(real* slow, const real* fast, size_t count, real lambda) {
        cuda::ema_update(slow, fast, count, lambda);
    }
    static void copy(real* destination, const real* source, size_t count) {
        cuda::copy_on_device(destination, source, count);
    }
};

template <class Backend>
struct ILora : ContinualMethod<Backend> {
    using Context = ContinualContext<Backend>;
    using real = typename Backend::real;
    using Kernels = ConsistencyKernels<Backend>;

    float ema;            // lambda
    float gamma;          // weight of L_cons
    bool evaluate_slow;   // evaluate with theta_l (else theta_w)
    ReplayBuffer buffer;
    std::unique_ptr<LoraAdapters<Backend>> slow;  // theta_l: same configuration and branches as the fast adapters

    // the current step
    int current_rows = 0, replay_rows = 0;  // the batch's rows: [0, current_rows) current, then replay_rows replayed
    bool consistency_step = false;          // the slow forward ran: h_slow and row_weights hold this step's values
    uint64_t slow_dropout_seed = 0;         // the dropout seed of the step's slow forward
    double consistency = 0;                 // gamma L_cons of the step
    // backend buffers, grown to the largest step (N = B*T rows of C channels)
    size_t capacity_rows = 0;
    real* h_slow = nullptr;       // (N,C) the slow model's lnf
    real* dlnf = nullptr;         // (N,C) d(gamma L_cons)/d lnf, handed to the backward as model.extra_dlnf
    real* row_weights = nullptr;  // (N) gamma / (count C) on the replay rows' real positions, 0 elsewhere
    real* row_losses = nullptr;   // (N) each position's share of gamma L_cons
    std::vector<real> host_row_weights;
    std::vector<real> host_row_losses;
    // per task, for the diagnostics
    double consistency_sum = 0;
    int consistency_steps = 0;

    ILora(const MethodOptions& options, size_t replay_capacity, uint64_t replay_seed)
        : ema(options.ilora_ema), gamma(options.ilora_gamma), evaluate_slow(options.ilora_eval != "fast"),
          buffer(replay_capacity, replay_seed) {
        if (!(ema >= 0 && ema <= 1)) fail("ilora: --ilora-ema must be in [0, 1], got " + std::to_string(ema));
        if (!(gamma >= 0) || !std::isfinite(gamma))
            fail("ilora: --ilora-gamma must be finite and >= 0, got " + std::to_string(gamma));
        if (options.ilora_eval != "slow" && options.ilora_eval != "fast")
            fail("ilora: --ilora-eval must be slow or fast, got '" + options.ilora_eval + "'");
    }
    ILora(const ILora&) = delete;
    ILora& operator=(const ILora&) = delete;
    ~ILora() override { release_buffers(); }


    void task_start(Context& context) override {
        LoraAdapters<Backend>& fast = context.adapters;
        if (fast.branches == 0) lora_add_branch(fast, context.seed + 1, false);
        if (!slow) {  // theta_l = theta_w, exactly (a copy in backend memory, whatever the backend's precision)
            make_slow(fast, fast.branches, fast.parameters_to_host());
            Kernels::copy(slow->parameters, fast.parameters, fast.num_parameters);
        }
        context.model.lora = &fast;
        for (const EncodedExample& e : context.tasks[context.task].train) buffer.offer(e);
        consistency_sum = 0, consistency_steps = 0;
    }

    void extend_batch(Context& context, std::vector<std::vector<const EncodedExample*>>& groups,
                      uint64_t step_seed) override {
        current_rows = int(groups[0].size());
        replay_rows = 0;
        if (context.task == 0 || buffer.size() == 0) return;  // task 1: CE_cur only
        Random random(step_seed);
        groups.push_back(buffer.sample(current_rows, random));
        replay_rows = int(groups.back().size());
    }

    void before_forward(Context& context, const std::vector<const EncodedExample*>& rows, int T) override {
        GPT2<Backend>& model = context.model;
        consistency_step = false;
        if (!context.batch) {  // evaluation: the adapter --ilora-eval names
            if (slow) slow->training = false;
            model.lora = evaluate_slow && slow ? slow.get() : &context.adapters;
            return;
        }
        model.lora = &context.adapters;  // the loop's training forward: theta_w
        if (replay_rows == 0 || gamma == 0 || !slow) return;
        const TrainingBatch& batch = *context.batch;
        // this rank's rows (all of them in a single process): its current rows, then its replayed ones
        const int current = context.group_rows.empty() ? current_rows : context.group_rows[0];
        const int replayed = context.group_rows.size() > 1 ? context.group_rows[1] : replay_rows;
        if (current + replayed > int(rows.size()) || batch.B != int(rows.size()) || batch.T != T)
            fail("ilora: the step's batch has " + std::to_string(batch.B) + " rows, " + std::to_string(current) +
                 " current and " + std::to_string(replayed) + " replayed expected");
        const int B = batch.B, C = model.config.channels, N = B * T;

        // the slow model's forward on the same batch, with the fast forward's dropout masks (no targets: no loss)
        slow_dropout_seed = context.adapters.dropout_seed;  // the step's, set by the loop
        slow->training = true;
        slow->dropout_seed = slow_dropout_seed;
        slow->dropout_first_row = context.adapters.dropout_first_row;  // data parallelism: the same masks
        slow->block_weights = nullptr;
        model.lora = slow.get();
        gpt2_forward(model, batch.inputs.data(), nullptr, nullptr, B, T);
        slow->training = false;
        model.lora = &context.adapters;
        ensure_buffers(size_t(N), C);
        Kernels::copy(h_slow, model.acts.lnf, size_t(N) * C);  // h_slow (N,C) = lnf (B,T,C)

        // w[n] = gamma / (count C) at the replay rows' real positions t < min(training_length, T); 0 elsewhere
        host_row_weights.assign(size_t(N), real(0));
        double count = 0;
        for (int b = current; b < current + replayed; b++) count += double(std::min(training_length(*rows[b]), T));
        sum_over_ranks_host(&count, 1, "I-LoRA's replay positions");  // L_cons is a mean over the global batch
        if (count == 0) return;
        const real w = real(double(gamma) / (count * C));
        for (int b = current; b < current + replayed; b++)
            for (int t = 0; t < std::min(training_length(*rows[b]), T); t++) host_row_weights[size_t(b) * T + t] = w;
        Backend::upload(row_weights, host_row_weights.data(), size_t(N));
        consistency_step = true;
    }

    void before_backward(Context& context) override {
        consistency = 0;
        if (!consistency_step) return;
        GPT2<Backend>& model = context.model;
        const int N = model.batch_size * model.seq_len, C = model.config.channels;
        if (size_t(N) > capacity_rows || size_t(N) != host_row_weights.size())
            fail("ilora: the forward's shape changed between the slow and the fast forward");
        const LoraAdapters<Backend>& fast = context.adapters;
        if (fast.training && fast.config.dropout > 0 && fast.dropout_seed != slow_dropout_seed)
            fail("ilora: the fast forward's dropout seed is not the one the slow forward used (the dropout seed "
                 "changed between before_forward and the forward)");
        // dlnf (N,C) = 2 w (h_fast - h_slow); gamma L_cons = sum_n row_losses[n] (in order: deterministic)
        Kernels::consistency_loss(dlnf, row_losses, model.acts.lnf, h_slow, row_weights, N, C);
        host_row_losses.resize(size_t(N));
        Backend::download(host_row_losses.data(), row_losses, size_t(N));
        for (int n = 0; n < N; n++) consistency += double(host_row_losses[n]);
        sum_over_ranks_host(&consistency, 1, "I-LoRA's consistency loss");
        model.extra_dlnf = dlnf;
        consistency_sum += consistency;
        consistency_steps++;
    }

    // gamma L_cons; its gradient went into the adapters' gradients through extra_dlnf in the backward
    double extra_loss(Context&) override { return consistency; }

    void after_step(Context& context) override {
        consistency_step = false;
        LoraAdapters<Backend>& fast = context.adapters;
        if (!slow || slow->num_parameters != fast.num_parameters)
            fail("ilora: the slow adapter does not match the fast one");
        // theta_l = lambda theta_l + (1 - lambda) theta_w
        Kernels::ema_update(slow->parameters, fast.parameters, fast.num_parameters, real(ema));
    }

    Diagnostics diagnostics(Context& context) override {
        Diagnostics d;
        if (slow) d.push_back({"ilora_fast_slow_distance", fast_slow_distance(context.adapters)});
        d.push_back({"ilora_consistency_loss", consistency_steps ? consistency_sum / consistency_steps : 0.0});
        d.push_back({"replay_buffer_size", double(buffer.size())});
        return d;
    }

    // ||theta_w - theta_l||_2 over every parameter of the adapters
    double fast_slow_distance(const LoraAdapters<Backend>& fast) const {
        const std::vector<float> w = fast.parameters_to_host(), l = slow->parameters_to_host();
        double sum = 0;
        for (size_t i = 0; i < w.size() && i < l.size(); i++) sum += (double(w[i]) - l[i]) * (double(w[i]) - l[i]);
        return std::sqrt(sum);
    }

    void save_state(Context&, AdapterFile& file) override {
        if (slow) file.set("ilora/slow", slow->parameters_to_host());
    }

    // The slow adapter from the file; the buffer rebuilt by offering the completed tasks again, in order, as
    // task_start did (its decisions depend only on its seed and the offers).
    void load_state(Context& context, const AdapterFile& file) override {
        expect_tasks_completed(file, context.task, context.tasks.size());  // bounds the offers below
        expect_branches(file, context.task > 0 ? 1 : 0, 0);                // the one fast branch, all trainable
        make_slow(context.adapters, file.branches, file.tensor("ilora/slow"));
        for (int t = 0; t < file.tasks_completed; t++)
            for (const EncodedExample& e : context.tasks[t].train) buffer.offer(e);
    }

private:
    void make_slow(const LoraAdapters<Backend>& fast, int branches, const std::vector<float>& values) {
        slow = std::make_unique<LoraAdapters<Backend>>(fast.model_config, fast.config);
        slow->resize(branches, values);
        slow->first_trainable = branches;  // nothing trains by gradient
        slow->training = false;
    }

    void ensure_buffers(size_t N, int C) {
        if (N <= capacity_rows) return;
        release_buffers();
        h_slow = Backend::template allocate<real>(N * C);
        dlnf = Backend::template allocate<real>(N * C);
        row_weights = Backend::template allocate<real>(N);
        row_losses = Backend::template allocate<real>(N);
        capacity_rows = N;
    }
    void release_buffers() {
        for (real* p : {h_slow, dlnf, row_weights, row_losses}) Backend::release(p);
        h_slow = dlnf = row_weights = row_losses = nullptr;
        capacity_rows = 0;
    }
};

// `--method ilora` and its flags (lora/method_info.h; registered in lora/methods/registry.h). Its replay buffer
// holds `--replay-size` examples, as Replay's.
struct ILoraMethod {
    static inline const MethodInfo info{
        "ilora", false,
        {real_option("ilora-ema", &MethodOptions::ilora_ema, NumberRange::unit(),
                     "I-LoRA: slow = ema * slow + (1 - ema) * fast after every step (the paper's 0.99 is for "
                     "thousands of steps per task)"),
         real_option("ilora-gamma", &MethodOptions::ilora_gamma, NumberRange::non_negative(),
                     "I-LoRA: weight of the consistency loss"),
         choice_option("ilora-eval", &MethodOptions::ilora_eval, {"slow", "fast"},
                       "I-LoRA: evaluate with the slow or the fast adapter")}};
    template <class Backend>
    static auto make(const ContinualOptions& options) {
        return std::make_unique<ILora<Backend>>(options.method, options.replay_size, options.seed + 7);
    }
};
