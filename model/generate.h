// Greedy decoding with a KV cache (lora/METHODS.md section 2), on either backend, with the model's
// adapters (no dropout). A batch of sequences advances in lockstep, one position per step: at step s every
// sequence feeds its token at position s (a prompt token while s is inside its prompt, else the token it
// generated last), each layer appends that token's key and value to its cache and attends over positions 0..s,
// and the argmax of the logits at the prompt's last position and after is the next generated token. The prompt
// is thus read one token at a time (the same per-step work as generation): simple, and on the CPU no slower.
//
// And label ranking (label_scores, at the end): for a closed set of answers, the log-probability of each after a
// prompt, from one teacher-forced forward over (prompt, label) rows built exactly as training rows.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

#include "data/cl_batches.h"
#include "model/gpt2.h"

// The buffers of one decoding batch of B sequences: one row per sequence, plus the per-layer KV caches.
template <class Backend>
struct DecodeBuffers {
    using real = typename Backend::real;
    int B = 0, max_T = 0;
    real* memory = nullptr;
    real *x, *ln, *mean, *rstd, *qkv, *atty, *proj, *residual2, *fch, *fch_gelu, *fcproj, *logits;
    real *key_cache, *value_cache;  // (L, B, max_T, C) each
    int *tokens, *next;             // (B)

    // max_T: the positions the caches hold (0: the model's context)
    DecodeBuffers(const GPT2Config& c, int B, int max_T = 0) : B(B), max_T(max_T > 0 ? max_T : c.max_seq_len) {
        const size_t C = c.channels, L = c.num_layers, rows = B;
        const size_t sizes[] = {rows * C, rows * C, rows, rows, rows * 3 * C, rows * C, rows * C, rows * C,
                                rows * 4 * C, rows * 4 * C, rows * C, rows * c.padded_vocab_size,
                                L * rows * max_T * C, L * rows * max_T * C};
        real** targets[] = {&x, &ln, &mean, &rstd, &qkv, &atty, &proj, &residual2,
                            &fch, &fch_gelu, &fcproj, &logits, &key_cache, &value_cache};
        size_t total = 0;
        for (size_t s : sizes) total += s;
        memory = Backend::template allocate<real>(total);
        size_t offset = 0;
        for (size_t i = 0; i < std::size(sizes); i++) {
            *targets[i] = memory + offset;
            offset += sizes[i];
        }
        tokens = Backend::template allocate<int>(rows);
        next = Backend::template allocate<int>(rows);
    }
    DecodeBuffers(const DecodeBuffers&) = delete;
    DecodeBuffers& operator=(const DecodeBuffers&) = delete;
    ~DecodeBuffers() {
        Backend::release(memory);
        Backend::release(tokens);
        Backend::release(next);
    }
};

// One step: host tokens (B) at `position` of each sequence in, the greedy next tokens (B) out (host).
template <class Backend>
void gpt2_decode_step(GPT2<Backend>& model, DecodeBuffers<Backend>& s, const int* tokens, int position,
                      int* next_tokens, bool need_next = true) {
    const GPT2Config& c = model.config;
    const int B = s.B, L = c.num_layers, C = c.channels, NH = c.num_heads;
    if (position < 0 || position >= s.max_T)
        fail("decode: position " + std::to_string(position) + " is outside the context of " +
             std::to_string(s.max_T));
    check_token_ids(tokens, B, c.vocab_size, "decode tokens");
    auto& p = model.params;
    LoraAdapters<Backend>* lora = model.lora;
    if (lora) lora->ensure_rows(B);
    auto adapt = [&](int l, int module, auto* out, const auto* inp) {
        if (lora) lora_module_forward(*lora, l, module, out, inp, B);
    };
    Backend::upload(s.tokens, tokens, B);
    // x (B,C) = wte[token] + wpe[position]: the encoder with T = 1 and the position table shifted to the position
    Backend::encoder_forward(s.x, s.tokens, p.wte, p.wpe + size_t(position) * C, B, 1, C);
    for (int l = 0; l < L; l++) {
        const size_t cache = size_t(l) * B * s.max_T * C;
        Backend::layernorm_forward(s.ln, s.mean, s.rstd, s.x, p.ln1w + l * C, p.ln1b + l * C, B, C);
        model.base_matmul_forward(s.qkv, s.ln, p.qkvw + size_t(l) * 3 * C * C, p.qkvb + l * 3 * C, B, C, 3 * C);
        adapt(l, LORA_QKV, s.qkv, s.ln);
        Backend::attention_step_forward(s.atty, s.key_cache + cache, s.value_cache + cache, s.qkv, position, B, C, NH,
                                        s.max_T);
        model.base_matmul_forward(s.proj, s.atty, p.attprojw + size_t(l) * C * C, p.attprojb + l * C, B, C, C);
        adapt(l, LORA_ATTN_PROJ, s.proj, s.atty);
        Backend::fused_residual_layernorm_forward(s.residual2, s.ln, s.mean, s.rstd, s.x, s.proj, p.ln2w + l * C,
                                                  p.ln2b + l * C, B, C);
        model.base_matmul_forward(s.fch, s.ln, p.fcw + size_t(l) * 4 * C * C, p.fcb + l * 4 * C, B, C, 4 * C);
        adapt(l, LORA_FC, s.fch, s.ln);
        Backend::gelu_forward(s.fch_gelu, s.fch, size_t(B) * 4 * C);
        model.base_matmul_forward(s.fcproj, s.fch_gelu, p.fcprojw + size_t(l) * C * 4 * C, p.fcprojb + l * C, B,
                                  4 * C, C);
        adapt(l, LORA_FC_PROJ, s.fcproj, s.fch_gelu);
        Backend::residual_forward(s.x, s.residual2, s.fcproj, size_t(B) * C);  // x = the block's output
    }
    if (!need_next) return;  // every sequence is still inside its prompt: only the KV caches were needed
    Backend::layernorm_forward(s.ln, s.mean, s.rstd, s.x, p.lnfw, p.lnfb, B, C);
    model.base_matmul_forward(s.logits, s.ln, p.wte, nullptr, B, C, c.padded_vocab_size);
    Backend::argmax_rows(s.next, s.logits, B, c.vocab_size, c.padded_vocab_size);
    Backend::download(next_tokens, s.next, B);
}

struct GenerationSettings {
    int max_new_tokens = 50;
    int batch_size = 16;
    std::vector<bool> stops;  // (V) true for the tokens that end an answer (<|endoftext|>, any with a newline)
    // The inputs a sequence may use, prompt and generated tokens together: `train cl` passes its run's max_T
    // (--max-seq-len, capped by the context), the T its training rows have. 0 (or more than the context): the
    // model's context.
    int max_T = 0;
};

// The inputs a generated sequence may use: settings.max_T capped by the model's context (0: the context).
inline int generation_inputs(const GenerationSettings& settings, const GPT2Config& config) {
    return settings.max_T > 0 ? std::min(settings.max_T, config.max_seq_len) : config.max_seq_len;
}

// The room kept after the prompt within T inputs, counted as training counts an answer (data/cl_batches.h): the
// answer's tokens, at most max_new_tokens and a quarter of T (at least one), plus one for its stop token (the
// eot a trained answer ends with). So a prompt is cut to its last prompt_tokens_kept(P, room, T) tokens, as a
// training row cuts it before an answer of `room` tokens, and the answer with its stop token fits in T inputs
// exactly as a trained one does. Needs T >= 2 (then 2 <= room <= T).
inline int generation_answer_room(const GenerationSettings& settings, int T) {
    return 1 + std::max(1, std::min(settings.max_new_tokens, T / 4));
}

// The prompt tokens greedy decoding feeds for this prompt: its last prompt_tokens_kept(P, room, T) tokens.
inline std::vector<int> generation_prompt(const std::vector<int>& prompt, const GenerationSettings& settings,
                                          const GPT2Config& config) {
    const int T = generation_inputs(settings, config);
    const int keep = prompt_tokens_kept(int(prompt.size()), generation_answer_room(settings, T), T);
    return std::vector<int>(prompt.end() - keep, prompt.end());
}

// Greedy continuations of each prompt: the generated tokens, without the stop token that ended them (if any).
// A sequence uses at most T = generation_inputs(settings, model.config) inputs: the prompt keeps its end
// (generation_prompt), leaving generation_answer_room(settings, T) positions for the answer and its stop token;
// a sequence ends at a stop token, after max_new_tokens tokens, or at T inputs.
// Sequences are batched in order of prompt length, so a batch's sequences start generating at nearby steps.
// before_batch(rows) is called before each batch with the prompts' indices (a method sets per-row weights there).
template <class Backend, class BeforeBatch>
std::vector<std::vector<int>> greedy_generate(GPT2<Backend>& model, const std::vector<std::vector<int>>& prompts,
                                              const GenerationSettings& settings, BeforeBatch before_batch) {
    const int max_T = generation_inputs(settings, model.config);
    if (max_T < 2)
        fail("generate: a context of " + std::to_string(max_T) + " token holds no prompt token before the answer "
             "(max_seq_len must be >= 2)");
    if (int(settings.stops.size()) != model.config.vocab_size)
        fail("generate: the stop-token table has " + std::to_string(settings.stops.size()) + " entries, expected " +
             std::to_string(model.config.vocab_size));
    std::vector<std::vector<int>> outputs(prompts.size());
    std::vector<size_t> order(prompts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return prompts[a].size() < prompts[b].size(); });
    LoraAdapters<Backend>* const lora = model.lora;  // before_batch may point model.lora elsewhere (I-LoRA)
    const bool was_training = lora && lora->training;
    if (lora) lora->training = false;
    for (size_t first = 0; first < order.size(); first += settings.batch_size) {
        const int B = int(std::min<size_t>(settings.batch_size, order.size() - first));
        std::vector<size_t> rows(order.begin() + first, order.begin() + first + B);
        std::vector<std::vector<int>> batch(B);
        for (int b = 0; b < B; b++) {
            const std::vector<int>& prompt = prompts[rows[b]];
            if (prompt.empty()) fail("generate: prompt " + std::to_string(rows[b]) + " is empty");
            batch[b] = generation_prompt(prompt, settings, model.config);
        }
        before_batch(rows);
        DecodeBuffers<Backend> buffers(model.config, B, max_T);
        std::vector<int> tokens(B), next(B);
        std::vector<bool> done(B, false);
        int remaining = B;
        for (int position = 0; position < max_T && remaining > 0; position++) {
            for (int b = 0; b < B; b++) {
                const int length = int(batch[b].size());
                const std::vector<int>& out = outputs[rows[b]];  // empty only for a sequence already done
                tokens[b] = position < length ? batch[b][position] : out.empty() ? batch[b].back() : out.back();
            }
            // the classifier (most of a small model's work) only once some sequence needs its next token
            bool need_next = false;
            for (int b = 0; b < B; b++) need_next = need_next || (!done[b] && position >= int(batch[b].size()) - 1);
            gpt2_decode_step(model, buffers, tokens.data(), position, next.data(), need_next);
            for (int b = 0; b < B; b++) {
                if (done[b] || position < int(batch[b].size()) - 1) continue;
                std::vector<int>& out = outputs[rows[b]];
                const bool stop = settings.stops[next[b]];
                if (!stop) out.push_back(next[b]);
                if (stop || int(out.size()) >= settings.max_new_tokens || position + 1 >= max_T) {
                    done[b] = true;
                    remaining--;
                }
            }
        }
    }
    if (lora) lora->training = was_training;
    return outputs;
}

// ---- label ranking ----

struct RankingSettings {
    int batch_size = 32;  // (prompt, label) rows per forward
    // The run's max_T: the row of (prompt, label) is the training row of that example at this max_T (the prompt cut
    // by prompt_tokens_kept exactly as training cuts it before that label; padded to ranking_batch_length). 0 (or
    // more than the context): the model's context.
    int max_T = 0;
    // Data parallelism: this process runs the batches first_batch, first_batch + batch_stride, ... of the one
    // sequence of batches every process forms alike; the scores of the other batches' rows are left 0, for the
    // caller to add up over the processes (each score then comes from the very batch a single process runs).
    int first_batch = 0, batch_stride = 1;
};

// The T of a ranking batch whose longest row needs `longest` inputs: longest rounded up to a multiple of a quarter
// of its highest power of two (at most 25% more; 100 -> 112, 60 -> 64, 1000 -> 1024), capped at max_T. A batch
// of another (B, T) reallocates the model's activations, whose logits with the classifier whole are (B*T, Vp)
// (412 MB at B 16, T 128 for GPT-2's vocabulary): one per batch cost more than the forwards of a small model, while
// a handful of lengths per task costs little padding. The rows are make_training_batch's (fill_training_row at this
// T: a row is cut only where it exceeds max_T, exactly as at training) with more padding, which no earlier
// position sees.
inline int ranking_batch_length(int longest, int max_T) {
    int power = 1;
    while (power * 2 <= longest) power *= 2;
    const int granule = std::max(1, power / 4);
    return std::min(max_T, (longest + granule - 1) / granule * granule);
}

// scores[p][l] = log P(labels[l] | prompts[p]): the summed log-probability of the label's tokens after the prompt,
// each given the prompt and the label's tokens before it (teacher forcing). A label is token ids exactly as
// encode_examples (data/cl_batches.h) encodes an answer for training: its text's tokens followed by
// <|endoftext|>. The eot is scored too, so a score is that of "this label, then stop" (a label that is the start of
// a longer one does not share the longer one's probability). A label longer than T keeps its first T tokens, as
// its training row does.
//
// The pairs, prompt-major (pair k = (prompt k / L, label k % L)), are sorted by their training_length (stable) and
// run batch_size rows at a time: each batch holds the training rows of its (prompt, label) examples at max_T
// (fill_training_row at T = ranking_batch_length of its longest row, the prompt cut as training cuts it), a
// full forward with those rows' targets and loss weights (1 on the label's positions), on the model's sparse-logits
// path (only the label positions get logits, gathered: GPT2::sparse_logits; it needs a frozen base, else every
// position gets them), and the score of a row is minus the sum of its positions' losses (GPT2::host_losses). The
// classifier keeps the model's chunking (a chunked forward pays the classifier's backward, but only on the few
// gathered label rows, and its logits buffer stays one chunk): sparse_logits is set for the ranking and restored
// after, and so is the adapters' training flag (no dropout). before_batch(rows, batch) is called before each forward with the rows' examples and the batch (a
// method sets per-row weights there, from the prompts).
template <class Backend, class BeforeBatch>
std::vector<std::vector<double>> label_scores(GPT2<Backend>& model, const std::vector<std::vector<int>>& prompts,
                                              const std::vector<std::vector<int>>& labels,
                                              const RankingSettings& settings, BeforeBatch before_batch) {
    const int max_T = settings.max_T > 0 ? std::min(settings.max_T, model.config.max_seq_len)
                                         : model.config.max_seq_len;
    if (settings.batch_size < 1 || settings.first_batch < 0 || settings.batch_stride < 1)
        fail("rank labels: the batch size and the batch stride must be >= 1, the first batch >= 0");
    const size_t P = prompts.size(), L = labels.size();
    std::vector<std::vector<double>> scores(P, std::vector<double>(L, 0.0));
    if (P == 0 || L == 0) return scores;
    std::vector<EncodedExample> pairs(P * L);
    for (size_t k = 0; k < pairs.size(); k++) {
        const std::vector<int>& prompt = prompts[k / L];
        const std::vector<int>& label = labels[k % L];
        if (prompt.empty()) fail("rank labels: prompt " + std::to_string(k / L) + " is empty");
        if (label.empty()) fail("rank labels: label " + std::to_string(k % L) + " has no tokens");
        pairs[k].prompt = prompt;
        pairs[k].answer = label;
    }
    std::vector<size_t> order(pairs.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return training_length(pairs[a]) < training_length(pairs[b]); });

    // the model's settings for the ranking, restored when it ends (or fails)
    struct Restore {
        GPT2<Backend>& model;
        LoraAdapters<Backend>* lora;  // before_batch may point model.lora elsewhere (I-LoRA)
        bool was_training, sparse_logits;
        int logits_chunk_rows;
        ~Restore() {
            if (lora) lora->training = was_training;
            model.sparse_logits = sparse_logits;
            model.logits_chunk_rows = logits_chunk_rows;
        }
    } restore{model, model.lora, model.lora && model.lora->training, model.sparse_logits, model.logits_chunk_rows};
    if (model.lora) model.lora->training = false;
    model.sparse_logits = true;

    const size_t batch_size = size_t(settings.batch_size);
    for (size_t n = size_t(settings.first_batch); n * batch_size < order.size(); n += size_t(settings.batch_stride)) {
        const size_t first = n * batch_size, end = std::min(order.size(), first + batch_size);
        std::vector<const EncodedExample*> rows;
        for (size_t i = first; i < end; i++) rows.push_back(&pairs[order[i]]);
        int longest = 1;
        for (const EncodedExample* e : rows) longest = std::max(longest, training_length(*e));
        TrainingBatch batch;  // make_training_batch's rows, at the bucketed T
        batch.B = int(rows.size());
        batch.T = ranking_batch_length(longest, max_T);
        batch.inputs.resize(size_t(batch.B) * batch.T);
        batch.targets.resize(size_t(batch.B) * batch.T);
        batch.loss_weights.resize(size_t(batch.B) * batch.T);
        for (int b = 0; b < batch.B; b++) fill_training_row(batch, b, *rows[b]);
        before_batch(static_cast<const std::vector<const EncodedExample*>&>(rows), batch);
        gpt2_forward(model, batch.inputs.data(), batch.targets.data(), batch.loss_weights.data(), batch.B, batch.T);
        // the losses' rows: the gathered positions of nonzero weight, or every position of (B,T)
        const bool gathered = model.sparse_logits && model.frozen_base;
        const size_t T = size_t(batch.T), N = size_t(batch.B) * T;
        const size_t R = gathered ? model.answer_rows.size() : N;
        if (model.host_losses.size() != R)
            fail("rank labels: the forward left " + std::to_string(model.host_losses.size()) + " losses, expected " +
                 std::to_string(R));
        for (size_t k = 0; k < R; k++) {
            const size_t position = gathered ? size_t(model.answer_rows[k]) : k;
            if (batch.loss_weights[position] <= 0) continue;
            const size_t pair = order[first + position / T];
            scores[pair / L][pair % L] -= double(model.host_losses[k]);
        }
    }
    return scores;
}
