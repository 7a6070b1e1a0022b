// Greedy decoding with a KV cache (../shared/docs/METHODS.md section 2), on either backend, with the model's
// adapters (no dropout). A batch of sequences advances in lockstep, one position per step: at step s every
// sequence feeds its token at position s (a prompt token while s is inside its prompt, else the token it
// generated last), each layer appends that token's key and value to its cache and attends over positions 0..s,
// and the argmax of the logits at the prompt's last position and after is the next generated token. The prompt
// is thus read one token at a time (the same per-step work as generation): simple, and on the CPU no slower.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

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

    DecodeBuffers(const GPT2Config& c, int B) : B(B), max_T(c.max_seq_len) {
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
};

// Greedy continuations of each prompt: the generated tokens, without the stop token that ended them (if any).
// A prompt longer than the context keeps its end; room for min(max_new_tokens, max_T / 4) tokens is kept after it.
// Sequences are batched in order of prompt length, so a batch's sequences start generating at nearby steps.
// before_batch(rows) is called before each batch with the prompts' indices (a method sets per-row weights there).
template <class Backend, class BeforeBatch>
std::vector<std::vector<int>> greedy_generate(GPT2<Backend>& model, const std::vector<std::vector<int>>& prompts,
                                              const GenerationSettings& settings, BeforeBatch before_batch) {
    const int max_T = model.config.max_seq_len;
    const int room = std::max(1, std::min(settings.max_new_tokens, max_T / 4));
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
    const bool was_training = model.lora && model.lora->training;
    if (model.lora) model.lora->training = false;
    for (size_t first = 0; first < order.size(); first += settings.batch_size) {
        const int B = int(std::min<size_t>(settings.batch_size, order.size() - first));
        std::vector<size_t> rows(order.begin() + first, order.begin() + first + B);
        std::vector<std::vector<int>> batch(B);
        for (int b = 0; b < B; b++) {
            const std::vector<int>& prompt = prompts[rows[b]];
            if (prompt.empty()) fail("generate: prompt " + std::to_string(rows[b]) + " is empty");
            size_t keep = std::min<size_t>(prompt.size(), size_t(max_T - room));
            batch[b].assign(prompt.end() - keep, prompt.end());
        }
        before_batch(rows);
        DecodeBuffers<Backend> buffers(model.config, B);
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
    if (model.lora) model.lora->training = was_training;
    return outputs;
}
