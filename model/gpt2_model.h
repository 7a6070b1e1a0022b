// What a GPT-2 holds: its parameters, their gradients and AdamW moments (allocated by the first use that needs
// them), the activations of the current batch and the buffers behind them, and the switches that choose how the
// forward and backward run (a frozen base, adapters, gathered or chunked logits, a bf16 base). What it does (the
// forward, backward and update as call sequences over a kernel backend) is model/gpt2.h. Every buffer lives in the
// backend's memory; the host sees only what it copies out.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "model/activations.h"
#include "model/bf16.h"
#include "model/gpt2_config.h"
#include "model/growing_buffer.h"
#include "model/lora_adapters.h"
#include "model/parameters.h"

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
    // that grow to the largest batch (ensure_activations, model/growing_buffer.h)
    int batch_size = 0, seq_len = 0;
    ActivationKeep kept;
    GrowingBuffer<Backend, real> activations_memory, activation_gradients_memory;
    ActivationTensors<real> acts;
    ActivationGradients<real> grads_acts;
    bool logits_hold_gradient = false;  // a backward has used the last forward (and overwritten its logits)
    GrowingBuffer<Backend, int> inputs, targets;  // (B,T)
    GrowingBuffer<Backend, float> loss_weights;   // (B,T)
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
    GrowingBuffer<Backend, real> answer_lnf;   // (K, C) the final hidden states at those positions
    GrowingBuffer<Backend, real> answer_dlnf;  // (K, C) their gradient
    real* zero_row = nullptr;                  // (C) zeros, to copy rows with residual_forward
    // A frozen base stored in bf16 for its forward products (mixed precision's storage: `train cl` and the step
    // benchmark set it with bf16 products on CUDA): a bf16 copy of the parameters, converted at the first forward
    // (a frozen base never changes after), and each linear's input rounded to bf16 just before its product, into
    // one product's scratch; the products then multiply bf16 operands (half the bytes of fp32) and accumulate in
    // fp32 (base_matmul_forward: every linear, the classifier, greedy decoding). The backward's products read the
    // fp32 weights, which stay. The CPU backend emulates it, as the reference of the CUDA path. Needs frozen_base.
    bool bf16_base = false;
    bf16_bits* parameters_bf16 = nullptr;  // (num_parameters) the parameters rounded to bf16, in the same layout
    GrowingBuffer<Backend, bf16_bits> product_input;  // one product's input, rounded to bf16

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
    ~GPT2() {  // (the growing buffers release themselves)
        Backend::release(zero_row);
        Backend::release(classifier_dwte);
        Backend::release(parameters_bf16);
        Backend::release(parameters_memory);
        Backend::release(gradients_memory);
        Backend::release(adam_m);
        Backend::release(adam_v);
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
        bf16_bits* input = product_input.reserve(count);
        Backend::to_bf16(input, inp, count);
        Backend::matmul_forward_bf16(out, input, parameters_bf16 + offset, bias, N, C, OC);
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
    // so far reuses them. Every activation is written by the forward before it is read.
    void ensure_activations(int B, int T) {
        const ActivationKeep keep = activations_to_keep(B, T);
        if (B == batch_size && T == seq_len && keep == kept) return;
        const size_t positions = size_t(B) * T;
        acts = carve_activations<Backend>(activations_memory.reserve(num_activations<Backend>(config, B, T, keep)),
                                          config, B, T, keep);
        grads_acts = carve_activation_gradients(
            activation_gradients_memory.reserve(num_activation_gradients(config, B, T)), config, B, T);
        inputs.reserve(positions), targets.reserve(positions), loss_weights.reserve(positions);
        kept = keep;
        batch_size = B, seq_len = T;
    }

    // Room for K gathered rows in answer_lnf and answer_dlnf, doubling (a few allocations over a run), and zero_row.
    void ensure_answer_rows(size_t K) {
        const size_t C = config.channels;
        if (!zero_row) {
            zero_row = Backend::template allocate<real>(C);
            Backend::zero(zero_row, C);
        }
        if (K * C <= answer_lnf.capacity()) return;
        const size_t rows = std::max(K, 2 * answer_lnf.capacity() / C);
        answer_lnf.reserve(rows * C);
        answer_dlnf.reserve(rows * C);
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
