#include "data/cl_batches.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <string>

#include "data/file_io.h"
#include "data/random.h"

std::string answer_text(const TaskExample& example, const TextCodec& codec) {
    auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
    const std::string& prompt = example.prompt;
    const std::string& answer = example.answer;
    if (codec.answer_prefix.empty() || prompt.empty() || answer.empty()) return answer;
    if (is_space(prompt.back()) || is_space(answer.front())) return answer;
    return codec.answer_prefix + answer;
}

std::vector<EncodedExample> encode_examples(const std::vector<TaskExample>& examples, const TextCodec& codec) {
    std::vector<EncodedExample> encoded(examples.size());
    for (size_t i = 0; i < examples.size(); i++) {
        encoded[i].prompt = codec.encode(examples[i].prompt);
        if (encoded[i].prompt.empty())
            fail("example " + std::to_string(i) + ": the prompt is empty (a training sequence needs at least one "
                 "prompt token before the answer)");
        encoded[i].answer = codec.encode(answer_text(examples[i], codec));
        encoded[i].answer.push_back(codec.eot_token);
    }
    return encoded;
}

int training_length(const EncodedExample& e) { return int(e.prompt.size() + e.answer.size()) - 1; }

int prompt_tokens_kept(int prompt_tokens, int answer_tokens, int T) {
    if (prompt_tokens < 1 || answer_tokens < 1 || T < 1)
        fail("prompt_tokens_kept: a prompt of " + std::to_string(prompt_tokens) + " tokens, an answer of " +
             std::to_string(answer_tokens) + " and T = " + std::to_string(T) + " (each must be >= 1)");
    const int answer_kept = std::min(answer_tokens, T);
    return std::min(prompt_tokens, T + 1 - answer_kept);
}

std::vector<std::vector<int>> closed_label_set(const std::vector<EncodedExample>& examples, size_t max_labels) {
    std::vector<std::vector<int>> labels;
    std::set<std::vector<int>> seen;
    for (const EncodedExample& e : examples) {
        if (!seen.insert(e.answer).second) continue;
        if (labels.size() == max_labels) return {};  // one more than allowed: an open task
        labels.push_back(e.answer);
    }
    return labels;
}

void fill_training_row(TrainingBatch& batch, int row, const EncodedExample& e) {
    const int B = batch.B, T = batch.T;
    if (T < 1) fail("training batch: T must be >= 1, got " + std::to_string(T));
    if (row < 0 || row >= B)
        fail("training batch: row " + std::to_string(row) + " is outside 0.." + std::to_string(B - 1));
    const size_t size = size_t(B) * size_t(T);
    if (batch.inputs.size() != size || batch.targets.size() != size || batch.loss_weights.size() != size)
        fail("training batch: the arrays do not hold B * T = " + std::to_string(size) + " elements");
    if (e.prompt.empty()) fail("training batch: row " + std::to_string(row) + " has an empty prompt");
    if (e.answer.empty()) fail("training batch: row " + std::to_string(row) + " has an empty answer");

    // The kept part of s = prompt + answer: at most T + 1 tokens, the prompt's last `prompt_kept` tokens (at least
    // one) followed by the answer's first `answer_kept` tokens (all of them unless the answer alone exceeds T).
    const int P = int(e.prompt.size()), A = int(e.answer.size());
    const int prompt_kept = prompt_tokens_kept(P, A, T);
    const int answer_kept = std::min(A, T);
    auto s = [&](int k) { return k < prompt_kept ? e.prompt[P - prompt_kept + k] : e.answer[k - prompt_kept]; };
    const int length = prompt_kept + answer_kept;  // |kept s|, <= T + 1

    const int pad = e.answer.back();
    int* inputs = batch.inputs.data() + size_t(row) * T;
    int* targets = batch.targets.data() + size_t(row) * T;
    float* weights = batch.loss_weights.data() + size_t(row) * T;
    for (int t = 0; t < T; t++) {
        if (t < length - 1) {
            inputs[t] = s(t);
            targets[t] = s(t + 1);
            weights[t] = t + 1 >= prompt_kept ? 1.0f : 0.0f;  // the target s[t + 1] is an answer token
        } else {
            inputs[t] = pad;
            targets[t] = pad;
            weights[t] = 0.0f;
        }
    }
}

TrainingBatch make_training_batch(const std::vector<const EncodedExample*>& rows, int max_T) {
    if (max_T < 1) fail("training batch: the maximum sequence length must be >= 1, got " + std::to_string(max_T));
    int longest = 1;
    for (const EncodedExample* e : rows) longest = std::max(longest, training_length(*e));
    TrainingBatch batch;
    batch.B = int(rows.size());
    batch.T = std::min(max_T, longest);
    const size_t size = size_t(batch.B) * size_t(batch.T);
    batch.inputs.resize(size);
    batch.targets.resize(size);
    batch.loss_weights.resize(size);
    for (int b = 0; b < batch.B; b++) fill_training_row(batch, b, *rows[b]);
    return batch;
}

EpochBatches::EpochBatches(const std::vector<EncodedExample>& examples, int batch_size, int max_T, uint64_t seed)
    : examples_(&examples), batch_size_(batch_size), max_T_(max_T), seed_(seed) {
    if (batch_size < 1) fail("epoch batches: the batch size must be >= 1, got " + std::to_string(batch_size));
    if (max_T < 1) fail("epoch batches: the maximum sequence length must be >= 1, got " + std::to_string(max_T));
    start_epoch(0);
}

void EpochBatches::start_epoch(uint64_t epoch) {
    epoch_ = epoch;
    position_ = 0;
    rows_.clear();
    order_.resize(examples_->size());
    std::iota(order_.begin(), order_.end(), size_t(0));
    // The shuffle's stream is a hash of (seed, epoch): nearby seeds or epochs give unrelated orders.
    Random mix(seed_ ^ ((epoch + 1) * 0xD1B54A32D192ED03ULL));
    Random random(mix.next());
    for (size_t i = order_.size(); i > 1; i--) std::swap(order_[i - 1], order_[random.below(uint32_t(i))]);
}

bool EpochBatches::next(TrainingBatch& batch) {
    if (order_.size() != examples_->size())
        fail("epoch batches: the examples changed size during an epoch (" + std::to_string(order_.size()) + " -> " +
             std::to_string(examples_->size()) + ")");
    if (position_ >= order_.size()) return false;
    const size_t end = std::min(order_.size(), position_ + size_t(batch_size_));
    rows_.clear();
    for (size_t i = position_; i < end; i++) rows_.push_back(&(*examples_)[order_[i]]);
    position_ = end;
    batch = make_training_batch(rows_, max_T_);
    return true;
}

size_t EpochBatches::batches_per_epoch() const {
    return (examples_->size() + size_t(batch_size_) - 1) / size_t(batch_size_);
}
