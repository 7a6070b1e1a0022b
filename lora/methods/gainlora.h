// GainLoRA (lora/METHODS.md section 7): a new LoRA branch per task (the old ones frozen, as IncLoRA) and a
// gate per task that scales its branch by one scalar per sequence, computed from the prompt (lora/cpu/gate.h):
//   y = W0 h + sum_i g_i(prompt) s B_i A_i h,   g_i = |2 sigmoid(4 cos(p2_i, k_i)) - 1|,
//   p0 = mean wte over the prompt (C), p1 = SiLU(W1_i p0) (m), p2 = SiLU(W2_i p1) (C)
// at training and evaluation alike (every branch, each with its own gate: no task id). The gates are the adapters'
// block weights (model/lora_adapters.h): (B*T, branches), row (b, t) = the gates of sequence b; the backward
// accumulates dL/dw into block_weight_gradients and dg_t (per sequence) = the sum of column t over the sequence's rows.
//
// Task t (0-based here, t+1 in METHODS.md):
//   task_start   add branch t (old ones frozen); gate t = (W1, W2 of gate t-1, or PyTorch's default Linear init
//                U(-1/sqrt(fan_in), 1/sqrt(fan_in)) at t = 0; k drawn U(-1,1)); collect over the task's training
//                data (<= --gainlora-max-batches batches, no gradient) the covariances of p0, p1, p2 under gate t and
//                (gainlora-inflora) of every adapted linear's input; then
//                  k_t = top left singular vector of C_p2 - M3 M3^T C_p2, times |the U(-1,1) draw|
//                so that cos(p2, k_t) ~ 0 on old tasks' prompts (their p2 lie in span M3): g_t ~ 0 there;
//                gainlora-inflora: A_t (r,in) = the top r left singular vectors of C_h - M_h M_h^T C_h, over sqrt(3)
//   each step    before_forward: every gate on the rows' prompts -> block weights; extra_loss: gate t's gradient
//                from the block-weight gradients, plus the O-LoRA loss (gainlora-olora, lora/methods/olora.h) or
//                the freezing of A_t (gainlora-inflora: its gradient rows are zeroed, so only B_t trains, and if
//                weight decay is on A_t is restored after the step); extra_update: AdamW on gate t (own state,
//                fresh each task; weight decay on W1, W2 only); after_step (t > 0), with D = this step's change:
//                  W1 -= D(W1) M1 M1^T,  W2 -= D(W2) M2 M2^T,  k -= D(k) M3 M3^T     (lora/cpu/gate.h)
//                so gate t's response to old tasks' inputs does not move; then each row of W1, W2 and k is scaled
//                back to its norm before the projection (--gainlora-restore-norm on, the default, as the official
//                code does: liangyanshuo/gainlora, src/cl_trainer_gainlora_inflora.py, after optimizer.step(); off:
//                the projection alone, METHODS.md's formula)
//   task_end     extend M1 (p0, C), M2 (p1, m), M3 (p2, C) and (inflora) each linear's input basis by GPM
//                (lora/gpm.h) at epsilon_t = eps0 + (1 - eps0) t / T (for the first basis GPM keeps the direction
//                that crosses epsilon too, unlike METHODS.md's task-1 rule: see lora/gpm.h).
// The covariances for the task-end extension are collected again over the task's data, under the trained gate t
// (and, for the linears' inputs, the trained model). METHODS.md collects once, at the task start; but gate t+1
// starts from gate t's trained W1, W2, and the bases must hold the p1, p2 that the trained weights give the old
// tasks' prompts for the projection to keep g_{t+1} at 0 on them (p1 = SiLU(W1 p0) moves when W1 trains on task t).
//
// How well the gates keep old tasks depends on how much of the old tasks' gate inputs the bases hold. On the
// synthetic benchmark (nearly identical prompts across tasks, so nearly constant p1, p2) the default eps0 = 0.995
// keeps 1 of the ~10 directions of task 1's p1 (GPM's energy squares the covariance's eigenvalues), and without the
// norm restore gate 2 reads 0.08 (olora) on task 1 after task 2, having drifted by 0.06 during its training; with
// eps0 = 1 - 1e-6: 0.03 / 0.01 (olora / inflora), drifting by 0.009 / 0.0004 (test/test_gainlora.cpp).
// The norm restore (on by default, as the official code) works against the projection: it rescales rows of W1, W2
// unequally, which moves p1, p2 of the old tasks' prompts, and the rescaling is first order in the step (the part
// of the step the projection removed changed the row's norm). With eps0 = 1 - 1e-6 gate 2 then drifts on task 1 by
// 0.49 / 0.64 at lr 3e-3 (olora keeps 7% of task 1) and by 0.24 / 0.27 at lr 1e-3 (task 1 kept: 100% / 97%). At the
// synthetic preset's lr 3e-3 and the defaults olora keeps 12% of task 1 with it, 94% without: for runs at high
// learning rates, --gainlora-restore-norm off.
//
// Dropout: METHODS.md's GainLoRA default is LoRA dropout 0, but `train cl`'s --lora-dropout is shared by every
// method (default 0.1); this method sets the adapters' dropout to 0 at every task start, whatever the flag says.
//
// Saved state (adapter file): "gainlora/gates" (every gate's W1 | W2 | k), "gainlora/M1", "gainlora/M2",
// "gainlora/M3" and (inflora) "gainlora/module_basis/<slot>" as row-major M^T (k, dim).
// Diagnostics: the branch diagnostics of lora/diagnostics.h (collision rates, orthogonality); gate_<i>_on_<j> =
// mean g_i over task j's test prompts (i, j <= t, 1-based); gate_<i>_on_train = mean g_i over the training prompts of
// the task just trained (every branch i <= t: the new task's own gate should be open there, > 0.5, and the old ones
// shut; a new gate that shuts on its own task means its branch barely acts on what it learned);
// gate_<t>_drift_on_<j> = mean |g_t at task end - g_t at task start| on an old task j's test prompts (0 if the
// projection works), and the basis sizes.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "lora/continual.h"
#include "lora/diagnostics.h"
#include "lora/gainlora_gates.h"
#include "lora/gpm.h"
#include "lora/method.h"
#include "lora/methods/olora.h"

template <class Backend>
struct GainLora : ContinualMethod<Backend> {
    using Context = ContinualContext<Backend>;
    using real = typename Backend::real;
    using Kernels = GateKernels<Backend>;

    enum class Variant { olora, inflora };

    GainLora(Variant variant, const ContinualOptions& options)
        : variant(variant), options(options.method), batch_size(options.batch_size),
          max_seq_len(options.max_seq_len), seed(options.seed), olora(options.method) {
        if (this->options.gainlora_gate_hidden < 1) fail("gainlora: the gate's hidden size must be >= 1");
        if (this->options.gainlora_max_batches < 1) fail("gainlora: --gainlora-max-batches must be >= 1");
        if (!(this->options.gainlora_epsilon0 > 0 && this->options.gainlora_epsilon0 <= 1))
            fail("gainlora: --gainlora-epsilon0 must be in (0, 1]");
    }
    ~GainLora() override {
        Backend::release(block_weights);
        Backend::release(block_weight_gradients);
    }

    // ---- task boundaries ----

    void task_start(Context& context) override {
        LoraAdapters<Backend>& a = context.adapters;
        a.config.dropout = 0;  // GainLoRA's default (see the top of the file)
        lora_add_branch(a, context.seed + 1 + uint64_t(context.task), true);
        ensure_state(context);
        // gate t: W1, W2 of gate t-1 (PyTorch's Linear init for the first), k a U(-1,1) draw (its norm is kept)
        const int C = gates->C, m = gates->m;
        Random random(seed ^ (0x6A09E667F3BCC909ULL * uint64_t(context.task + 1)));
        std::vector<float> gate(gates->P);
        if (gates->count == 0) {
            for (size_t i = 0; i < size_t(m) * C; i++)
                gate[i] = float((2 * random.uniform() - 1) / std::sqrt(double(C)));
            for (size_t i = size_t(m) * C; i < 2 * size_t(m) * C; i++)
                gate[i] = float((2 * random.uniform() - 1) / std::sqrt(double(m)));
        } else {
            const std::vector<float> all = gates->to_host();
            std::copy(all.end() - gates->P, all.end() - C, gate.begin());
        }
        double draw_norm = 0;
        for (int c = 0; c < C; c++) {
            gate[2 * size_t(m) * C + c] = float(2 * random.uniform() - 1);
            draw_norm += double(gate[2 * size_t(m) * C + c]) * gate[2 * size_t(m) * C + c];
        }
        gates->add(gate);

        const bool modules = variant == Variant::inflora;
        const Covariances start = collect(context, modules);
        // k_t = the top residual direction of p2 off M3, at the draw's norm (the draw itself if M3 holds all of p2)
        const Eigen::MatrixXd key = gpm::projected_top_eigenvectors(start.p2, M3.M, 1);
        if (key.cols() == 1) {
            std::vector<float> k(C);
            for (int c = 0; c < C; c++) k[c] = float(key(c, 0) * std::sqrt(draw_norm));
            Backend::upload(gates->current() + 2 * size_t(m) * C, k.data(), size_t(C));
        }
        if (modules) initialize_down_projections(context, start.modules);
        start_values = gate_values_on_tasks(context, context.task, gates->count - 1);
    }

    void task_end(Context& context) override {
        const Covariances end = collect(context, variant == Variant::inflora);
        const double epsilon =
            gpm::threshold(options.gainlora_epsilon0, context.task + 1, int(context.tasks.size()));
        M1.set(gpm::extend(end.p0, M1.M, epsilon));
        M2.set(gpm::extend(end.p1, M2.M, epsilon));
        M3.set(gpm::extend(end.p2, M3.M, epsilon));
        for (size_t i = 0; i < end.modules.size(); i++)
            module_bases[i].set(gpm::extend(end.modules[i], module_bases[i].M, epsilon));
        frozen_A.clear();
    }

    // ---- every step ----

    void before_forward(Context& context, const std::vector<const EncodedExample*>& rows, int T) override {
        LoraAdapters<Backend>& a = context.adapters;
        set_block_weights(context, rows, T);
        a.block_weight_gradients = nullptr;
        if (context.batch) {  // training: the backward accumulates dL/dw here
            a.block_weight_gradients = block_weight_gradients;
            Backend::zero(block_weight_gradients, size_t(rows.size()) * T * gates->count);
            step_T = T;
        }
    }

    double extra_loss(Context& context) override {
        LoraAdapters<Backend>& a = context.adapters;
        Backend::zero(gates->gradients, gates->P);
        gates->backward(block_weight_gradients, step_T);
        sum_over_ranks(context, gates->gradients, gates->P, "GainLoRA's gate gradients");  // data parallelism
        if (variant == Variant::olora) return olora.extra_loss(context);
        // inflora: A_t is frozen: no gradient (its rows of dA are zeroed before clipping and AdamW)
        const size_t first_row = size_t(a.first_trainable) * a.config.rank;
        for (const LoraSlot& s : a.slots)
            Backend::zero(a.gradients + s.A + first_row * s.shape.in, size_t(a.config.rank) * s.shape.in);
        return 0;
    }

    double extra_gradient_sum_of_squares(Context&) override {
        return Backend::sum_of_squares(gates->gradients, gates->P);
    }

    void extra_update(Context&, const AdamWSettings& settings, int t, float grad_scale) override {
        real* gate = gates->current();
        Kernels::copy(gates->before, gate, gates->P);
        const size_t weights = 2 * size_t(gates->m) * gates->C;  // W1, W2: weight decay; k: none
        Backend::adamw_update(gate, gates->gradients, gates->adam_m, gates->adam_v, weights, settings.learning_rate,
                              settings.beta1, settings.beta2, settings.eps, settings.weight_decay, t, grad_scale);
        Backend::adamw_update(gate + weights, gates->gradients + weights, gates->adam_m + weights,
                              gates->adam_v + weights, size_t(gates->C), settings.learning_rate, settings.beta1,
                              settings.beta2, settings.eps, 0.0f, t, grad_scale);
        restore_A = settings.weight_decay != 0;
    }

    void after_step(Context& context) override {
        const int C = gates->C, m = gates->m;
        real* gate = gates->current();
        const real* before = gates->before;
        const bool restore = options.gainlora_restore_norm;
        // W1 (m,C) off M1 (C); W2 (C,m) off M2 (m); k (1,C) off M3 (C)
        Kernels::project_update(gate, before, M1.rows, m, C, M1.size(), restore);
        Kernels::project_update(gate + size_t(m) * C, before + size_t(m) * C, M2.rows, C, m, M2.size(), restore);
        Kernels::project_update(gate + 2 * size_t(m) * C, before + 2 * size_t(m) * C, M3.rows, 1, C, M3.size(),
                                restore);
        if (variant == Variant::inflora && restore_A) {  // weight decay moved the frozen A_t: put it back
            LoraAdapters<Backend>& a = context.adapters;
            const size_t first_row = size_t(a.first_trainable) * a.config.rank;
            for (size_t i = 0; i < a.slots.size() && i < frozen_A.size(); i++)
                Backend::upload(a.parameters + a.slots[i].A + first_row * a.slots[i].shape.in, frozen_A[i].data(),
                                frozen_A[i].size());
        }
    }

    // ---- reporting and resume ----

    Diagnostics diagnostics(Context& context) override {
        Diagnostics d = branch_diagnostics(context.adapters);  // per-task branches: collisions, orthogonality
        const int t = context.task;
        // every gate on the training prompts of the task just trained
        const std::vector<std::vector<double>> on_train = gate_values_on(context, context.tasks[t].train);
        for (int i = 0; i <= t && i < gates->count; i++)
            d.emplace_back("gate_" + std::to_string(i + 1) + "_on_train", mean(on_train[size_t(i)]));
        for (int i = 0; i <= t && i < gates->count; i++) {
            const std::vector<std::vector<double>> values = gate_values_on_tasks(context, t + 1, i);
            for (int j = 0; j <= t; j++) d.emplace_back(gate_name(i, j), mean(values[j]));
            if (i == gates->count - 1)
                for (int j = 0; j < t && j < int(start_values.size()); j++) {
                    double drift = 0;
                    for (size_t n = 0; n < values[j].size(); n++) drift += std::abs(values[j][n] - start_values[j][n]);
                    d.emplace_back("gate_" + std::to_string(i + 1) + "_drift_on_" + std::to_string(j + 1),
                                   drift / std::max<size_t>(1, values[j].size()));
                }
        }
        d.emplace_back("basis_p0", M1.size());
        d.emplace_back("basis_p1", M2.size());
        d.emplace_back("basis_p2", M3.size());
        if (!module_bases.empty()) {
            double total = 0;
            for (const Basis<Backend>& b : module_bases) total += b.size();
            d.emplace_back("basis_inputs_mean", total / module_bases.size());
        }
        return d;
    }

    void save_state(Context&, AdapterFile& file) override {
        file.set("gainlora/gates", gates->to_host());
        file.set("gainlora/M1", M1.to_floats());
        file.set("gainlora/M2", M2.to_floats());
        file.set("gainlora/M3", M3.to_floats());
        for (size_t i = 0; i < module_bases.size(); i++)
            file.set("gainlora/module_basis/" + std::to_string(i), module_bases[i].to_floats());
    }

    void load_state(Context& context, const AdapterFile& file) override {
        expect_tasks_completed(file, context.task, context.tasks.size());
        expect_branches(file, context.task, context.task > 0 ? context.task - 1 : 0);  // one branch per task
        ensure_state(context);
        const std::vector<float>& gate_values = file.tensor("gainlora/gates");
        if (gate_values.size() != size_t(context.adapters.branches) * gates->P)
            fail(file.path + ": tensor 'gainlora/gates' holds " + std::to_string(gate_values.size()) + " values, " +
                 std::to_string(context.adapters.branches) + " gates of " + std::to_string(gates->P) + " expected");
        gates->from_host(gate_values);
        // a basis (dim, k) has at most dim orthonormal columns: k * dim <= dim * dim values
        auto load_basis = [&](Basis<Backend>& basis, const std::string& key) {
            const std::vector<float>& values = file.tensor(key);
            if (values.size() > size_t(basis.dim) * size_t(basis.dim))
                fail(file.path + ": tensor '" + key + "' holds " + std::to_string(values.size()) +
                     " values, more than a basis of dimension " + std::to_string(basis.dim) + " can");
            basis.from_floats(values, file.path + ": tensor '" + key + "'");
        };
        load_basis(M1, "gainlora/M1");
        load_basis(M2, "gainlora/M2");
        load_basis(M3, "gainlora/M3");
        for (size_t i = 0; i < module_bases.size(); i++)
            load_basis(module_bases[i], "gainlora/module_basis/" + std::to_string(i));
    }

    // The values of every gate on these examples' prompts: values[i][n] = gate i on prompt n (diagnostics).
    std::vector<std::vector<double>> gate_values_on(Context& context, const std::vector<EncodedExample>& examples) {
        std::vector<std::vector<double>> values(size_t(gates->count));
        for (size_t first = 0; first < examples.size(); first += 64) {
            std::vector<const std::vector<int>*> prompts;
            for (size_t n = first; n < std::min(examples.size(), first + 64); n++)
                prompts.push_back(&examples[n].prompt);
            gates->forward(context.model.params.wte, context.model.config.vocab_size, prompts);
            const std::vector<float> host = gates->values_to_host();
            for (int i = 0; i < gates->count; i++)
                values[size_t(i)].insert(values[size_t(i)].end(), host.begin() + size_t(i) * gates->S,
                                         host.begin() + size_t(i + 1) * gates->S);
        }
        return values;
    }
    // The values of gate i on the test prompts of tasks 0 .. tasks-1: values[j][n] (diagnostics).
    std::vector<std::vector<double>> gate_values_on_tasks(Context& context, int tasks, int i) {
        std::vector<std::vector<double>> values(tasks);
        for (int j = 0; j < tasks; j++) values[j] = gate_values_on(context, context.tasks[j].test)[size_t(i)];
        return values;
    }

private:
    // Host covariances E[x x^T] of one task's data, in double.
    struct Covariances {
        Eigen::MatrixXd p0, p1, p2;             // (C,C) (m,m) (C,C)
        std::vector<Eigen::MatrixXd> modules;  // per adapter slot (in,in); empty when not collected
    };

    Variant variant;
    MethodOptions options;
    int batch_size, max_seq_len;
    uint64_t seed;
    OLora<Backend> olora;  // gainlora-olora's loss: O-LoRA's (lambda1 --olora-lambda1, lambda2 --olora-lambda2)

    std::unique_ptr<GainLoraGates<Backend>> gates;
    Basis<Backend> M1, M2, M3;                   // bases of old tasks' p0 (C), p1 (m), p2 (C)
    std::vector<Basis<Backend>> module_bases;    // inflora: per slot, of old tasks' inputs (in)
    std::vector<std::vector<float>> frozen_A;    // inflora: per slot, A_t's rows (r,in) as initialised
    bool restore_A = false;
    std::vector<std::vector<double>> start_values;  // gate t on old tasks' test prompts at task start

    real* block_weights = nullptr;           // (rows, branches)
    real* block_weight_gradients = nullptr;  // (rows, branches)
    size_t block_capacity = 0;
    int step_T = 1;

    static std::string gate_name(int i, int j) {
        return "gate_" + std::to_string(i + 1) + "_on_" + std::to_string(j + 1);
    }
    static double mean(const std::vector<double>& v) {
        double sum = 0;
        for (double x : v) sum += x;
        return v.empty() ? 0 : sum / double(v.size());
    }

    void ensure_state(Context& context) {
        if (gates) return;
        const int C = context.model.config.channels, m = options.gainlora_gate_hidden;
        gates = std::make_unique<GainLoraGates<Backend>>(C, m);
        M1.reset(C);
        M2.reset(m);
        M3.reset(C);
        if (variant == Variant::inflora)
            for (const LoraSlot& s : context.adapters.slots) module_bases.emplace_back(s.shape.in);
    }

    // Every gate on the rows' prompts, broadcast over T positions: block_weights (rows * T, branches).
    void set_block_weights(Context& context, const std::vector<const EncodedExample*>& rows, int T) {
        std::vector<const std::vector<int>*> prompts;
        for (const EncodedExample* e : rows) prompts.push_back(&e->prompt);
        gates->forward(context.model.params.wte, context.model.config.vocab_size, prompts);
        const size_t needed = rows.size() * size_t(T) * gates->count;
        if (needed > block_capacity) {
            Backend::release(block_weights);
            Backend::release(block_weight_gradients);
            block_capacity = needed;
            block_weights = Backend::template allocate<real>(needed);
            block_weight_gradients = Backend::template allocate<real>(needed);
        }
        Kernels::expand_rows(block_weights, gates->values, int(rows.size()), T, gates->count);
        context.adapters.block_weights = block_weights;
    }

    // The covariances of p0, p1, p2 under the current (last) gate and, with `modules`, of every adapted linear's
    // input (the model's activations after a forward: ln1 for qkv, atty for attn_proj, ln2 for fc, fch_gelu for
    // fc_proj; the positions of the prompt and the answer only, not the padding), over the current task's training
    // examples in file order, batch by batch (at most --gainlora-max-batches), without gradient or dropout.
    Covariances collect(Context& context, bool modules) {
        GPT2<Backend>& model = context.model;
        LoraAdapters<Backend>& a = context.adapters;
        const int C = gates->C, m = gates->m;
        const int max_T = max_seq_len > 0 ? std::min(max_seq_len, model.config.max_seq_len) : model.config.max_seq_len;
        const std::vector<EncodedExample>& train = context.tasks[context.task].train;
        const size_t limit = std::min(train.size(), size_t(options.gainlora_max_batches) * batch_size);
        // sums of x x^T in backend memory: p0, p1, p2, then each slot's input
        std::vector<size_t> dims = {size_t(C), size_t(m), size_t(C)};
        if (modules)
            for (const LoraSlot& s : a.slots) dims.push_back(size_t(s.shape.in));
        std::vector<real*> sums;
        for (size_t d : dims) sums.push_back(Backend::template allocate<real>(d * d));
        double sequences = 0, positions = 0;
        const bool was_training = a.training;
        a.training = false;
        // data parallelism: rank r takes batches r, r + world_size, ...; the sums are added up below
        const size_t ranks = size_t(distributed().world_size), rank = size_t(distributed().rank);
        for (size_t first = rank * batch_size; first < limit; first += ranks * batch_size) {
            std::vector<const EncodedExample*> rows;
            for (size_t n = first; n < std::min(limit, first + batch_size); n++) rows.push_back(&train[n]);
            const int S = int(rows.size());
            TrainingBatch batch;
            if (modules) batch = make_training_batch(rows, max_T);
            set_block_weights(context, rows, modules ? batch.T : 1);  // also runs every gate on the prompts
            // sum += x^T x for x = p0 (S,C), p1 (S,m), p2 (S,C): matmul_backward's dweight += dout^T inp
            Backend::matmul_backward(nullptr, sums[0], nullptr, gates->p0, gates->p0, nullptr, S, C, C);
            Backend::matmul_backward(nullptr, sums[1], nullptr, gates->p1, gates->p1, nullptr, S, m, m);
            Backend::matmul_backward(nullptr, sums[2], nullptr, gates->p2, gates->p2, nullptr, S, C, C);
            sequences += S;
            if (!modules) continue;
            a.block_weight_gradients = nullptr;
            gpt2_forward(model, batch.inputs.data(), nullptr, nullptr, batch.B, batch.T);
            const int T = batch.T;
            for (size_t i = 0; i < a.slots.size(); i++) {
                const int in = a.slots[i].shape.in;
                const real* input = model.linear_input(a.slots[i].layer, a.slots[i].module);
                for (int b = 0; b < batch.B; b++) {  // row b's real positions: 0 .. min(T, its length) - 1
                    const int length = std::min(T, training_length(*rows[b]));
                    const real* x = input + size_t(b) * T * in;
                    Backend::matmul_backward(nullptr, sums[3 + i], nullptr, x, x, nullptr, length, in, in);
                    if (i == 0) positions += length;
                }
            }
        }
        a.training = was_training;
        for (size_t i = 0; i < sums.size(); i++)
            sum_over_ranks(context, sums[i], dims[i] * dims[i], "GainLoRA's covariances");
        double counts[2] = {sequences, positions};
        sum_over_ranks_host(counts, 2, "GainLoRA's covariance counts");
        sequences = counts[0], positions = counts[1];
        Covariances result;
        for (size_t i = 0; i < sums.size(); i++) {
            const size_t d = dims[i];
            std::vector<float> host(d * d);
            Backend::download(host.data(), sums[i], host.size());
            Backend::release(sums[i]);
            const double count = i < 3 ? sequences : positions;
            Eigen::MatrixXd covariance(d, d);
            for (size_t r = 0; r < d; r++)
                for (size_t c = 0; c < d; c++) covariance(r, c) = double(host[r * d + c]) / std::max(1.0, count);
            if (i == 0) result.p0 = covariance;
            else if (i == 1) result.p1 = covariance;
            else if (i == 2) result.p2 = covariance;
            else result.modules.push_back(covariance);
        }
        return result;
    }

    // inflora: A_t (r,in) of every slot = the top r residual directions of its input covariance off its basis, over
    // sqrt(3) (rows the residual cannot fill keep lora_add_branch's random init); kept in frozen_A.
    void initialize_down_projections(Context& context, const std::vector<Eigen::MatrixXd>& covariances) {
        LoraAdapters<Backend>& a = context.adapters;
        const int r = a.config.rank;
        const size_t first_row = size_t(a.first_trainable) * r;
        std::vector<float> values = a.parameters_to_host();
        frozen_A.assign(a.slots.size(), {});
        for (size_t i = 0; i < a.slots.size(); i++) {
            const LoraSlot& s = a.slots[i];
            const int in = s.shape.in;
            const Eigen::MatrixXd U = gpm::projected_top_eigenvectors(covariances[i], module_bases[i].M, r);
            float* A_t = values.data() + s.A + first_row * in;
            for (int row = 0; row < int(U.cols()); row++)
                for (int c = 0; c < in; c++) A_t[size_t(row) * in + c] = float(U(c, row) / std::sqrt(3.0));
            frozen_A[i].assign(A_t, A_t + size_t(r) * in);
        }
        a.parameters_from_host(values);
    }
};

// `--method gainlora-olora` and `--method gainlora-inflora`, the two variants of one class; their flags, listed
// with gainlora-olora, apply to both (lora/method_info.h; registered in lora/methods/registry.h).
struct GainLoraOLoraMethod {
    static inline const MethodInfo info{
        "gainlora-olora", false,
        {count_option("gainlora-gate-hidden", &MethodOptions::gainlora_gate_hidden, 1,
                      "GainLoRA: gate hidden size m"),
         real_option("gainlora-epsilon0", &MethodOptions::gainlora_epsilon0, NumberRange::above_zero_to_one(),
                     "GainLoRA: GPM threshold at task 1"),
         count_option("gainlora-max-batches", &MethodOptions::gainlora_max_batches, 1,
                      "GainLoRA: batches of covariance collection per task"),
         on_off_option("gainlora-restore-norm", &MethodOptions::gainlora_restore_norm,
                       "GainLoRA: restore each row's norm after the projection, as the official code does: on "
                       "or off")}};
    template <class Backend>
    static auto make(const ContinualOptions& options) {
        return std::make_unique<GainLora<Backend>>(GainLora<Backend>::Variant::olora, options);
    }
};
struct GainLoraInfLoraMethod {
    static inline const MethodInfo info{"gainlora-inflora", false, {}};  // gainlora-olora's flags
    template <class Backend>
    static auto make(const ContinualOptions& options) {
        return std::make_unique<GainLora<Backend>>(GainLora<Backend>::Variant::inflora, options);
    }
};
