// Continual-learning examples as training sequences (lora/METHODS.md section 2): a (prompt, answer) pair
// becomes the token sequence s = prompt ids + answer ids + <|endoftext|>, trained as next-token prediction with
// the cross-entropy on the answer tokens and the final end token only (prompt targets weigh 0). Rows of a batch
// are padded to the batch's length T with the eot token (the last answer id) as input and target; padding weighs 0.
//
//   s           = p0 p1 p2 p3 | a0 a1 eot               (|prompt| = 4, |answer| = 3 with the eot)
//   inputs      = p0 p1 p2 p3   a0 a1  pad ...          inputs[t]  = s[t],      t < |s| - 1
//   targets     = p1 p2 p3 a0   a1 eot pad ...          targets[t] = s[t + 1],  t < |s| - 1
//   weights     = 0  0  0  1    1  1   0   ...          1 where targets[t] is an answer token (eot included)
//
// Too long a sequence (|s| > T + 1) is cut at the start of the prompt: the end of the prompt (the "Answer:" cue)
// and the whole answer are kept. If even the answer alone does not fit (|answer| > T), the row keeps the last
// prompt token and the first T answer tokens: every target is an answer token, the eot is not trained. The cut is
// prompt_tokens_kept (below), shared with greedy decoding (model/generate.h), so that a prompt is cut alike for
// training, label ranking and generation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/task_data.h"
#include "data/text_codec.h"

// One example as token ids: the prompt (non-empty) and the answer (its ids followed by the codec's eot_token).
struct EncodedExample {
    std::vector<int> prompt, answer;
};

// The answer's text as it is encoded: codec.answer_prefix + answer when the prompt ends in a non-space character
// and the answer starts with one (so that it tokenizes as it would continue the prompt in running text), else the
// answer itself. Exact match ignores the added space (lora/metrics.h normalizes whitespace).
std::string answer_text(const TaskExample& example, const TextCodec& codec);

// answer = codec.encode(answer_text(example)) + [eot_token]. Fails naming the example's index if a prompt encodes to no tokens.
std::vector<EncodedExample> encode_examples(const std::vector<TaskExample>& examples, const TextCodec& codec);

// A batch of B rows of T positions; every array is (B, T) row-major: element (b, t) at b * T + t.
struct TrainingBatch {
    int B = 0, T = 0;
    std::vector<int> inputs;          // (B, T) token ids
    std::vector<int> targets;         // (B, T) the next token of each position
    std::vector<float> loss_weights;  // (B, T) 1 on answer targets, 0 on prompt targets and padding
};

// The number of input positions example e needs untruncated: |prompt| + |answer| - 1.
int training_length(const EncodedExample& e);

// How many of a prompt's last tokens a sequence of T inputs keeps in front of an answer of answer_tokens tokens
// (its <|endoftext|> included): the answer keeps its first min(answer_tokens, T) tokens and the prompt its last
// min(prompt_tokens, T + 1 - those), at least one (T inputs and their targets span T + 1 tokens).
//
//   T = 8, prompt p0 .. p9 (10 tokens), answer a0 a1 eot (3 tokens): prompt_tokens_kept(10, 3, 8) = 6
//   kept s   = p4 p5 p6 p7 p8 p9 | a0 a1 eot        6 + 3 = T + 1 tokens
//   inputs   = p4 p5 p6 p7 p8 p9   a0 a1            T = 8 positions
//   targets  = p5 p6 p7 p8 p9 a0   a1 eot           the loss on a0 a1 eot
//
// fill_training_row calls it with the example's answer; greedy decoding (model/generate.h, generation_prompt)
// with the room it keeps for a generated answer and its stop token, so that an answer of that length is generated
// after the very prompt tokens it is trained after. Fails unless prompt_tokens >= 1, answer_tokens >= 1 and T >= 1.
int prompt_tokens_kept(int prompt_tokens, int answer_tokens, int T);

// Writes row `row` of batch (B, T and the arrays already sized) from e as described at the top; padding positions
// hold e.answer.back() (the eot token) as input and target, weight 0. Fails on a row out of range, arrays of the
// wrong size, T < 1, an empty prompt or an empty answer.
void fill_training_row(TrainingBatch& batch, int row, const EncodedExample& e);

// A batch of rows.size() rows, T = min(max_T, the longest training_length of the rows). Fails on max_T < 1.
TrainingBatch make_training_batch(const std::vector<const EncodedExample*>& rows, int max_T);

// Label ranking (`train cl --eval rank`, lora/continual.h): a closed-label task is one whose training answers take
// at most MAX_CLOSED_LABELS distinct values; its labels are those answers, each scored after a test prompt by the
// log-probability of its tokens (model/generate.h, label_scores).
constexpr size_t MAX_CLOSED_LABELS = 64;
// The distinct answers of the examples (token ids exactly as encode_examples wrote them: the answer_text's tokens
// followed by <|endoftext|>), in order of first appearance; empty when there are more than max_labels of them (an
// open task) or no examples.
std::vector<std::vector<int>> closed_label_set(const std::vector<EncodedExample>& examples,
                                               size_t max_labels = MAX_CLOSED_LABELS);

// The examples of one task in shuffled batches, epoch after epoch. Epoch e visits every example exactly once,
// in an order that depends only on (seed, e), so a run resumed at an epoch boundary sees the same batches. The
// batches hold batch_size rows each, the last one of an epoch possibly fewer (it is kept); each batch's T is
// min(max_T, its longest row), so short examples do not pay for the context length.
//
//   EpochBatches batches(examples, 16, 64, seed);
//   for (int epoch = 0; epoch < epochs; epoch++)
//       for (batches.start_epoch(epoch); batches.next(batch);) train_step(batch, batches.rows());
class EpochBatches {
public:
    // examples must outlive this object and not change size. Fails on batch_size < 1 or max_T < 1.
    EpochBatches(const std::vector<EncodedExample>& examples, int batch_size, int max_T, uint64_t seed);

    // Shuffles the examples for epoch `epoch` and rewinds to its first batch (the constructor starts epoch 0).
    void start_epoch(uint64_t epoch);
    // The next batch of the current epoch into `batch`; false (batch untouched) once the epoch is done.
    bool next(TrainingBatch& batch);

    const std::vector<const EncodedExample*>& rows() const { return rows_; }  // the rows of the latest batch
    const std::vector<size_t>& order() const { return order_; }  // the current epoch's order of example indices
    size_t batches_per_epoch() const;  // ceil(examples / batch_size)
    uint64_t epoch() const { return epoch_; }

private:
    const std::vector<EncodedExample>* examples_;
    int batch_size_, max_T_;
    uint64_t seed_, epoch_ = 0;
    std::vector<size_t> order_;
    size_t position_ = 0;  // index into order_ of the next batch's first example
    std::vector<const EncodedExample*> rows_;
};
