// Label ranking (model/generate.h label_scores, lora/metrics.h ranked_label, data/cl_batches.h closed_label_set) and
// the one prompt cut shared by training rows, ranking rows and greedy decoding (data/cl_batches.h
// prompt_tokens_kept), on a tiny random model on the CPU backend ([rank]).
#include <algorithm>
#include <cmath>
#include <limits>

#include "data/cl_batches.h"
#include "lora/metrics.h"
#include "model/backend_cpu.h"
#include "model/generate.h"
#include "model/initialisation.h"
#include "test/small_model.h"
#include "test/test_support.h"

using Catch::Contains;

namespace {

constexpr int EOT = 28;  // small_config's last token plays <|endoftext|>

// Adapters on every linear, two random branches (dropout 0.25: a ranking must not apply it).
LoraConfig every_module() {
    LoraConfig config;
    config.rank = 2;
    config.alpha = 4.0f;
    config.dropout = 0.25f;
    config.modules = parse_lora_modules("all");
    return config;
}
void add_random_branches(LoraAdapters<CpuBackend<float>>& adapters, uint64_t seed) {
    for (int b = 0; b < 2; b++) lora_add_branch(adapters, seed + b);
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, seed + 100, -0.3, 0.3));
}

EncodedExample example(std::vector<int> prompt, std::vector<int> answer) {
    EncodedExample e;
    e.prompt = std::move(prompt);
    e.answer = std::move(answer);
    return e;
}

// log P(label | prompt) by hand: one plain forward (no targets: the whole logits) over prompt + label minus its
// last token, then at each label position the log-softmax of the logits over the V real tokens, in double.
template <class Backend>
double hand_log_probability(GPT2<Backend>& model, const std::vector<int>& prompt, const std::vector<int>& label) {
    std::vector<int> sequence = prompt;
    sequence.insert(sequence.end(), label.begin(), label.end());
    const int T = int(sequence.size()) - 1, V = model.config.vocab_size, Vp = model.config.padded_vocab_size;
    gpt2_forward(model, sequence.data(), nullptr, nullptr, 1, T);
    double sum = 0;
    for (size_t j = 0; j < label.size(); j++) {
        const int t = int(prompt.size()) - 1 + int(j);  // the position whose next token is label[j]
        const float* logits = model.acts.logits + size_t(t) * Vp;
        double largest = -std::numeric_limits<double>::infinity();
        for (int v = 0; v < V; v++) largest = std::max(largest, double(logits[v]));
        double total = 0;
        for (int v = 0; v < V; v++) total += std::exp(double(logits[v]) - largest);
        sum += double(logits[label[j]]) - largest - std::log(total);
    }
    return sum;
}

// One row of a batch as vectors.
struct Row {
    std::vector<int> inputs, targets;
    std::vector<float> weights;
    bool operator==(const Row& other) const {
        return inputs == other.inputs && targets == other.targets && weights == other.weights;
    }
};
Row row_of(const TrainingBatch& batch, int b) {
    const size_t begin = size_t(b) * batch.T, end = begin + batch.T;
    return Row{{batch.inputs.begin() + begin, batch.inputs.begin() + end},
               {batch.targets.begin() + begin, batch.targets.begin() + end},
               {batch.loss_weights.begin() + begin, batch.loss_weights.begin() + end}};
}

}  // namespace

TEST_CASE("rank: label scores are the labels' log-probabilities computed by hand from full logits", "[rank]") {
    const GPT2Config config = small_config();
    const std::vector<float> base = lively_base(config, 21);
    GPT2<CpuBackend<float>> model(config, base.data());
    LoraAdapters<CpuBackend<float>> adapters(config, every_module());
    add_random_branches(adapters, 22);
    model.lora = &adapters;
    model.frozen_base = true;

    // one prompt, three labels of 2, 3 and 4 tokens (the eot included, as encode_examples writes an answer)
    const std::vector<std::vector<int>> prompts = {{3, 1, 4, 1, 5}};
    const std::vector<std::vector<int>> labels = {{7, EOT}, {9, 2, EOT}, {11, 12, 13, EOT}};
    adapters.training = false;  // the hand computation: no dropout
    std::vector<double> expected;
    for (const std::vector<int>& label : labels) expected.push_back(hand_log_probability(model, prompts[0], label));
    const size_t best = size_t(std::max_element(expected.begin(), expected.end()) - expected.begin());
    INFO("hand log-probabilities " << expected[0] << " " << expected[1] << " " << expected[2]);
    for (size_t l = 0; l < labels.size(); l++)  // a real choice: one label clearly ahead
        if (l != best) CHECK(expected[best] > expected[l] + 1e-3);

    // the training configuration the ranking must leave as it found it: chunked classifier, no sparse logits,
    // adapters in training mode (with dropout)
    model.sparse_logits = false;
    model.logits_chunk_rows = TRAINING_LOGITS_CHUNK_ROWS;
    adapters.training = true;
    for (int batch_size : {1, 2, 3, 8}) {
        INFO("batch size " << batch_size);
        RankingSettings settings;
        settings.batch_size = batch_size;
        int batches = 0;
        const std::vector<std::vector<double>> scores =
            label_scores(model, prompts, labels, settings,
                         [&](const std::vector<const EncodedExample*>& rows, const TrainingBatch& batch) {
                             CHECK(int(rows.size()) == batch.B);
                             CHECK(batch.B <= batch_size);
                             CHECK(!adapters.training);  // evaluated without dropout
                             CHECK(model.logits_chunk_rows == TRAINING_LOGITS_CHUNK_ROWS);  // kept, as trained
                             CHECK(model.sparse_logits);
                             for (const EncodedExample* e : rows) CHECK(e->prompt == prompts[0]);
                             batches++;
                         });
        CHECK(batches == (3 + batch_size - 1) / batch_size);
        REQUIRE(scores.size() == 1);
        REQUIRE(scores[0].size() == 3);
        for (size_t l = 0; l < labels.size(); l++) {
            INFO("label " << l);
            CHECK(scores[0][l] == Approx(expected[l]).margin(1e-4));
        }
        CHECK(ranked_label(scores[0]) == best);
        CHECK(model.logits_chunk_rows == TRAINING_LOGITS_CHUNK_ROWS);  // restored
        CHECK(!model.sparse_logits);
        CHECK(adapters.training);
    }
}

TEST_CASE("rank: scores of several prompts do not depend on the batching; split batches add up", "[rank]") {
    const GPT2Config config = small_config();
    const std::vector<float> base = lively_base(config, 31);
    GPT2<CpuBackend<float>> model(config, base.data());
    model.frozen_base = true;
    const std::vector<std::vector<int>> prompts = {{3, 1, 4, 1, 5, 9, 2}, {6}, {5, 3, 5}, {8, 9, 7, 9, 3}};
    const std::vector<std::vector<int>> labels = {{7, EOT}, {9, 2, EOT}, {EOT}};
    auto nothing = [](const std::vector<const EncodedExample*>&, const TrainingBatch&) {};
    RankingSettings one;
    one.batch_size = 1;
    const std::vector<std::vector<double>> reference = label_scores(model, prompts, labels, one, nothing);
    for (size_t p = 0; p < prompts.size(); p++)
        for (size_t l = 0; l < labels.size(); l++)
            CHECK(reference[p][l] == Approx(hand_log_probability(model, prompts[p], labels[l])).margin(1e-4));
    RankingSettings five;
    five.batch_size = 5;
    const std::vector<std::vector<double>> batched = label_scores(model, prompts, labels, five, nothing);
    // data parallelism: two processes, each the other half of the batches; the sum is the whole
    std::vector<std::vector<double>> halves[2];
    for (int rank = 0; rank < 2; rank++) {
        RankingSettings settings = five;
        settings.first_batch = rank;
        settings.batch_stride = 2;
        halves[rank] = label_scores(model, prompts, labels, settings, nothing);
    }
    for (size_t p = 0; p < prompts.size(); p++)
        for (size_t l = 0; l < labels.size(); l++) {
            INFO("prompt " << p << " label " << l);
            CHECK(batched[p][l] == Approx(reference[p][l]).margin(1e-4));
            CHECK((halves[0][p][l] == 0) != (halves[1][p][l] == 0));  // each pair scored by one process
            CHECK(halves[0][p][l] + halves[1][p][l] == batched[p][l]);  // in the same batch: the same bits
        }
}

TEST_CASE("rank: the choice is the highest score, the first of equal ones", "[rank]") {
    CHECK(ranked_label({-3.0}) == 0);
    CHECK(ranked_label({-5.0, -1.5, -2.0}) == 1);
    CHECK(ranked_label({-2.0, -1.0, -1.0}) == 1);  // a tie: the first
    CHECK(ranked_label({-1.0, -1.0, -1.0}) == 0);
    CHECK(ranked_label({-4.0, -7.0, -0.5}) == 2);
    const double nan = std::nan("");
    CHECK(ranked_label({nan, -9.0, -8.0}) == 2);  // a NaN never wins
    CHECK(ranked_label({-9.0, nan}) == 0);
    CHECK_THROWS_WITH(ranked_label({}), Contains("no scores"));
}

TEST_CASE("rank: a task's labels are its distinct training answers in order of first appearance, at most 64",
          "[rank]") {
    std::vector<EncodedExample> train = {example({1}, {5, EOT}), example({2}, {6, 7, EOT}), example({3}, {5, EOT}),
                                         example({4}, {6, EOT}), example({5}, {6, 7, EOT})};
    const std::vector<std::vector<int>> expected = {{5, EOT}, {6, 7, EOT}, {6, EOT}};
    CHECK(closed_label_set(train) == expected);
    CHECK(closed_label_set(train, 3) == expected);
    CHECK(closed_label_set(train, 2).empty());  // 3 distinct answers: open for a limit of 2
    CHECK(closed_label_set({}).empty());
    std::vector<EncodedExample> many;
    for (int i = 0; i < int(MAX_CLOSED_LABELS); i++) many.push_back(example({1}, {i / 26, i % 26, EOT}));
    for (int i = 0; i < 10; i++) many.push_back(example({2}, {0, 0, EOT}));  // repeats add no label
    CHECK(closed_label_set(many).size() == MAX_CLOSED_LABELS);
    many.push_back(example({3}, {27, EOT}));
    CHECK(closed_label_set(many).empty());  // 65 distinct answers: an open task
}

TEST_CASE("rank: prompt_tokens_kept is the cut its comment draws, and fails on empty shapes", "[rank]") {
    CHECK(prompt_tokens_kept(10, 3, 8) == 6);  // the comment's example: 6 + 3 = T + 1
    CHECK(prompt_tokens_kept(4, 3, 8) == 4);   // fits: the whole prompt
    CHECK(prompt_tokens_kept(10, 8, 8) == 1);  // the answer fills T: one prompt token
    CHECK(prompt_tokens_kept(10, 20, 8) == 1); // the answer alone is longer than T: still one
    CHECK_THROWS_WITH(prompt_tokens_kept(0, 3, 8), Contains("must be >= 1"));
    CHECK_THROWS_WITH(prompt_tokens_kept(3, 0, 8), Contains("must be >= 1"));
    CHECK_THROWS_WITH(prompt_tokens_kept(3, 3, 0), Contains("must be >= 1"));
}

TEST_CASE("rank: a ranking batch's T is its longest row rounded up by at most a quarter, within max_T", "[rank]") {
    CHECK(ranking_batch_length(1, 128) == 1);
    CHECK(ranking_batch_length(5, 128) == 5);     // below 8: exact
    CHECK(ranking_batch_length(9, 128) == 10);    // multiples of 2 from 8
    CHECK(ranking_batch_length(60, 1024) == 64);  // of 8 from 32
    CHECK(ranking_batch_length(100, 1024) == 112);
    CHECK(ranking_batch_length(1000, 1024) == 1024);
    CHECK(ranking_batch_length(100, 104) == 104);  // capped at max_T
    CHECK(ranking_batch_length(300, 128) == 128);  // a row longer than max_T is cut there, as training cuts it
    for (int longest = 1; longest <= 2048; longest++) {
        const int T = ranking_batch_length(longest, 4096);
        CHECK(T >= longest);
        CHECK(T <= longest + std::max(0, longest / 4));
    }
}

TEST_CASE("rank: a long prompt is cut alike for training, ranking and generation", "[rank]") {
    const GPT2Config config = small_config();  // context 12
    const std::vector<float> base = lively_base(config, 41);
    GPT2<CpuBackend<float>> model(config, base.data());
    model.frozen_base = true;
    const int max_T = 10;  // the run's --max-seq-len, below the context
    std::vector<int> prompt;
    for (int i = 0; i < 15; i++) prompt.push_back((7 * i + 3) % 27);
    const EncodedExample trained = example(prompt, {9, 4, EOT});  // 3 answer tokens, the eot included

    // training: the row of this example at the run's max_T keeps the prompt's last prompt_tokens_kept tokens
    const TrainingBatch training = make_training_batch({&trained}, max_T);
    REQUIRE(training.T == max_T);
    const int kept = prompt_tokens_kept(15, 3, max_T);
    CHECK(kept == 8);
    const Row row = row_of(training, 0);
    CHECK(std::vector<int>(row.inputs.begin(), row.inputs.begin() + kept) ==
          std::vector<int>(prompt.end() - kept, prompt.end()));
    for (int t = 0; t < max_T; t++) CHECK(row.weights[t] == (t >= kept - 1 ? 1.0f : 0.0f));

    // generation: an answer of 2 tokens and its stop token is room 3, so the prompt is cut where training cuts it
    // before a 3-token answer
    GenerationSettings settings;
    settings.max_new_tokens = 2;
    settings.batch_size = 2;
    settings.max_T = max_T;
    settings.stops.assign(config.vocab_size, false);
    CHECK(generation_inputs(settings, config) == max_T);
    CHECK(generation_answer_room(settings, max_T) == 3);
    const std::vector<int> fed = generation_prompt(prompt, settings, config);
    CHECK(fed == std::vector<int>(row.inputs.begin(), row.inputs.begin() + kept));
    // what greedy_generate feeds: the long prompt generates what its cut generates, and no stop token fits exactly
    // max_new_tokens after it within T (a step past T would fail: the caches hold T positions)
    const std::vector<std::vector<int>> from_long = greedy_generate(model, {prompt, fed}, settings, [](auto&) {});
    CHECK(from_long[0] == from_long[1]);
    CHECK(from_long[0].size() == 2);
    // more new tokens than a quarter of T: room 1 + T / 4 = 3 still, and the sequence ends at T inputs
    settings.max_new_tokens = 50;
    CHECK(generation_answer_room(settings, max_T) == 3);
    CHECK(generation_prompt(prompt, settings, config) == fed);
    const std::vector<std::vector<int>> long_answer = greedy_generate(model, {prompt}, settings, [](auto&) {});
    CHECK(long_answer[0].size() == size_t(max_T - kept + 1));  // kept + generated - 1 = T inputs
    settings.max_T = 0;  // the model's context, 12: room 1 + 3, the last 9 prompt tokens
    CHECK(generation_prompt(prompt, settings, config) == std::vector<int>(prompt.end() - 9, prompt.end()));

    // ranking: the row of (prompt, label) is the training row of that example at the same T, and its score is
    // minus the training forward's loss sum on it
    const std::vector<std::vector<int>> labels = {{9, 4, EOT}, {1, EOT}};
    RankingSettings ranking;
    ranking.batch_size = 2;
    ranking.max_T = max_T;
    int rows_seen = 0;
    const std::vector<std::vector<double>> scores =
        label_scores(model, {prompt}, labels, ranking,
                     [&](const std::vector<const EncodedExample*>& rows, const TrainingBatch& batch) {
                         for (size_t b = 0; b < rows.size(); b++) {
                             TrainingBatch alone;
                             alone.B = 1, alone.T = batch.T;
                             alone.inputs.resize(batch.T), alone.targets.resize(batch.T);
                             alone.loss_weights.resize(batch.T);
                             fill_training_row(alone, 0, example(prompt, rows[b]->answer));
                             CHECK(row_of(batch, int(b)) == row_of(alone, 0));
                             if (rows[b]->answer == trained.answer) CHECK(row_of(batch, int(b)) == row);
                             rows_seen++;
                         }
                     });
    CHECK(rows_seen == 2);
    model.sparse_logits = false;
    gpt2_forward(model, training.inputs.data(), training.targets.data(), training.loss_weights.data(), 1, max_T);
    CHECK(scores[0][0] == Approx(-model.mean_loss * model.weight_sum).margin(1e-4));
}
