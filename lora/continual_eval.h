// `train cl`'s evaluation of one task after a task boundary (lora/continual.h: the two modes), task-agnostic: the
// method sees the test prompts (its before_forward), never the task id.
//   generate  greedy decoding after the prompt (model/generate.h, greedy_generate), each answer scored by the task's
//             metric (lora/task_metrics.h; exact match on most tasks)
//   rank      on a closed-label task: every label scored after the prompt (model/generate.h, label_scores), the
//             highest chosen (ties: the first), then exact match of that label
// Data parallelism: rank r decodes the evaluation batches r, r + world_size, ... (each exactly the batch a single
// process decodes), and the ranks' scores are added up; the ranking likewise splits its batches and adds up the
// label scores.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "lora/continual_setup.h"
#include "lora/metrics.h"
#include "model/generate.h"

// Task i's scores x100 in both modes (rank: NaN for an open task) and the seconds each mode took.
struct TaskScores {
    double generate = 0, rank = std::nan("");
    double generate_seconds = 0, rank_seconds = 0;
};

// This rank's share of task i's test answers, for predictions.jsonl.
struct TaskAnswers {
    std::vector<size_t> examples;      // indices into the task's test examples, in order
    std::vector<std::string> answers;  // the greedy answer of each
    std::vector<double> scores;        // each answer's score x100 by the task's metric
    std::vector<size_t> ranked;        // (every test example) its chosen label; empty for an open task
};

template <class Backend>
struct TaskEvaluation {
    GPT2<Backend>& model;
    ContinualMethod<Backend>& method;
    ContinualContext<Backend>& context;
    const ContinualSetup& setup;
    const ContinualOptions& options;
    int max_T;  // the training's longest sequence: prompts are cut as training cuts them

    TaskScores evaluate(int i, TaskAnswers& out) {
        const EncodedTask& task = setup.tasks[i];
        using Clock = std::chrono::steady_clock;
        Clock::time_point started = Clock::now();
        TaskScores scores;
        out = generate(i);
        double total = 0;
        for (double score : out.scores) total += score;
        sum_over_ranks_host(&total, 1, "the evaluation's scores");
        scores.generate = total / double(task.test.size());
        scores.generate_seconds = std::chrono::duration<double>(Clock::now() - started).count();
        if (!setup.labels[i].empty()) {
            started = Clock::now();
            out.ranked = rank_labels(i);
            double right = 0;
            for (size_t k = 0; k < out.ranked.size(); k++)
                right += exact_match(setup.label_texts[i][out.ranked[k]], task.test_answers[k]);
            scores.rank = 100.0 * right / double(task.test.size());
            scores.rank_seconds = std::chrono::duration<double>(Clock::now() - started).count();
        }
        return scores;
    }

private:
    // Greedy answers to this rank's test prompts of task i, scored by the task's metric.
    TaskAnswers generate(int i) {
        const EncodedTask& task = setup.tasks[i];
        const size_t batch_size = size_t(options.eval_batch_size), ranks = size_t(distributed().world_size);
        TaskAnswers out;
        for (size_t first = size_t(distributed().rank) * batch_size; first < task.test.size();
             first += ranks * batch_size)
            for (size_t k = first; k < std::min(task.test.size(), first + batch_size); k++) out.examples.push_back(k);
        std::vector<std::vector<int>> prompts;
        for (size_t k : out.examples) prompts.push_back(task.test[k].prompt);
        GenerationSettings settings;
        settings.max_new_tokens = options.max_new_tokens;
        settings.batch_size = options.eval_batch_size;
        settings.stops = setup.stops;
        settings.max_T = max_T;  // the prompt cut as training cuts it (data/cl_batches.h, prompt_tokens_kept)
        std::vector<std::vector<int>> outputs;
        if (!prompts.empty())
            outputs = greedy_generate(model, prompts, settings, [&](const std::vector<size_t>& rows) {
                std::vector<const EncodedExample*> examples;
                for (size_t r : rows) examples.push_back(&task.test[out.examples[r]]);
                method.before_forward(context, examples, 1);
            });
        for (size_t k = 0; k < outputs.size(); k++) {
            out.answers.push_back(setup.codec.decode(outputs[k]));
            const size_t e = out.examples[k];
            out.scores.push_back(
                score_task_example(task.name, task.test_prompts[e], out.answers.back(), task.test_answers[e]));
        }
        return out;
    }

    // The chosen label (index into setup.labels[i]) of each of task i's test examples: every label scored after the
    // prompt (model/generate.h, label_scores: the rows are the training rows of (prompt, label) at the run's max_T;
    // the method's before_forward sets its per-row weights for each batch), the highest chosen (ties: the first).
    // Data parallelism: rank r runs the ranking's batches r, r + world_size, ..., and the scores are added up over
    // the ranks (each computed by one of them, in the batch a single process computes it in).
    std::vector<size_t> rank_labels(int i) {
        const EncodedTask& task = setup.tasks[i];
        const std::vector<std::vector<int>>& labels = setup.labels[i];
        std::vector<std::vector<int>> prompts;
        for (const EncodedExample& e : task.test) prompts.push_back(e.prompt);
        RankingSettings settings;
        settings.batch_size = options.eval_batch_size;
        settings.max_T = max_T;
        settings.first_batch = distributed().rank;
        settings.batch_stride = distributed().world_size;
        std::vector<std::vector<double>> scores =
            label_scores(model, prompts, labels, settings,
                         [&](const std::vector<const EncodedExample*>& rows, const TrainingBatch& batch) {
                             method.before_forward(context, rows, batch.T);
                         });
        if (distributed().world_size > 1) {
            std::vector<double> all;
            for (const std::vector<double>& row : scores) all.insert(all.end(), row.begin(), row.end());
            sum_over_ranks_host(all.data(), all.size(), "the label scores");
            for (size_t p = 0; p < scores.size(); p++)
                std::copy(all.begin() + p * labels.size(), all.begin() + (p + 1) * labels.size(), scores[p].begin());
        }
        std::vector<size_t> chosen;
        for (const std::vector<double>& row : scores) chosen.push_back(ranked_label(row));
        return chosen;
    }
};
