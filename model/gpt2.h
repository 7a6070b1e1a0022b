// GPT-2: parameters, gradients, optimizer state and activations, with the forward, backward and AdamW
// update written once as explicit call sequences over a kernel backend (CpuBackend<float|double>, and the
// CUDA backend). Every buffer lives in the backend's memory; the host sees only what it copies out.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "lora/adapters.h"
#include "model/activations.h"
#include "model/bf16.h"
#include "model/gpt2_config.h"
#include "model/parameters.h"

// AdamW and clipping hyperparameters of one optimizer step.
struct AdamWSettings {
    float learning_rate = 3e-4f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;  // applied to the 2-D tensors only
    float grad_clip = 1.0f;     // global-norm clipping; 0 disables it
};

// The rows of logits the training commands (train pretrain, train cl, the step benchmark) compute at once
// (GPT2::logits_chunk_rows): one sequence of 1024 tokens, 206 MB of fp32 logits over GPT-2's padded vocabulary.
constexpr int TRAINING_LOGITS_CHUNK_ROWS = 1024;

template <class Backend>
struct GPT2 {
    using real = typename Backend::real;

    GPT2Config config;
    std::array<size_t, NUM_PARAMETER_TENSORS> parameter_sizes;
    size_t num_parameters = 0;
    real* parameters_memory = nullptr;  // (num_parameters) the 16 tensors in file order
    real* gradients_memory = nullptr;   // (num_parameters) same layout; allocated (zeroed) by the first use that
                                        // trains the base (ensure_gradients): a frozen base holds none
    real* adam_m = nullptr;             // (num_parameters) first moments, allocated by the first update
    real* adam_v = nullptr;             // (num_parameters) second moments
    ParameterTensors<real> params, grads;  // grads: carved once gradients_memory exists

    // activations for the current (B, T) and the linear inputs kept (model/activations.h), carved out of buffers
    // that grow to the largest batch (ensure_activations)
    int batch_size = 0, seq_len = 0;
    size_t activation_capacity = 0, activation_gradient_capacity = 0, position_capacity = 0;  // elements allocated
    ActivationKeep kept;
    real* activations_memory = nullptr;
    real* activation_gradients_memory = nullptr;
    ActivationTensors<real> acts;
    ActivationGradients<real> grads_acts;
    bool logits_hold_gradient = false;  // a backward has used the last forward (and overwritten its logits)
    int* inputs = nullptr;         // (B,T)
    int* targets = nullptr;        // (B,T)
    float* loss_weights = nullptr;  // (B,T)
    std::vector<float> host_loss_weights;
    double weight_sum = 0;          // of the last forward's loss weights (data parallelism: of the global batch)
    double weighted_loss_sum = 0;   // sum of weight * loss of the last forward
    float mean_loss = -1;  // of the last forward with targets; -1 without
    // The last forward's per-row losses -log p(target) on the host, as the classifier computed them (R rows): with
    // sparse logits the gathered rows, in answer_rows' order; else every position of (B,T). Label ranking
    // (model/generate.h, label_scores) sums them per sequence. Empty after a forward without targets.
    std::vector<float> host_losses;

    // LoRA fine-tuning: adapters added to the adapted linears (null: none), and a frozen base, for which the
    // backward computes no parameter gradient at all (no weight products, no encoder backward).
    LoraAdapters<Backend>* lora = nullptr;
    bool frozen_base = false;
    // A loss on the final hidden states (I-LoRA's consistency loss): its gradient with respect to lnf, (B,T,C) in
    // backend memory, added by the backward to the cross-entropy's. Null: none.
    const real* extra_dlnf = nullptr;
    // With a frozen base and loss weights: compute the logits, the loss and their backward only at the
    // positions of nonzero weight (the answer tokens of a fine-tuning batch), gathered into `answer_rows` rows
    // (the first rows of the logits buffers). The mean loss and every gradient are the same; the positions of
    // weight 0 get no logits, and a forward without targets computes none (only the hidden states). Off by
    // default (the full logits stay available for inspection).
    bool sparse_logits = false;
    // The classifier in chunks of rows (0: off, the default: the whole logits, kept for inspection until the
    // backward overwrites them). With logits_chunk_rows > 0, a forward with targets computes the logits that many
    // rows at a time and runs the classifier's backward on each chunk at once, so the (B*T, Vp) logits never exist
    // whole (acts.logits holds one chunk; GPT-2 124M at B=16, T=1024: 3.3 GB fp32); gpt2_backward starts from the
    // gradient it left. Such a forward pays the classifier's backward even when no backward follows (evaluation);
    // a forward without targets computes no logits (only the hidden states). The training commands use
    // TRAINING_LOGITS_CHUNK_ROWS.
    int logits_chunk_rows = 0;
    real* classifier_dwte = nullptr;   // (Vp, C) the chunks' gradient of wte, when the base trains
    double classifier_weight_sum = 0;  // the weight sum the chunks' dlogits were divided by
    std::vector<int> answer_rows;          // positions (in B*T) of the gathered rows, in order
    real* answer_lnf = nullptr;            // (K, C) the final hidden states at those positions
    real* answer_dlnf = nullptr;           // (K, C) their gradient
    real* zero_row = nullptr;              // (C) zeros, to copy rows with residual_forward
    size_t answer_capacity = 0;            // rows allocated in answer_lnf / answer_dlnf
    // A frozen base stored in bf16 for its forward products (mixed precision's storage: `train cl` and the step
    // benchmark set it with bf16 products on CUDA): a bf16 copy of the parameters, converted at the first forward
    // (a frozen base never changes after), and each linear's input rounded to bf16 just before its product, into
    // one product's scratch; the products then multiply bf16 operands (half the bytes of fp32) and accumulate in
    // fp32 (base_matmul_forward: every linear, the classifier, greedy decoding). The backward's products read the
    // fp32 weights, which stay. The CPU backend emulates it, as the reference of the CUDA path. Needs frozen_base.
    bool bf16_base = false;
    bf16_bits* parameters_bf16 = nullptr;  // (num_parameters) the parameters rounded to bf16, in the same layout
    bf16_bits* product_input = nullptr;    // (product_input_capacity) one product's input, rounded to bf16
    size_t product_input_capacity = 0;

    // Takes the parameters from host fp32 values in checkpoint layout (num_parameters(config) of them).
    GPT2(const GPT2Config& config, const float* host_parameters) : config(config) {
        validate_config(config, "model");
        parameter_sizes = ::parameter_sizes(config);
        num_parameters = ::num_parameters(config);
        parameters_memory = Backend::template allocate<real>(num_parameters);
        Backend::upload(parameters_memory, host_parameters, num_parameters);
        params = carve_parameters(parameters_memory, config);
    }
    GPT2(const GPT2&) = delete;
    GPT2& operator=(const GPT2&) = delete;
    ~GPT2() {
        Backend::release(answer_lnf);
        Backend::release(answer_dlnf);
        Backend::release(zero_row);
        Backend::release(classifier_dwte);
        Backend::release(parameters_bf16);
        Backend::release(product_input);
        Backend::release(parameters_memory);
        Backend::release(gradients_memory);
        Backend::release(adam_m);
        Backend::release(adam_v);
        release_activations();
    }

    // The parameter gradients, allocated and zeroed on first use.
    void ensure_gradients() {
        if (gradients_memory) return;
        gradients_memory = Backend::template allocate<real>(num_parameters);
        Backend::zero(gradients_memory, num_parameters);
        grads = carve_parameters(gradients_memory, config);
    }
    // classifier_dwte, allocated on first use, zeroed.
    real* ensure_classifier_dwte() {
        const size_t size = size_t(config.padded_vocab_size) * config.channels;
        if (!classifier_dwte) classifier_dwte = Backend::template allocate<real>(size);
        Backend::zero(classifier_dwte, size);
        return classifier_dwte;
    }
    // The bf16 copy of the parameters, converted on first use; fails unless the base is frozen.
    void ensure_bf16_parameters() {
        if (!frozen_base) fail("model: bf16_base stores a frozen base only (set frozen_base, or train in fp32 storage)");
        if (parameters_bf16) return;
        parameters_bf16 = Backend::template allocate<bf16_bits>(num_parameters);
        Backend::to_bf16(parameters_bf16, parameters_memory, num_parameters);
    }

    // out (N,OC) = inp (N,C) W^T + bias for a matrix W of the base (a pointer into params): the backend's product
    // on fp32 operands, or with bf16_base on W's bf16 copy and inp rounded to bf16.
    void base_matmul_forward(real* out, const real* inp, const real* weight, const real* bias, int N, int C,
                             int OC) {
        if (!bf16_base) return Backend::matmul_forward(out, inp, weight, bias, N, C, OC);
        ensure_bf16_parameters();
        const auto first = reinterpret_cast<uintptr_t>(parameters_memory), at = reinterpret_cast<uintptr_t>(weight);
        const size_t offset = (at - first) / sizeof(real), count = size_t(N) * C;
        if (at < first || offset + size_t(OC) * C > num_parameters)
            fail("model: base_matmul_forward: the weight is not one of the model's parameters");
        if (count > product_input_capacity) {
            Backend::release(product_input);
            product_input = Backend::template allocate<bf16_bits>(count);
            product_input_capacity = count;
        }
        Backend::to_bf16(product_input, inp, count);
        Backend::matmul_forward_bf16(out, product_input, parameters_bf16 + offset, bias, N, C, OC);
    }

    // Fails, naming the caller, when no gradients exist (a frozen base, or no backward nor zero_grad yet).
    void require_gradients(const char* caller) const {
        if (!gradients_memory)
            fail(std::string(caller) + ": the model holds no parameter gradients (its base is frozen, or no " +
                 "backward ran)");
    }

    // Whether the last forward kept linear `module`'s input (LORA_QKV, ...) for every layer (activations_to_keep).
    bool keeps_input(int module) const {
        const bool every_layer[NUM_LORA_MODULES] = {kept.ln1, true, kept.ln2, kept.fch_gelu};
        return every_layer[module];
    }

    // Layer l's input (B*T, in) of linear `module` in the last forward. Fails for an input the forward did not keep
    // for every layer (a frozen base with no adapter on that linear).
    const real* linear_input(int l, int module) const {
        if (!keeps_input(module))
            fail("model: the input of " + std::string(lora_module_name(module)) + " at layer " + std::to_string(l) +
                 " is not kept (a frozen base with no adapter there)");
        const size_t BTC = size_t(batch_size) * seq_len * config.channels;
        switch (module) {
            case LORA_QKV: return acts.ln1 + l * BTC;
            case LORA_ATTN_PROJ: return acts.atty + l * BTC;
            case LORA_FC: return acts.ln2 + l * BTC;
            default: return acts.fch_gelu + l * 4 * BTC;
        }
    }

    void release_activations() {
        Backend::release(activations_memory);
        Backend::release(activation_gradients_memory);
        Backend::release(inputs);
        Backend::release(targets);
        Backend::release(loss_weights);
        activations_memory = activation_gradients_memory = nullptr;
        inputs = targets = nullptr;
        loss_weights = nullptr;
        activation_capacity = activation_gradient_capacity = position_capacity = 0;
        batch_size = seq_len = 0;
    }

    // What the backward will read: every linear input when the base trains, else only the adapted linears'; the
    // logits of one chunk of rows when the classifier runs in chunks.
    ActivationKeep activations_to_keep(int B, int T) const {
        ActivationKeep keep;
        if (frozen_base) {
            auto adapted = [&](int module) { return lora && lora->config.adapts(module); };
            keep.ln1 = adapted(LORA_QKV), keep.ln2 = adapted(LORA_FC), keep.fch_gelu = adapted(LORA_FC_PROJ);
        }
        if (logits_chunk_rows > 0) keep.logits_rows = std::min<size_t>(logits_chunk_rows, size_t(B) * T);
        return keep;
    }

    // The activations of a (B, T) batch, carved out of buffers that only grow: a batch no larger than the largest
    // so far reuses them (continual learning's batches change T at every step; a fresh allocation is zeroed and,
    // on the CPU, touched page by page). Every activation is written by the forward before it is read.
    void ensure_activations(int B, int T) {
        const ActivationKeep keep = activations_to_keep(B, T);
        if (B == batch_size && T == seq_len && keep == kept) return;
        const size_t activations = num_activations<Backend>(config, B, T, keep);
        const size_t activation_gradients = num_activation_gradients(config, B, T), positions = size_t(B) * T;
        if (activations > activation_capacity || activation_gradients > activation_gradient_capacity ||
            positions > position_capacity) {
            const size_t grown[3] = {std::max(activations, activation_capacity),
                                     std::max(activation_gradients, activation_gradient_capacity),
                                     std::max(positions, position_capacity)};
            release_activations();
            activations_memory = Backend::template allocate<real>(grown[0]);
            activation_gradients_memory = Backend::template allocate<real>(grown[1]);
            inputs = Backend::template allocate<int>(grown[2]);
            targets = Backend::template allocate<int>(grown[2]);
            loss_weights = Backend::template allocate<float>(grown[2]);
            activation_capacity = grown[0], activation_gradient_capacity = grown[1], position_capacity = grown[2];
        }
        acts = carve_activations<Backend>(activations_memory, config, B, T, keep);
        grads_acts = carve_activation_gradients(activation_gradients_memory, config, B, T);
        kept = keep;
        batch_size = B, seq_len = T;
    }

    void ensure_answer_rows(size_t K) {
        if (!zero_row) {
            zero_row = Backend::template allocate<real>(config.channels);
            Backend::zero(zero_row, config.channels);
        }
        if (K <= answer_capacity) return;
        Backend::release(answer_lnf);
        Backend::release(answer_dlnf);
        answer_capacity = std::max<size_t>(K, 2 * answer_capacity);
        answer_lnf = Backend::template allocate<real>(answer_capacity * config.channels);
        answer_dlnf = Backend::template allocate<real>(answer_capacity * config.channels);
    }

    std::vector<float> parameters_to_host() const {
        std::vector<float> values(num_parameters);
        Backend::download(values.data(), parameters_memory, num_parameters);
        return values;
    }
    std::vector<float> gradients_to_host() const {
        require_gradients("gradients_to_host");
        std::vector<float> values(num_parameters);
        Backend::download(values.data(), gradients_memory, num_parameters);
        return values;
    }
};

// Fails, naming the field and position, on a token id outside [0, vocab_size).
inline void check_token_ids(const int* tokens, size_t count, int vocab_size, const char* what) {
    for (size_t i = 0; i < count; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            fail(std::string(what) + ": token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                 " is out of range for vocabulary size " + std::to_string(vocab_size));
}

// The classifier on R rows X (R,C) of final hidden states (all of them, or the gathered answer rows), with host
// targets and loss weights (R): the per-row losses, their weighted sum and the weight sum, into the model.
// Whole: logits (R,Vp) = X wte^T into acts.logits, kept for the backward. In chunks (logits_chunk_rows > 0), chunk
// after chunk: the logits, the losses and dlogits over the logits (divided by this forward's weight sum), then
// dX (R,C) = dlogits wte and, when the base trains, classifier_dwte += dlogits^T X.
template <class Backend>
void gpt2_classifier_forward(GPT2<Backend>& model, const typename Backend::real* X, typename Backend::real* dX,
                             int R, const int* targets, const float* weights) {
    const int C = model.config.channels, V = model.config.vocab_size, Vp = model.config.padded_vocab_size;
    auto& a = model.acts;
    const auto* wte = model.params.wte;
    double weight_sum = 0;
    for (int i = 0; i < R; i++) weight_sum += weights[i];
    model.classifier_weight_sum = weight_sum;
    if (R > 0) {
        Backend::upload(model.targets, targets, R);
        Backend::upload(model.loss_weights, weights, R);
    }
    if (R > 0 && model.logits_chunk_rows <= 0) {
        model.base_matmul_forward(a.logits, X, wte, nullptr, R, C, Vp);  // tied output embedding
        Backend::classifier_forward(a.losses, a.logits, model.targets, R, V, Vp);
    } else if (R > 0) {
        auto* dwte = model.frozen_base ? nullptr : model.ensure_classifier_dwte();
        Backend::zero(dX, size_t(R) * C);
        for (int r = 0; r < R; r += model.logits_chunk_rows) {
            const int rows = std::min(model.logits_chunk_rows, R - r);
            const auto* x = X + size_t(r) * C;
            model.base_matmul_forward(a.logits, x, wte, nullptr, rows, C, Vp);
            Backend::classifier_forward_backward(a.losses + r, a.logits, a.logits, model.targets + r,
                                                 model.loss_weights + r, weight_sum, rows, V, Vp);
            Backend::matmul_backward(dX + size_t(r) * C, dwte, nullptr, a.logits, x, wte, rows, C, Vp);
        }
    }
    std::vector<float>& losses = model.host_losses;
    losses.resize(size_t(R));
    if (R > 0) Backend::download(losses.data(), a.losses, R);
    double weighted = 0;
    for (int i = 0; i < R; i++) weighted += weights[i] * losses[i];
    model.weight_sum = weight_sum;
    model.weighted_loss_sum = weighted;
    model.mean_loss = weight_sum > 0 ? float(weighted / weight_sum) : 0.0f;
}

// Forward pass on host token ids inputs (B,T). With targets (B,T), also the per-position losses and the
// weighted mean loss (loss_weights (B,T), null = all ones; weight 0 ignores a position).
template <class Backend>
void gpt2_forward(GPT2<Backend>& model, const int* inputs, const int* targets, const float* loss_weights, int B,
                  int T) {
    const GPT2Config& c = model.config;
    if (B <= 0 || T <= 0 || T > c.max_seq_len)
        fail("forward: batch " + std::to_string(B) + "x" + std::to_string(T) + " does not fit max_seq_len " +
             std::to_string(c.max_seq_len));
    const int L = c.num_layers, C = c.channels, NH = c.num_heads, V = c.vocab_size, Vp = c.padded_vocab_size;
    const int N = B * T;
    // every input is checked before anything is computed
    check_token_ids(inputs, N, V, "inputs");
    if (targets) {
        check_token_ids(targets, N, V, "targets");
        if (loss_weights) model.host_loss_weights.assign(loss_weights, loss_weights + N);
        else model.host_loss_weights.assign(N, 1.0f);
        for (int i = 0; i < N; i++)
            if (!(model.host_loss_weights[i] >= 0) || !std::isfinite(model.host_loss_weights[i]))
                fail("loss weight " + std::to_string(model.host_loss_weights[i]) + " at position " +
                     std::to_string(i) + " must be finite and >= 0");
    }
    model.ensure_activations(B, T);
    model.logits_hold_gradient = false;
    if (model.lora) model.lora->ensure_rows(N);
    Backend::upload(model.inputs, inputs, N);
    // the adapters' term at one linear of layer l (nothing without adapters or for a module they leave alone)
    auto adapt = [&](int l, int module, auto* out, const auto* inp) {
        if (model.lora) lora_module_forward(*model.lora, l, module, out, inp, N);
    };

    auto& p = model.params;
    auto& a = model.acts;
    Backend::encoder_forward(a.encoded, model.inputs, p.wte, p.wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        const auto* residual = l == 0 ? a.encoded : a.residual3 + size_t(l - 1) * N * C;
        auto* ln1 = layer_slice(a.ln1, model.kept.ln1, l, size_t(N) * C);
        auto* qkv = a.qkv + size_t(l) * N * 3 * C;
        auto* atty = a.atty + size_t(l) * N * C;
        auto* att = a.att + l * Backend::attention_state_size(B, NH, T);  // probabilities or log-sum-exp
        auto* attproj = a.attproj;                                          // one layer's
        auto* residual2 = a.residual2 + size_t(l) * N * C;
        auto* ln2 = layer_slice(a.ln2, model.kept.ln2, l, size_t(N) * C);
        auto* fch = a.fch + size_t(l) * N * 4 * C;
        auto* fch_gelu = layer_slice(a.fch_gelu, model.kept.fch_gelu, l, size_t(N) * 4 * C);
        auto* fcproj = a.fcproj;  // one layer's
        auto* residual3 = a.residual3 + size_t(l) * N * C;

        Backend::layernorm_forward(ln1, a.ln1_mean + l * N, a.ln1_rstd + l * N, residual, p.ln1w + l * C,
                                   p.ln1b + l * C, N, C);
        model.base_matmul_forward(qkv, ln1, p.qkvw + size_t(l) * 3 * C * C, p.qkvb + l * 3 * C, N, C, 3 * C);
        adapt(l, LORA_QKV, qkv, ln1);
        Backend::attention_forward(atty, att, qkv, B, T, C, NH);
        model.base_matmul_forward(attproj, atty, p.attprojw + size_t(l) * C * C, p.attprojb + l * C, N, C, C);
        adapt(l, LORA_ATTN_PROJ, attproj, atty);
        Backend::fused_residual_layernorm_forward(residual2, ln2, a.ln2_mean + l * N, a.ln2_rstd + l * N, residual,
                                                  attproj, p.ln2w + l * C, p.ln2b + l * C, N, C);
        model.base_matmul_forward(fch, ln2, p.fcw + size_t(l) * 4 * C * C, p.fcb + l * 4 * C, N, C, 4 * C);
        adapt(l, LORA_FC, fch, ln2);
        Backend::gelu_forward(fch_gelu, fch, size_t(N) * 4 * C);
        model.base_matmul_forward(fcproj, fch_gelu, p.fcprojw + size_t(l) * C * 4 * C, p.fcprojb + l * C, N, 4 * C,
                                  C);
        adapt(l, LORA_FC_PROJ, fcproj, fch_gelu);
        Backend::residual_forward(residual3, residual2, fcproj, size_t(N) * C);
    }
    const auto* last = a.residual3 + size_t(L - 1) * N * C;
    Backend::layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, last, p.lnfw, p.lnfb, N, C);
    model.answer_rows.clear();
    model.host_losses.clear();
    if (model.sparse_logits && model.frozen_base && targets) {
        // only the rows of nonzero weight: gather them (row copy = row + zeros), then the classifier on K rows
        for (int i = 0; i < N; i++)
            if (model.host_loss_weights[i] > 0) model.answer_rows.push_back(i);
        const int K = int(model.answer_rows.size());
        model.ensure_answer_rows(K);
        std::vector<int> answer_targets(K);
        std::vector<float> answer_weights(K);
        for (int k = 0; k < K; k++) {
            const int i = model.answer_rows[k];
            Backend::residual_forward(model.answer_lnf + size_t(k) * C, a.lnf + size_t(i) * C, model.zero_row, C);
            answer_targets[k] = targets[i];
            answer_weights[k] = model.host_loss_weights[i];
        }
        gpt2_classifier_forward(model, model.answer_lnf, model.answer_dlnf, K, answer_targets.data(),
                                answer_weights.data());
        return;
    }
    model.mean_loss = -1;
    // a forward for the hidden states only: no logits without targets when they are gathered or chunked
    if (!targets && ((model.sparse_logits && model.frozen_base) || model.logits_chunk_rows > 0)) return;
    if (!targets) {
        model.base_matmul_forward(a.logits, a.lnf, p.wte, nullptr, N, C, Vp);  // tied output embedding
        return;
    }
    gpt2_classifier_forward(model, a.lnf, model.grads_acts.lnf, N, targets, model.host_loss_weights.data());
}

// Zeroes the parameter gradients, allocating them first; a frozen base without gradients gets none.
template <class Backend>
void gpt2_zero_grad(GPT2<Backend>& model) {
    if (model.frozen_base && !model.gradients_memory) return;
    model.ensure_gradients();
    Backend::zero(model.gradients_memory, model.num_parameters);
}

// Accumulates the gradient of the last forward's mean loss into model.grads (allocated and zeroed when missing;
// none with a frozen base) and into the adapters' gradients.
template <class Backend>
void gpt2_backward(GPT2<Backend>& model) {
    if (model.mean_loss < 0) fail("backward: the last forward had no targets");
    const GPT2Config& c = model.config;
    const int B = model.batch_size, T = model.seq_len;
    const int L = c.num_layers, C = c.channels, NH = c.num_heads, V = c.vocab_size, Vp = c.padded_vocab_size;
    const int N = B * T;
    using real = typename Backend::real;
    auto& p = model.params;
    auto& a = model.acts;
    auto& d = model.grads_acts;
    // with a frozen base every parameter gradient pointer is null, so the kernels skip those products
    if (!model.frozen_base) model.ensure_gradients();
    ParameterTensors<real> g = model.frozen_base ? ParameterTensors<real>{} : model.grads;
    auto at = [](real* tensor, size_t offset) { return tensor ? tensor + offset : nullptr; };  // a layer's slice
    // the adapters' part of the backward at one linear of layer l: dinp += ..., and the adapters' gradients
    auto adapt = [&](int l, int module, auto* dinp, const auto* dout, const auto* inp) {
        if (model.lora) lora_module_backward(*model.lora, l, module, dinp, dout, inp, N);
    };
    if (model.logits_hold_gradient)
        fail("backward: the last forward was used by a backward already; run the forward again");
    model.logits_hold_gradient = true;
    const size_t NC = size_t(N) * C;

    // The classifier on R rows X: all of them, or the gathered answer rows (their gradient dX is scattered back
    // below; d.lnf is zero elsewhere).
    const bool gathered = model.sparse_logits && model.frozen_base;
    const int R = gathered ? int(model.answer_rows.size()) : N;
    const real* X = gathered ? model.answer_lnf : a.lnf;
    real* dX = gathered ? model.answer_dlnf : d.lnf;
    Backend::zero(d.stream, 2 * NC);  // both halves of the residual stream's gradient
    if (model.logits_chunk_rows > 0) {
        // the forward left dX (and classifier_dwte), with dlogits divided by its own weight sum; data parallelism
        // (gpt2_global_loss) makes the global one count
        if (gathered) Backend::zero(d.lnf, NC);
        const size_t wte_size = size_t(Vp) * C;
        if (model.weight_sum > 0 && model.weight_sum != model.classifier_weight_sum) {
            const double factor = model.classifier_weight_sum / model.weight_sum;
            Backend::scale(dX, factor, size_t(R) * C);
            if (g.wte) Backend::scale(model.classifier_dwte, factor, wte_size);
        }
        if (g.wte) Backend::residual_forward(g.wte, g.wte, model.classifier_dwte, wte_size);
    } else {
        // the classifier's backward writes dlogits over the logits
        Backend::zero(d.lnf, NC);
        real* dlogits = a.logits;
        if (R > 0) {
            Backend::classifier_backward(dlogits, a.logits, model.targets, model.loss_weights, model.weight_sum, R, V,
                                         Vp);
            if (gathered) Backend::zero(dX, size_t(R) * C);
            Backend::matmul_backward(dX, g.wte, nullptr, dlogits, X, p.wte, R, C, Vp);
        }
    }
    if (gathered)
        for (int k = 0; k < R; k++) {
            real* row = d.lnf + size_t(model.answer_rows[k]) * C;
            Backend::residual_forward(row, row, model.answer_dlnf + size_t(k) * C, C);
        }
    if (model.extra_dlnf) Backend::residual_forward(d.lnf, d.lnf, model.extra_dlnf, NC);  // d.lnf += extra
    const auto* last = a.residual3 + size_t(L - 1) * NC;
    Backend::layernorm_backward(d.output_of(L - 1, NC), g.lnfw, g.lnfb, d.lnf, last, p.lnfw, a.lnf_mean, a.lnf_rstd,
                                N, C);

    const ActivationKeep& kept = model.kept;
    for (int l = L - 1; l >= 0; l--) {
        const auto* residual = l == 0 ? a.encoded : a.residual3 + size_t(l - 1) * NC;
        real* doutput = d.output_of(l, NC);  // filled by the layer above (or the final layer norm)
        real* dresidual = d.input_of(l, NC);
        Backend::zero(dresidual, NC);
        Backend::zero(d.layer, LAYER_GRADIENT_WIDTH * NC);
        const size_t nc = size_t(l) * NC, n3c = 3 * nc, n4c = 4 * nc;
        const size_t att_offset = l * Backend::attention_state_size(B, NH, T);
        const auto* ln1 = layer_slice(a.ln1, kept.ln1, l, NC);
        const auto* ln2 = layer_slice(a.ln2, kept.ln2, l, NC);
        const auto* fch_gelu = layer_slice(a.fch_gelu, kept.fch_gelu, l, 4 * NC);

        Backend::residual_backward(d.residual2, d.fcproj, doutput, NC);
        Backend::matmul_backward(d.fch_gelu, at(g.fcprojw, size_t(l) * C * 4 * C), at(g.fcprojb, l * C), d.fcproj,
                                 fch_gelu, p.fcprojw + size_t(l) * C * 4 * C, N, 4 * C, C);
        adapt(l, LORA_FC_PROJ, d.fch_gelu, d.fcproj, fch_gelu);
        Backend::gelu_backward(d.fch, a.fch + n4c, d.fch_gelu, 4 * NC);
        Backend::matmul_backward(d.ln2, at(g.fcw, size_t(l) * 4 * C * C), at(g.fcb, l * 4 * C), d.fch, ln2,
                                 p.fcw + size_t(l) * 4 * C * C, N, C, 4 * C);
        adapt(l, LORA_FC, d.ln2, d.fch, ln2);
        Backend::layernorm_backward(d.residual2, at(g.ln2w, l * C), at(g.ln2b, l * C), d.ln2, a.residual2 + nc,
                                    p.ln2w + l * C, a.ln2_mean + l * N, a.ln2_rstd + l * N, N, C);
        Backend::residual_backward(dresidual, d.attproj, d.residual2, NC);
        Backend::matmul_backward(d.atty, at(g.attprojw, size_t(l) * C * C), at(g.attprojb, l * C), d.attproj,
                                 a.atty + nc, p.attprojw + size_t(l) * C * C, N, C, C);
        adapt(l, LORA_ATTN_PROJ, d.atty, d.attproj, a.atty + nc);
        Backend::attention_backward(d.qkv, d.atty, a.qkv + n3c, a.atty + nc, a.att + att_offset, B, T, C, NH);
        Backend::matmul_backward(d.ln1, at(g.qkvw, size_t(l) * 3 * C * C), at(g.qkvb, l * 3 * C), d.qkv, ln1,
                                 p.qkvw + size_t(l) * 3 * C * C, N, C, 3 * C);
        adapt(l, LORA_QKV, d.ln1, d.qkv, ln1);
        Backend::layernorm_backward(dresidual, at(g.ln1w, l * C), at(g.ln1b, l * C), d.ln1, residual,
                                    p.ln1w + l * C, a.ln1_mean + l * N, a.ln1_rstd + l * N, N, C);
    }
    if (!model.frozen_base) Backend::encoder_backward(g.wte, g.wpe, d.input_of(0, NC), model.inputs, B, T, C);
}

// The global L2 norm of all gradients.
template <class Backend>
double gpt2_grad_norm(const GPT2<Backend>& model) {
    model.require_gradients("grad_norm");
    return std::sqrt(Backend::sum_of_squares(model.gradients_memory, model.num_parameters));
}

// One AdamW step (t = 1-based step count) after clipping the gradients to global norm settings.grad_clip,
// as torch.nn.utils.clip_grad_norm_: scale = min(1, clip / (norm + 1e-6)). Returns the norm before clipping.
template <class Backend>
double gpt2_update(GPT2<Backend>& model, const AdamWSettings& settings, int t) {
    using real = typename GPT2<Backend>::real;
    if (!model.adam_m) {
        model.adam_m = Backend::template allocate<real>(model.num_parameters);
        model.adam_v = Backend::template allocate<real>(model.num_parameters);
    }
    double norm = gpt2_grad_norm(model);
    if (!std::isfinite(norm)) fail("update: the gradient norm is not finite (" + std::to_string(norm) + ")");
    float scale = 1.0f;
    if (settings.grad_clip > 0) scale = float(std::min(1.0, settings.grad_clip / (norm + 1e-6)));
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        float weight_decay = parameter_is_matrix(i) ? settings.weight_decay : 0.0f;
        Backend::adamw_update(model.parameters_memory + offset, model.gradients_memory + offset, model.adam_m + offset,
                              model.adam_v + offset, model.parameter_sizes[i], settings.learning_rate, settings.beta1,
                              settings.beta2, settings.eps, weight_decay, t, scale);
        offset += model.parameter_sizes[i];
    }
    return norm;
}
