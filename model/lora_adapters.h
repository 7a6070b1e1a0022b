// The LoRA adapters of a whole GPT-2: at every layer, each adapted module (model/lora_config.h) carries a
// multi-branch LoRA linear (model/cpu/lora_linear.h: A_cat (R,in), Bt = B_cat^T (R,out), R = branches * rank).
// Parameters, gradients and AdamW moments live in one allocation each, layer by layer, module by module:
//     [layer 0: qkv A, qkv Bt, (attn_proj A, Bt, ...)] [layer 1: ...] ...
// so that each branch's rows are a contiguous slice of every A and Bt. Branches below first_trainable are
// frozen: the backward computes nothing for them and the optimizer does not touch them.
//
// Used by the model orchestration (model/gpt2.h) through lora_module_forward / lora_module_backward, and by the
// continual-learning methods (lora/methods/), which add branches and set per-row branch weights, or take over the
// adapted linears' path with a LoraMixture (AM-LoRA's attention over the branches).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "model/lora_config.h"
#include "model/lora_shape.h"
#include "model/gpt2_config.h"
#include "model/growing_buffer.h"
#include "data/random.h"

// Where one adapted linear's tensors sit in the adapters' allocation (offsets in elements).
struct LoraSlot {
    int layer, module;
    LinearShape shape;
    size_t A, Bt;       // offsets of A (R,in) and Bt (R,out)
    size_t hidden;      // offset of its hidden activations (N,R) in hidden_memory
    size_t dropout;     // offset of its dropout mask (N,in) in dropout_memory
};

// The slots of every adapted linear for `branches` branches, layer by layer, module by module, A then Bt (the
// layout above; activation offsets 0). Returns the parameter count. Also the layout of an adapter file's "lora"
// tensor (lora/adapter_file.h), which the exports read on the host (lora/hf_adapters.h).
inline size_t lora_layout(const LoraConfig& config, const GPT2Config& model_config, int branches,
                          std::vector<LoraSlot>& slots) {
    slots.clear();
    const size_t R = size_t(branches) * size_t(config.rank);
    size_t offset = 0;
    for (int l = 0; l < model_config.num_layers; l++)
        for (int m = 0; m < NUM_LORA_MODULES; m++) {
            if (!config.adapts(m)) continue;
            LoraSlot s{l, m, lora_module_shape(m, model_config), 0, 0, 0, 0};
            s.A = offset;
            offset += R * s.shape.in;
            s.Bt = offset;
            offset += R * s.shape.out;
            slots.push_back(s);
        }
    return offset;
}

template <class Backend>
struct LoraAdapters;

// A method's own path through the adapted linears, for block weights that each linear computes from its branches'
// activations (AM-LoRA's attention over the branches: lora/attention_mixture.h). When set on the adapters, every
// adapted linear's forward and backward go through it instead of the plain LoRA path; it uses the same kernels in
// halves (Backend::lora_down_forward, lora_up_forward, lora_up_backward, lora_down_backward) around its own.
template <class Backend>
struct LoraMixture {
    using real = typename Backend::real;
    virtual ~LoraMixture() = default;
    // out (N,out) += the adapters' term at slot `slot`, input inp (N,in), dropout mask (N,in) or null
    virtual void forward(LoraAdapters<Backend>& adapters, size_t slot, real* out, const real* inp,
                         const real* dropout_mask, int N) = 0;
    // after that forward: accumulates dinp (N,in), the slot's trainable dA, dBt and the mixture's own gradients
    virtual void backward(LoraAdapters<Backend>& adapters, size_t slot, real* dinp, const real* dout,
                          const real* inp, const real* dropout_mask, int N) = 0;
};

template <class Backend>
struct LoraAdapters {
    using real = typename Backend::real;

    GPT2Config model_config;
    LoraConfig config;
    int branches = 0;         // stacked branches at every adapted linear
    int first_trainable = 0;  // branches [first_trainable, branches) train
    std::vector<LoraSlot> slots;  // (layer, module) in forward order; only adapted modules
    std::vector<int> slot_of;     // (L * NUM_LORA_MODULES) index into slots, or -1

    size_t num_parameters = 0;
    real* parameters = nullptr;  // (num_parameters)
    real* gradients = nullptr;   // (num_parameters); frozen rows stay 0
    real* adam_m = nullptr;      // (num_parameters), allocated at the first update, zeroed by reset_optimizer
    real* adam_v = nullptr;

    // activations for the current number of rows N = B*T
    int rows = 0;
    GrowingBuffer<Backend, real> hidden_memory;   // per slot: (N,R) = h~ A^T, kept for the backward
    GrowingBuffer<Backend, real> dropout_memory;  // per slot: (N,in) inverted-dropout mask, when training with
                                                  // dropout > 0
    const real* block_weights = nullptr;  // (N, branches) per-row branch weights set by a method; null = ones
    real* block_weight_gradients = nullptr;  // (N, branches) when a method trains the weights (gates): the
                                             // backward accumulates dL/dw of every adapted linear into it
    LoraMixture<Backend>* mixture = nullptr;  // a method's own path through the adapted linears, or null
    bool training = false;       // dropout on
    uint64_t dropout_seed = 0;   // set per step by the caller; each slot's mask derives from it
    size_t dropout_first_row = 0;  // data parallelism: the global input row (position b*T + t) of row 0, so that
                                   // a rank's masks are its rows of the global batch's masks

    LoraAdapters(const GPT2Config& model_config, const LoraConfig& config)
        : model_config(model_config), config(config) {
        validate_lora_config(config);
        layout();
    }
    LoraAdapters(const LoraAdapters&) = delete;
    LoraAdapters& operator=(const LoraAdapters&) = delete;
    ~LoraAdapters() {
        release_parameters();
        release_activations();
    }

    int R() const { return branches * config.rank; }
    int trainable_rows() const { return (branches - first_trainable) * config.rank; }
    LoraShape shape(const LoraSlot& slot, int N) const {
        return {N, slot.shape.in, slot.shape.out, branches, config.rank, first_trainable};
    }
    const LoraSlot* slot(int layer, int module) const {
        int index = slot_of[size_t(layer) * NUM_LORA_MODULES + module];
        return index < 0 ? nullptr : &slots[index];
    }

    // The offsets of every slot for the current number of branches; parameter memory is not touched.
    void layout() {
        num_parameters = lora_layout(config, model_config, branches, slots);
        slot_of.assign(size_t(model_config.num_layers) * NUM_LORA_MODULES, -1);
        for (size_t i = 0; i < slots.size(); i++)
            slot_of[size_t(slots[i].layer) * NUM_LORA_MODULES + slots[i].module] = int(i);
    }

    void release_parameters() {
        for (real* p : {parameters, gradients, adam_m, adam_v}) Backend::release(p);
        parameters = gradients = adam_m = adam_v = nullptr;
    }
    void release_activations() {
        hidden_memory.release();
        dropout_memory.release();
        rows = 0;
    }

    // Activation buffers for N rows, laid out for N and the branch count, in buffers that only grow (reallocated
    // when the layout needs more than they hold: continual learning's batches change N at every step).
    void ensure_rows(int N) {
        if (N == rows && hidden_memory.data()) return;
        size_t hidden = 0, dropout = 0;
        for (LoraSlot& s : slots) {
            s.hidden = hidden;
            hidden += size_t(N) * R();
            s.dropout = dropout;
            dropout += size_t(N) * s.shape.in;
        }
        hidden_memory.reserve(std::max<size_t>(hidden, 1));
        if (config.dropout > 0) dropout_memory.reserve(std::max<size_t>(dropout, 1));
        rows = N;
    }

    // Host fp32 parameters in the layout above, and back (the branch count must match).
    std::vector<float> parameters_to_host() const {
        std::vector<float> values(num_parameters);
        Backend::download(values.data(), parameters, num_parameters);
        return values;
    }
    void parameters_from_host(const std::vector<float>& values) {
        if (values.size() != num_parameters)
            fail("adapters: " + std::to_string(values.size()) + " values given, " + std::to_string(num_parameters) +
                 " expected for " + std::to_string(branches) + " branches");
        Backend::upload(parameters, values.data(), num_parameters);
    }

    // Replaces the parameters with `values` laid out for `new_branches` branches; fresh gradients and optimizer.
    void resize(int new_branches, const std::vector<float>& values) {
        release_parameters();
        release_activations();
        branches = new_branches;
        layout();
        parameters = Backend::template allocate<real>(std::max<size_t>(num_parameters, 1));
        gradients = Backend::template allocate<real>(std::max<size_t>(num_parameters, 1));
        parameters_from_host(values);
    }
};

// Appends one branch to every adapted linear (METHODS.md section 1: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0, so the
// new branch starts as a no-op). With freeze_old, only the new branch trains (IncLoRA and the methods built on it).
// The old branches keep their values; gradients and optimizer state start fresh.
template <class Backend>
void lora_add_branch(LoraAdapters<Backend>& adapters, uint64_t seed, bool freeze_old = true) {
    LoraAdapters<Backend>& a = adapters;
    const int old_R = a.R(), new_R = old_R + a.config.rank;
    const std::vector<float> old_values = a.branches ? a.parameters_to_host() : std::vector<float>();
    const std::vector<LoraSlot> old_slots = a.slots;
    // the new layout, slot by slot: A = the old rows, then the new branch's random rows; Bt = the old rows, then 0
    a.branches += 1;
    a.layout();
    std::vector<float> values(a.num_parameters, 0.0f);
    Random random(seed);
    for (size_t i = 0; i < a.slots.size(); i++) {
        const LoraSlot& s = a.slots[i];
        const int in = s.shape.in, out = s.shape.out;
        if (old_R > 0) {
            const LoraSlot& o = old_slots[i];
            std::copy(old_values.begin() + o.A, old_values.begin() + o.A + size_t(old_R) * in, values.begin() + s.A);
            std::copy(old_values.begin() + o.Bt, old_values.begin() + o.Bt + size_t(old_R) * out,
                      values.begin() + s.Bt);
        }
        const double bound = 1.0 / std::sqrt(double(in));
        for (size_t k = size_t(old_R) * in; k < size_t(new_R) * in; k++)
            values[s.A + k] = float((2 * random.uniform() - 1) * bound);
    }
    a.resize(a.branches, values);
    a.first_trainable = freeze_old ? a.branches - 1 : 0;
}

// The adapters exactly as a run starts them: every branch dropped, then one fresh branch drawn from `seed` by
// lora_add_branch (so the same seed gives the same values bit for bit, whatever the adapters held), all of it
// trainable; fresh gradients, no optimizer state (the loop resets it at every task). MTL starts every stage so.
template <class Backend>
void lora_reinitialize(LoraAdapters<Backend>& adapters, uint64_t seed) {
    adapters.branches = 0;  // lora_add_branch then keeps none of the old values and lays the adapters out afresh
    lora_add_branch(adapters, seed, false);
}

// Sets every parameter gradient to 0.
template <class Backend>
void lora_zero_grad(LoraAdapters<Backend>& adapters) {
    Backend::zero(adapters.gradients, adapters.num_parameters);
}

// A fresh optimizer state (METHODS.md section 1: at every task).
template <class Backend>
void lora_reset_optimizer(LoraAdapters<Backend>& adapters) {
    using real = typename Backend::real;
    if (!adapters.adam_m) {
        adapters.adam_m = Backend::template allocate<real>(std::max<size_t>(adapters.num_parameters, 1));
        adapters.adam_v = Backend::template allocate<real>(std::max<size_t>(adapters.num_parameters, 1));
    }
    Backend::zero(adapters.adam_m, adapters.num_parameters);
    Backend::zero(adapters.adam_v, adapters.num_parameters);
}

// The seed of one slot's dropout mask: the step's seed mixed with the slot's index.
inline uint64_t lora_slot_seed(uint64_t step_seed, size_t slot_index) {
    return Random(step_seed ^ (0xD1B54A32D192ED03ULL * (slot_index + 1))).next();
}

// out (N,out) += the adapters' term at (layer, module), whose input is inp (N,in); nothing when not adapted.
template <class Backend>
void lora_module_forward(LoraAdapters<Backend>& adapters, int layer, int module, typename Backend::real* out,
                         const typename Backend::real* inp, int N) {
    const LoraSlot* s = adapters.slot(layer, module);
    if (!s || adapters.branches == 0) return;
    using real = typename Backend::real;
    real* mask = nullptr;
    if (adapters.training && adapters.config.dropout > 0) {
        mask = adapters.dropout_memory.data() + s->dropout;
        const uint64_t seed = lora_slot_seed(adapters.dropout_seed, s - &adapters.slots[0]);
        Backend::dropout_mask(mask, size_t(N) * s->shape.in, seed, adapters.config.dropout,
                              uint64_t(adapters.dropout_first_row) * s->shape.in);
    }
    if (adapters.mixture) return adapters.mixture->forward(adapters, size_t(s - &adapters.slots[0]), out, inp, mask, N);
    Backend::lora_forward(out, adapters.hidden_memory.data() + s->hidden, inp, adapters.parameters + s->A,
                          adapters.parameters + s->Bt, adapters.block_weights, mask, real(adapters.config.scale()),
                          adapters.shape(*s, N));
}

// Accumulates dinp (N,in) and the trainable rows of the slot's dA, dBt from dout (N,out), after the forward above.
template <class Backend>
void lora_module_backward(LoraAdapters<Backend>& adapters, int layer, int module, typename Backend::real* dinp,
                          const typename Backend::real* dout, const typename Backend::real* inp, int N) {
    const LoraSlot* s = adapters.slot(layer, module);
    if (!s || adapters.branches == 0) return;
    using real = typename Backend::real;
    const bool dropout = adapters.training && adapters.config.dropout > 0;
    const real* mask = dropout ? adapters.dropout_memory.data() + s->dropout : nullptr;
    if (adapters.mixture)
        return adapters.mixture->backward(adapters, size_t(s - &adapters.slots[0]), dinp, dout, inp, mask, N);
    Backend::lora_backward(dinp, adapters.gradients + s->A, adapters.gradients + s->Bt,
                           adapters.block_weight_gradients, dout, inp, adapters.hidden_memory.data() + s->hidden,
                           adapters.parameters + s->A, adapters.parameters + s->Bt, adapters.block_weights, mask,
                           real(adapters.config.scale()), adapters.shape(*s, N));
}

// The global L2 norm of the adapters' gradients (frozen rows are 0 and add nothing).
template <class Backend>
double lora_grad_norm(const LoraAdapters<Backend>& adapters) {
    return std::sqrt(Backend::sum_of_squares(adapters.gradients, adapters.num_parameters));
}

// One AdamW step (t: 1-based within the task) on the trainable rows of every A and Bt, with the gradient scaled
// by grad_scale (clipping, decided by the caller over every trained tensor). Weight decay applies to all of them
// (they are all matrices).
template <class Backend, class Settings>
void lora_update(LoraAdapters<Backend>& adapters, const Settings& settings, int t, float grad_scale) {
    if (!adapters.adam_m) lora_reset_optimizer(adapters);
    const size_t first_row = size_t(adapters.first_trainable) * adapters.config.rank;
    const size_t rows = adapters.trainable_rows();
    for (const LoraSlot& s : adapters.slots)
        for (auto [offset, width] : {std::pair<size_t, int>{s.A, s.shape.in}, {s.Bt, s.shape.out}}) {
            size_t start = offset + first_row * width, count = rows * width;
            Backend::adamw_update(adapters.parameters + start, adapters.gradients + start, adapters.adam_m + start,
                                  adapters.adam_v + start, count, settings.learning_rate, settings.beta1,
                                  settings.beta2, settings.eps, settings.weight_decay, t, grad_scale);
        }
}
