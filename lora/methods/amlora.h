// AM-LoRA (lora/METHODS.md section 9, a reconstructed design): IncLoRA's structure (a new branch per task,
// the old ones frozen) with an attention module per branch and adapted linear that weighs each branch's output per
// token, and a penalty that makes the weights sparse:
//   o_i = s B_i A_i h,  w_i = sigmoid(v_i^T tanh(D_i o_i)),  y = W0 h + sum_i w_i o_i
//   L = CE + lambda_sp * mean over tokens and linears of sum_i w_i          (--amlora-norm softmax: w = softmax of
//                                                                             the scores, the entropy penalised)
// at training and evaluation alike (no task id: the weights come from the token's own activations). Trainable at
// task t: A_t, B_t, D_t, v_t. The attention is the adapters' LoraMixture path (lora/attention_mixture.h; kernels
// lora/cpu/attention_mixture.h and lora/cuda/attention_mixture.cu).
//
// Per step: before_forward sets the penalty's row weights 1 / (tokens * linears) on the rows' real positions (the
// prompt and the answer; padding weighs 0), so that the penalty is the mean over tokens and linears of the L1 norm
// of w; before_backward zeroes the attention's gradients; the backward adds the penalty's gradient at each linear;
// extra_loss sums the attention's gradients over the ranks (data parallelism) and returns the penalty; extra_update
// is AdamW on D_t, v_t (own state, fresh each task).
// Saved state (adapter file): "amlora/attention", every linear's D | v (lora/attention_mixture.h's layout).
// Diagnostics: IncLoRA's branch diagnostics, attention_<i>_on_<j> = the mean w_i over task j's test examples (real
// positions of prompt and answer, teacher-forced, every linear; i, j <= t, 1-based), attention_mean = the mean of
// every weight of every seen task, attention_sparsity = the fraction of them below 0.1.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "lora/attention_mixture.h"
#include "lora/continual.h"
#include "lora/methods/inc_lora.h"

template <class Backend>
struct AmLora : IncLora<Backend> {
    using Context = ContinualContext<Backend>;

    explicit AmLora(const ContinualOptions& options)
        : mixture(options.method.amlora_attention_dim, options.method.amlora_norm == "softmax",
                  options.method.amlora_lambda),
          seed(options.seed), max_seq_len(options.max_seq_len) {
        const MethodOptions& m = options.method;
        if (m.amlora_attention_dim < 1) fail("amlora: the attention size --amlora-attention-dim must be >= 1");
        if (!(m.amlora_lambda >= 0)) fail("amlora: --amlora-lambda must be >= 0");
        if (m.amlora_norm != "sigmoid" && m.amlora_norm != "softmax")
            fail("amlora: --amlora-norm is 'sigmoid' or 'softmax', got '" + m.amlora_norm + "'");
    }

    void task_start(Context& context) override {
        IncLora<Backend>::task_start(context);
        mixture.add_branch(context.adapters, seed ^ (0xBB67AE8584CAA73BULL * uint64_t(context.task + 1)));
        mixture.reset_optimizer();
        context.adapters.mixture = &mixture;
    }

    void before_forward(Context& context, const std::vector<const EncodedExample*>& rows, int T) override {
        context.adapters.mixture = &mixture;
        if (!context.batch) {  // evaluation: no penalty
            if (mixture.row_weights) mixture.set_row_weights({});
            return;
        }
        // data parallelism: a rank left without rows holds one row of weight 0 (context.group_rows all 0), and the
        // mean runs over the global batch's tokens
        int held = 0;
        for (int n : context.group_rows) held += n;
        std::vector<float> weights = real_positions(rows, T);
        if (!context.group_rows.empty() && held == 0) std::fill(weights.begin(), weights.end(), 0.0f);
        double tokens = 0;
        for (float x : weights) tokens += x;
        sum_over_ranks_host(&tokens, 1, "AM-LoRA's penalty tokens");
        const double scale = 1.0 / (std::max(1.0, tokens) * double(context.adapters.slots.size()));
        for (float& x : weights) x = float(x * scale);
        mixture.set_row_weights(weights);
    }

    void before_backward(Context&) override {
        mixture.zero_grad();
        mixture.penalty_total = 0;
    }
    // data parallelism: the attention's gradients and the penalty summed over the ranks (each rank's part is
    // already normalised by the global token count)
    double extra_loss(Context& context) override {
        sum_over_ranks(context, mixture.gradients, mixture.num_parameters, "AM-LoRA's attention gradients");
        double penalty = mixture.penalty_total;
        sum_over_ranks_host(&penalty, 1, "AM-LoRA's penalty");
        return penalty;
    }
    double extra_gradient_sum_of_squares(Context&) override {
        return Backend::sum_of_squares(mixture.gradients, mixture.num_parameters);
    }
    void extra_update(Context& context, const AdamWSettings& settings, int t, float grad_scale) override {
        mixture.update(context.adapters, settings, t, grad_scale);
    }

    Diagnostics diagnostics(Context& context) override {
        Diagnostics d = IncLora<Backend>::diagnostics(context);
        const int t = context.task;
        double weight_sum = 0, weights = 0, below = 0;
        for (int j = 0; j <= t; j++) {
            const MixtureStatistics s = statistics_on(context, j);
            for (int i = 0; i <= t && i < int(s.weight_sums.size()); i++)
                d.emplace_back("attention_" + std::to_string(i + 1) + "_on_" + std::to_string(j + 1),
                               s.weight_sums[i] / std::max(1.0, s.rows));
            for (double x : s.weight_sums) weight_sum += x;
            weights += s.weights;
            below += s.below_tenth;
        }
        d.emplace_back("attention_mean", weight_sum / std::max(1.0, weights));
        d.emplace_back("attention_sparsity", below / std::max(1.0, weights));
        return d;
    }

    void save_state(Context&, AdapterFile& file) override { file.set("amlora/attention", mixture.to_host()); }
    void load_state(Context& context, const AdapterFile& file) override {
        IncLora<Backend>::load_state(context, file);  // one branch per completed task
        mixture.from_host(context.adapters, context.adapters.branches, file.tensor("amlora/attention"));
        context.adapters.mixture = &mixture;
    }

    // The attention weights' statistics over task j's test examples, teacher-forced (diagnostics and tests).
    MixtureStatistics statistics_on(Context& context, int j) {
        GPT2<Backend>& model = context.model;
        const int max_T = max_seq_len > 0 ? std::min(max_seq_len, model.config.max_seq_len) : model.config.max_seq_len;
        const std::vector<EncodedExample>& test = context.tasks[j].test;
        MixtureStatistics s;
        context.adapters.mixture = &mixture;
        mixture.statistics = &s;
        for (size_t first = 0; first < test.size(); first += 32) {
            std::vector<const EncodedExample*> rows;
            for (size_t n = first; n < std::min(test.size(), first + 32); n++) rows.push_back(&test[n]);
            const TrainingBatch batch = make_training_batch(rows, max_T);
            s.row_mask = real_positions(rows, batch.T);
            gpt2_forward(model, batch.inputs.data(), nullptr, nullptr, batch.B, batch.T);
        }
        mixture.statistics = nullptr;
        return s;
    }

    AttentionMixture<Backend> mixture;

private:
    uint64_t seed;
    int max_seq_len;

    // (rows * T): 1 on each row's real positions (0 .. min(T, its training length) - 1), 0 on padding
    static std::vector<float> real_positions(const std::vector<const EncodedExample*>& rows, int T) {
        std::vector<float> mask(rows.size() * size_t(T), 0.0f);
        for (size_t b = 0; b < rows.size(); b++) {
            const int length = std::min(T, training_length(*rows[b]));
            std::fill(mask.begin() + b * T, mask.begin() + b * T + length, 1.0f);
        }
        return mask;
    }
};

// `--method amlora` and its flags (lora/method_info.h; registered in lora/methods/registry.h). The synthetic
// benchmark's preset lambda_sp is 1e-4: there 0.01 shuts the new branch's attention before the branch has learned
// anything (the cross-entropy's gradient is weak: the random frozen output embedding keeps the loss near 4.3 nats),
// so task 1 reaches 6% instead of 90%; 1e-4 learns (test/test_amlora.cpp runs the penalty at 0.01).
struct AmLoraMethod : MethodFactory<AmLora> {
    static inline const MethodInfo info{
        "amlora", false,
        {count_option("amlora-attention-dim", &MethodOptions::amlora_attention_dim, 1,
                      "AM-LoRA: attention size d_a"),
         real_option("amlora-lambda", &MethodOptions::amlora_lambda, NumberRange::non_negative(),
                     "AM-LoRA: weight of the sparsity penalty", "1e-4"),
         choice_option("amlora-norm", &MethodOptions::amlora_norm, {"sigmoid", "softmax"},
                       "AM-LoRA: sigmoid (+ L1) or softmax (+ entropy)")}};
};
