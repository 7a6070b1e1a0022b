// GPT-2's forward, backward and AdamW update, written once as explicit call sequences over a kernel backend
// (CpuBackend<float|double>, and the CUDA backend), on the model that model/gpt2_model.h lays out.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "model/gpt2_model.h"
#include "model/lora_adapters.h"

// AdamW and clipping hyperparameters of one optimizer step.
struct AdamWSettings {
    float learning_rate = 3e-4f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;  // applied to the 2-D tensors only
    float grad_clip = 1.0f;     // global-norm clipping; 0 disables it
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
        Backend::upload(model.targets.data(), targets, R);
        Backend::upload(model.loss_weights.data(), weights, R);
    }
    if (R > 0 && model.logits_chunk_rows <= 0) {
        model.base_matmul_forward(a.logits, X, wte, nullptr, R, C, Vp);  // tied output embedding
        Backend::classifier_forward(a.losses, a.logits, model.targets.data(), R, V, Vp);
    } else if (R > 0) {
        auto* dwte = model.frozen_base ? nullptr : model.ensure_classifier_dwte();
        Backend::zero(dX, size_t(R) * C);
        for (int r = 0; r < R; r += model.logits_chunk_rows) {
            const int rows = std::min(model.logits_chunk_rows, R - r);
            const auto* x = X + size_t(r) * C;
            model.base_matmul_forward(a.logits, x, wte, nullptr, rows, C, Vp);
            Backend::classifier_forward_backward(a.losses + r, a.logits, a.logits, model.targets.data() + r,
                                                 model.loss_weights.data() + r, weight_sum, rows, V, Vp);
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

// Fails on a batch that does not fit, a token id out of range or a loss weight that is negative or not finite;
// keeps the loss weights (all ones when null) in model.host_loss_weights.
template <class Backend>
void gpt2_check_inputs(GPT2<Backend>& model, const int* inputs, const int* targets, const float* loss_weights, int B,
                       int T) {
    const GPT2Config& c = model.config;
    if (B <= 0 || T <= 0 || T > c.max_seq_len)
        fail("forward: batch " + std::to_string(B) + "x" + std::to_string(T) + " does not fit max_seq_len " +
             std::to_string(c.max_seq_len));
    const int N = B * T;
    check_token_ids(inputs, N, c.vocab_size, "inputs");
    if (!targets) return;
    check_token_ids(targets, N, c.vocab_size, "targets");
    if (loss_weights) model.host_loss_weights.assign(loss_weights, loss_weights + N);
    else model.host_loss_weights.assign(N, 1.0f);
    for (int i = 0; i < N; i++)
        if (!(model.host_loss_weights[i] >= 0) || !std::isfinite(model.host_loss_weights[i]))
            fail("loss weight " + std::to_string(model.host_loss_weights[i]) + " at position " + std::to_string(i) +
                 " must be finite and >= 0");
}

// The logits after the final layer norm (model.acts.lnf), and with targets the losses: over every position, or
// with sparse logits only over the gathered rows of nonzero weight (row copy = row + zeros). Without targets, the
// logits only where they are kept whole (not gathered, not chunked).
template <class Backend>
void gpt2_logits_forward(GPT2<Backend>& model, const int* targets) {
    const int N = model.batch_size * model.seq_len, C = model.config.channels;
    auto& a = model.acts;
    model.answer_rows.clear();
    model.host_losses.clear();
    if (model.sparse_logits && model.frozen_base && targets) {
        for (int i = 0; i < N; i++)
            if (model.host_loss_weights[i] > 0) model.answer_rows.push_back(i);
        const int K = int(model.answer_rows.size());
        model.ensure_answer_rows(K);
        std::vector<int> answer_targets(K);
        std::vector<float> answer_weights(K);
        for (int k = 0; k < K; k++) {
            const int i = model.answer_rows[k];
            Backend::residual_forward(model.answer_lnf.data() + size_t(k) * C, a.lnf + size_t(i) * C, model.zero_row,
                                      C);
            answer_targets[k] = targets[i];
            answer_weights[k] = model.host_loss_weights[i];
        }
        gpt2_classifier_forward(model, model.answer_lnf.data(), model.answer_dlnf.data(), K, answer_targets.data(),
                                answer_weights.data());
        return;
    }
    model.mean_loss = -1;
    // a forward for the hidden states only: no logits without targets when they are gathered or chunked
    if (!targets && ((model.sparse_logits && model.frozen_base) || model.logits_chunk_rows > 0)) return;
    if (!targets) {  // tied output embedding
        model.base_matmul_forward(a.logits, a.lnf, model.params.wte, nullptr, N, C, model.config.padded_vocab_size);
        return;
    }
    gpt2_classifier_forward(model, a.lnf, model.grads_acts.lnf, N, targets, model.host_loss_weights.data());
}

// Forward pass on host token ids inputs (B,T). With targets (B,T), also the per-position losses and the
// weighted mean loss (loss_weights (B,T), null = all ones; weight 0 ignores a position).
template <class Backend>
void gpt2_forward(GPT2<Backend>& model, const int* inputs, const int* targets, const float* loss_weights, int B,
                  int T) {
    const GPT2Config& c = model.config;
    gpt2_check_inputs(model, inputs, targets, loss_weights, B, T);  // before anything is computed
    const int L = c.num_layers, C = c.channels, NH = c.num_heads;
    const int N = B * T;
    model.ensure_activations(B, T);
    model.logits_hold_gradient = false;
    if (model.lora) model.lora->ensure_rows(N);
    Backend::upload(model.inputs.data(), inputs, N);
    // the adapters' term at one linear of layer l (nothing without adapters or for a module they leave alone)
    auto adapt = [&](int l, int module, auto* out, const auto* inp) {
        if (model.lora) lora_module_forward(*model.lora, l, module, out, inp, N);
    };

    auto& p = model.params;
    auto& a = model.acts;
    Backend::encoder_forward(a.encoded, model.inputs.data(), p.wte, p.wpe, B, T, C);
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
    gpt2_logits_forward(model, targets);
}

// Zeroes the parameter gradients, allocating them first; a frozen base without gradients gets none.
template <class Backend>
void gpt2_zero_grad(GPT2<Backend>& model) {
    if (model.frozen_base && !model.gradients_memory) return;
    model.ensure_gradients();
    Backend::zero(model.gradients_memory, model.num_parameters);
}

// The classifier's backward: d lnf (B*T, C) from the last forward's loss, and g_wte += its share when the base
// trains (null: frozen). On R rows X: all of them, or the gathered answer rows (their gradient dX is scattered back
// into d lnf, zero elsewhere).
template <class Backend>
void gpt2_classifier_backward(GPT2<Backend>& model, typename Backend::real* g_wte) {
    using real = typename Backend::real;
    const int C = model.config.channels, V = model.config.vocab_size, Vp = model.config.padded_vocab_size;
    const int N = model.batch_size * model.seq_len;
    const size_t NC = size_t(N) * C;
    auto& a = model.acts;
    auto& d = model.grads_acts;
    const bool gathered = model.sparse_logits && model.frozen_base;
    const int R = gathered ? int(model.answer_rows.size()) : N;
    const real* X = gathered ? model.answer_lnf.data() : a.lnf;
    real* dX = gathered ? model.answer_dlnf.data() : d.lnf;
    if (model.logits_chunk_rows > 0) {
        // the forward left dX (and classifier_dwte), with dlogits divided by its own weight sum; data parallelism
        // (gpt2_global_loss) makes the global one count
        if (gathered) Backend::zero(d.lnf, NC);
        const size_t wte_size = size_t(Vp) * C;
        if (model.weight_sum > 0 && model.weight_sum != model.classifier_weight_sum) {
            const double factor = model.classifier_weight_sum / model.weight_sum;
            Backend::scale(dX, factor, size_t(R) * C);
            if (g_wte) Backend::scale(model.classifier_dwte, factor, wte_size);
        }
        if (g_wte) Backend::residual_forward(g_wte, g_wte, model.classifier_dwte, wte_size);
    } else {
        // the classifier's backward writes dlogits over the logits
        Backend::zero(d.lnf, NC);
        real* dlogits = a.logits;
        if (R > 0) {
            Backend::classifier_backward(dlogits, a.logits, model.targets.data(), model.loss_weights.data(),
                                         model.weight_sum, R, V, Vp);
            if (gathered) Backend::zero(dX, size_t(R) * C);
            Backend::matmul_backward(dX, g_wte, nullptr, dlogits, X, model.params.wte, R, C, Vp);
        }
    }
    if (gathered)
        for (int k = 0; k < R; k++) {
            real* row = d.lnf + size_t(model.answer_rows[k]) * C;
            Backend::residual_forward(row, row, model.answer_dlnf.data() + size_t(k) * C, C);
        }
}

// Accumulates the gradient of the last forward's mean loss into model.grads (allocated and zeroed when missing;
// none with a frozen base) and into the adapters' gradients.
template <class Backend>
void gpt2_backward(GPT2<Backend>& model) {
    if (model.mean_loss < 0) fail("backward: the last forward had no targets");
    const GPT2Config& c = model.config;
    const int B = model.batch_size, T = model.seq_len;
    const int L = c.num_layers, C = c.channels, NH = c.num_heads;
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

    Backend::zero(d.stream, 2 * NC);  // both halves of the residual stream's gradient
    gpt2_classifier_backward(model, g.wte);
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
    if (!model.frozen_base) Backend::encoder_backward(g.wte, g.wpe, d.input_of(0, NC), model.inputs.data(), B, T, C);
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
