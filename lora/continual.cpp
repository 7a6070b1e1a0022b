// The continual-learning task loop (lora/continual.h); the method hooks are described in lora/method.h.
#include "lora/continual.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "data/record_files.h"
#include "data/synthetic_tasks.h"
#include "data/task_data.h"
#include "data/text_codec.h"
#include "data/tokenizer.h"
#include "lora/methods/registry.h"
#include "model/backend.h"
#include "model/checkpoint.h"
#include "model/cpu/threads.h"
#include "model/data_parallel.h"
#include "model/device.h"
#include "model/generate.h"
#include "model/initialisation.h"
#include "model/precision.h"
#include "model/progress.h"

using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// A seed for one (task, epoch or step, purpose) of a run: resumable runs derive every random choice this way.
uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t purpose) {
    Random random(seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL) ^ (purpose << 56));
    return random.next();
}

// Everything the methods share: the tasks, encoded, the base model and the tokenizer.
struct Setup {
    GPT2Config config;
    std::vector<float> base_parameters;
    std::vector<EncodedTask> tasks;
    GPT2Tokenizer tokenizer;  // loaded for real data only
    TextCodec codec;
    std::vector<bool> stops;  // (V) tokens that end a generated answer
    // label ranking: each task's closed label set (data/cl_batches.h closed_label_set, from its training answers;
    // empty: an open task) and each label's text (its tokens without the eot, decoded) for exact match
    std::vector<std::vector<std::vector<int>>> labels;
    std::vector<std::vector<std::string>> label_texts;
    bool all_closed = false, any_closed = false;
    std::string eval;  // the primary evaluation mode, "rank" or "generate" (--eval resolved)
};

// --task-prefix resolved: auto is on for the Long Sequence orders 4, 5 and 6 (O-LoRA's scripts run them with
// --add_task_name and --add_dataset_name), off for every other order.
bool task_prefix_on(const ContinualOptions& o) {
    if (o.task_prefix != "auto") return o.task_prefix == "on";
    return o.order == "4" || o.order == "5" || o.order == "6";
}

EncodedTask encode_task(const Task& task, const TextCodec& codec) {
    EncodedTask encoded;
    encoded.name = task.name;
    encoded.train = encode_examples(task.train, codec);
    encoded.test = encode_examples(task.test, codec);
    for (const TaskExample& e : task.test) {
        encoded.test_prompts.push_back(e.prompt);
        encoded.test_answers.push_back(e.answer);
    }
    encoded.metric = trace_metric_for(task.name);
    if (encoded.train.empty()) fail(task.directory + ": task '" + task.name + "' has no training examples");
    if (encoded.test.empty()) fail(task.directory + ": task '" + task.name + "' has no test examples");
    return encoded;
}

void prepare(Setup& setup, const ContinualOptions& o) {
    if (!o.order.empty() && o.base_checkpoint.empty()) fail("cl: real tasks need a base model: give --base <checkpoint>");
    std::vector<Task> tasks;
    if (o.order.empty()) {
        SyntheticBenchmarkOptions synthetic;
        synthetic.num_tasks = o.synthetic_tasks;
        synthetic.disjoint_inputs = o.synthetic_disjoint_inputs;
        synthetic.seed = o.seed;
        tasks = synthetic_cl_benchmark(synthetic);
        for (Task& task : tasks) {  // --max-train / --max-test apply to the built-in tasks too
            if (o.max_train > 0 && task.train.size() > o.max_train) task.train.resize(o.max_train);
            if (o.max_test > 0 && task.test.size() > o.max_test) task.test.resize(o.max_test);
        }
        setup.codec = byte_codec();
    } else {
        TaskLoadOptions load;
        load.max_train = o.max_train;
        load.max_test = o.max_test;
        load.prefix_task_and_dataset = task_prefix_on(o);
        for (const std::string& dir : task_order(o.benchmark_root, o.order)) {
            tasks.push_back(load_task(dir, load));
            if (tasks.back().train_file != "train.json" && !o.quiet && is_root_rank())
                std::printf("cl: %s trains on its %s: it has no train.json\n", tasks.back().name.c_str(),
                            tasks.back().train_file.c_str());
        }
        setup.tokenizer.load_dir(o.tokenizer_dir.empty() ? "../shared/data/tokenizer/gpt2" : o.tokenizer_dir);
        setup.codec = gpt2_codec(setup.tokenizer);
    }
    if (o.base_checkpoint.empty()) {
        setup.config = config_from_spec(o.base_config);
        setup.base_parameters = gpt2_random_parameters(setup.config, o.seed);
    } else {
        Checkpoint checkpoint = read_checkpoint(o.base_checkpoint);
        setup.config = checkpoint.config;
        setup.base_parameters = std::move(checkpoint.parameters);
    }
    if (setup.config.max_seq_len < 2)
        fail("cl: the base model's context of " + std::to_string(setup.config.max_seq_len) +
             " token holds no prompt before an answer (max_seq_len must be >= 2)");
    if (setup.config.vocab_size != setup.codec.vocab_size)
        fail("cl: the base model's vocabulary has " + std::to_string(setup.config.vocab_size) + " tokens, the " +
             setup.codec.name + " tokenizer " + std::to_string(setup.codec.vocab_size));
    for (const Task& task : tasks) setup.tasks.push_back(encode_task(task, setup.codec));
    setup.all_closed = true;
    for (const EncodedTask& task : setup.tasks) {
        setup.labels.push_back(closed_label_set(task.train));
        std::vector<std::string> texts;
        for (const std::vector<int>& label : setup.labels.back())
            texts.push_back(setup.codec.decode(std::vector<int>(label.begin(), label.end() - 1)));
        setup.label_texts.push_back(texts);
        setup.all_closed = setup.all_closed && !texts.empty();
        setup.any_closed = setup.any_closed || !texts.empty();
    }
    if (o.eval == "rank" && !setup.all_closed)
        for (size_t i = 0; i < setup.tasks.size(); i++)
            if (setup.labels[i].empty())
                fail("cl: --eval rank: task '" + setup.tasks[i].name + "' is not a closed-label task (its training "
                     "answers take more than " + std::to_string(MAX_CLOSED_LABELS) +
                     " distinct values); use --eval generate or auto");
    setup.eval = o.eval == "auto" ? (setup.all_closed ? "rank" : "generate") : o.eval;
    setup.stops.assign(setup.config.vocab_size, false);
    for (int id = 0; id < setup.config.vocab_size; id++)
        setup.stops[id] = id == setup.codec.eot_token || setup.codec.decode({id}).find('\n') != std::string::npos;
}

// The step's batch: the groups' rows one after another; each group's answer tokens weigh 1 / (groups * its
// answer-token count), so the weighted mean loss is the mean over groups of each group's mean loss.
TrainingBatch make_step_batch(const std::vector<std::vector<const EncodedExample*>>& groups, int max_T,
                              std::vector<const EncodedExample*>& all_rows) {
    all_rows.clear();
    for (const auto& group : groups) all_rows.insert(all_rows.end(), group.begin(), group.end());
    TrainingBatch batch = make_training_batch(all_rows, max_T);
    size_t row = 0;
    for (const auto& group : groups) {
        double count = 0;
        for (size_t r = row; r < row + group.size(); r++)
            for (int t = 0; t < batch.T; t++) count += batch.loss_weights[r * batch.T + t];
        for (size_t r = row; r < row + group.size(); r++)
            for (int t = 0; t < batch.T; t++)
                batch.loss_weights[r * batch.T + t] *= float(count > 0 ? 1.0 / (groups.size() * count) : 0.0);
        row += group.size();
    }
    return batch;
}

// Data parallelism: this rank's rows of the step's global batch, a contiguous slice (rank_slice) with the global
// T and loss weights; rows gets their examples, group_rows how many of each group's rows the slice holds, and
// first_row the global index of its first row (for the dropout masks). A rank left without rows (a global batch
// smaller than the world) gets the first row at weight 0: it runs the same hooks and collectives, adding nothing.
TrainingBatch take_rank_rows(const TrainingBatch& global, const std::vector<std::vector<const EncodedExample*>>& groups,
                             const std::vector<const EncodedExample*>& all_rows,
                             std::vector<const EncodedExample*>& rows, std::vector<int>& group_rows,
                             size_t& first_row) {
    const Distributed& d = distributed();
    const RankSlice slice = rank_slice(size_t(global.B), d.rank, d.world_size);
    const bool empty = slice.count == 0;
    first_row = empty ? 0 : slice.first;
    const size_t count = empty ? 1 : slice.count, T = size_t(global.T);
    TrainingBatch local;
    local.B = int(count), local.T = global.T;
    local.inputs.assign(global.inputs.begin() + first_row * T, global.inputs.begin() + (first_row + count) * T);
    local.targets.assign(global.targets.begin() + first_row * T, global.targets.begin() + (first_row + count) * T);
    local.loss_weights.assign(global.loss_weights.begin() + first_row * T,
                              global.loss_weights.begin() + (first_row + count) * T);
    if (empty) std::fill(local.loss_weights.begin(), local.loss_weights.end(), 0.0f);
    rows.assign(all_rows.begin() + first_row, all_rows.begin() + first_row + count);
    group_rows.clear();
    size_t group_first = 0;
    for (const auto& group : groups) {  // |[group_first, + size) intersected with the slice|
        const size_t begin = std::max(group_first, slice.first);
        const size_t end = std::min(group_first + group.size(), slice.first + slice.count);
        group_rows.push_back(int(end > begin ? end - begin : 0));
        group_first += group.size();
    }
    return local;
}

std::string adapter_path(const std::string& dir, int tasks_completed) {
    char name[64];
    std::snprintf(name, sizeof(name), "/adapters_task%02d.bin", tasks_completed);
    return dir + name;
}

// AA, BWT, FT and the diagonal mean as JSON (results.json and comparison.json, per mode).
json metrics_json(const ContinualMetrics& m) {
    return {{"average_accuracy", m.average_accuracy},
            {"backward_transfer", m.backward_transfer},
            {"forgetting", m.forgetting},
            {"diagonal_mean", m.diagonal_mean}};
}

void print_matrix(const MethodResult& r) {
    const bool exact = std::all_of(r.task_metrics.begin(), r.task_metrics.end(),
                                   [](const std::string& m) { return m == metric_name(TaskMetric::exact_match); });
    std::printf("%s: %s (%%) after each task (rows) on each task (columns)\n", r.method.c_str(),
                r.eval == "rank" ? "label-ranking accuracy" : exact ? "exact match" : "each task's metric");
    if (!exact && r.eval != "rank") {
        std::printf("%-14s", "metric");
        for (const std::string& metric : r.task_metrics) std::printf(" %8.8s", metric.c_str());
        std::printf("\n");
    }
    std::printf("%-14s", "");
    for (const std::string& name : r.task_names) std::printf(" %8.8s", name.c_str());
    std::printf("\n");
    for (size_t j = 0; j < r.accuracy.size(); j++) {
        std::printf("after %-8.8s", r.task_names[j].c_str());
        for (double a : r.accuracy[j]) std::printf(" %8.1f", a);
        std::printf("\n");
    }
    const double total = std::accumulate(r.seconds_per_task.begin(), r.seconds_per_task.end(), 0.0);
    std::printf("%s: AA %.1f  BWT %.1f  FT %.1f  diagonal %.1f  (%.1f s)\n", r.method.c_str(),
                r.metrics.average_accuracy, r.metrics.backward_transfer, r.metrics.forgetting, r.metrics.diagonal_mean,
                total);
    for (const auto& [name, mode] : r.modes)
        if (name != r.eval)
            std::printf("%s (%s): AA %.1f  BWT %.1f  FT %.1f  diagonal %.1f\n", r.method.c_str(), name.c_str(),
                        mode.metrics.average_accuracy, mode.metrics.backward_transfer, mode.metrics.forgetting,
                        mode.metrics.diagonal_mean);
    std::printf("\n");
    std::fflush(stdout);
}

template <class Backend>
class MethodRun {
public:
    MethodRun(const std::string& method_name, const Setup& setup, const ContinualOptions& options, bool resuming)
        : setup(setup), o(options), resuming(resuming), model(setup.config, setup.base_parameters.data()),
          adapters(setup.config, options.lora), method(make_method<Backend>(method_name, options)),
          context{model, adapters, setup.tasks, 0, options.seed, nullptr, 0, {}}, dir(options.out_dir + "/" + method_name) {
        model.frozen_base = true;
        model.sparse_logits = true;  // the loss is on the answer tokens only: no logits at the prompt positions
        model.logits_chunk_rows = TRAINING_LOGITS_CHUNK_ROWS;  // and those never all at once
        // mixed precision on CUDA stores the frozen base in bf16 for its forward products (GPT2::bf16_base)
        model.bf16_base = Backend::stores_frozen_base_in_bf16();
        model.lora = &adapters;
        result.method = method_name;
        result.eval = setup.eval;
        for (const EncodedTask& t : setup.tasks) {
            result.task_names.push_back(t.name);
            result.task_metrics.push_back(metric_name(t.metric));
        }
        max_T = o.max_seq_len > 0 ? std::min(o.max_seq_len, setup.config.max_seq_len) : setup.config.max_seq_len;
    }

    MethodResult run() {
        if (root) make_directories(dir);
        const int start = resuming ? resume() : 0;
        if (root) {  // the records of the tasks the adapters hold, and nothing after them (a kill may have left more)
            keep_records(dir + "/metrics.jsonl", [&](const json& line) { return line.value("task", 0) <= start; });
            keep_records(dir + "/predictions.jsonl",
                         [&](const json& line) { return line.value("after_task", 0) <= start; });
            // the finished tasks' times, from their records (the adapter files hold only what they compute)
            for (const json& line : read_records(dir + "/metrics.jsonl")) {
                const int task = line.value("task", 0);
                if (task >= 1 && task <= start && line.contains("accuracy"))  // a task's record, not a step's
                    result.seconds_per_task[size_t(task - 1)] = line.value("seconds", 0.0);
            }
        }
        const int T = int(setup.tasks.size());
        const int end = o.stop_after > 0 ? std::min(T, o.stop_after) : T;
        for (int t = start; t < end; t++) {
            Clock::time_point started = Clock::now();
            context.task = t;
            train_task(t);
            std::vector<double> generated, ranked;
            generate_seconds = rank_seconds = 0;
            const int evaluated = o.eval_all ? T : t + 1;
            Progress progress(method->name() + " evaluation after task " + std::to_string(t + 1) + "/" +
                                  std::to_string(T),
                              evaluated, !quiet && progress_on_terminal());
            for (int i = 0; i < evaluated; i++) {
                progress.update(i, "task " + std::to_string(i + 1) + "/" + std::to_string(evaluated) + " (" +
                                       setup.tasks[size_t(i)].name + ")");
                const TaskScores scores = evaluate(i);
                generated.push_back(scores.generate);
                ranked.push_back(scores.rank);
            }
            progress.finish();
            generate_rows.push_back(generated);
            rank_rows.push_back(ranked);
            result.accuracy.push_back(result.eval == "rank" ? ranked : generated);
            result.seconds_per_task.push_back(seconds_since(started));
            finish_task(t);
        }
        result.modes["generate"] = {generate_rows, continual_metrics(generate_rows)};
        if (rank_mode_complete()) result.modes["rank"] = {rank_rows, continual_metrics(rank_rows)};
        if (!result.modes.count(result.eval))  // resume() refuses a run whose rank rows it cannot restore
            fail("cl: " + method->name() + ": the " + result.eval + " evaluation's matrix is incomplete");
        result.accuracy = result.modes.at(result.eval).accuracy;
        result.metrics = result.modes.at(result.eval).metrics;
        result.final_adapters = adapters.parameters_to_host();
        check_same_on_all_ranks(checksum(result.final_adapters), "the trained adapters");
        if (root) write_results();
        return result;
    }

private:
    const Setup& setup;
    const ContinualOptions& o;
    const bool resuming;  // the run in out_dir continues: each method from its latest task boundary
    GPT2<Backend> model;
    LoraAdapters<Backend> adapters;
    std::unique_ptr<ContinualMethod<Backend>> method;
    ContinualContext<Backend> context;
    std::string dir;
    MethodResult result;
    std::vector<json> predictions;  // the current task's evaluations, one object per test example (single process)
    int max_T = 0;
    // each evaluation mode's rows a[j][i] (the primary mode's are also result.accuracy's); a rank score is NaN for
    // an open task (no labels), or for a task boundary restored from an adapter file without ranking rows
    std::vector<std::vector<double>> generate_rows, rank_rows;
    double generate_seconds = 0, rank_seconds = 0;  // the current task's evaluation time in each mode
    // data parallelism (model/distributed.h): every rank trains and evaluates its share; rank 0 alone prints
    // and writes files
    const bool root = is_root_rank();
    const bool quiet = o.quiet || !root;

    void train_task(int t) {
        method->task_start(context);
        lora_reset_optimizer(adapters);
        int step = 0;
        double loss_sum = 0, method_loss_sum = 0, tokens_since_log = 0;
        int loss_count = 0;
        Clock::time_point last_log = Clock::now();
        // the task's steps, as its first epoch counts them (a method's examples per epoch do not change)
        const long batches = long((method->training_examples(context).size() + size_t(o.batch_size) - 1) /
                                  size_t(o.batch_size));
        const long total_steps = batches * o.epochs;
        const std::string task_label = method->name() + " task " + std::to_string(t + 1) + "/" +
                                       std::to_string(setup.tasks.size()) + " (" + setup.tasks[t].name + ")";
        Progress progress(task_label, total_steps, !quiet && progress_on_terminal());
        for (int epoch = 0; epoch < o.epochs; epoch++) {
            std::vector<const EncodedExample*> examples = method->training_examples(context);
            Random shuffle(derive_seed(o.seed, t, epoch, 1));
            for (size_t i = examples.size(); i > 1; i--) std::swap(examples[i - 1], examples[shuffle.below(i)]);
            for (size_t first = 0; first < examples.size(); first += o.batch_size) {
                std::vector<std::vector<const EncodedExample*>> groups(1);
                groups[0].assign(examples.begin() + first,
                                 examples.begin() + std::min(examples.size(), first + o.batch_size));
                method->extend_batch(context, groups, derive_seed(o.seed, t, step, 2));
                std::vector<const EncodedExample*> global_rows, rows;
                const TrainingBatch global_batch = make_step_batch(groups, max_T, global_rows);
                size_t first_row = 0;
                TrainingBatch batch = take_rank_rows(global_batch, groups, global_rows, rows, context.group_rows, first_row);
                adapters.dropout_first_row = first_row * size_t(batch.T);  // the masks' rows are positions (b, t)
                context.batch = &batch;
                context.step = step;
                adapters.training = true;
                adapters.dropout_seed = derive_seed(o.seed, t, step, 3);  // the step's LoRA-dropout masks
                method->before_forward(context, rows, batch.T);
                gpt2_forward(model, batch.inputs.data(), batch.targets.data(), batch.loss_weights.data(), batch.B,
                             batch.T);
                gpt2_global_loss(model);  // data parallelism: the backward divides by the global weight sum
                lora_zero_grad(adapters);
                method->before_backward(context);
                gpt2_backward(model);
                model.extra_dlnf = nullptr;
                sum_over_ranks(context, adapters.gradients, adapters.num_parameters, "the adapters' gradients");
                const double method_loss = method->extra_loss(context), loss = model.mean_loss + method_loss;
                if (!std::isfinite(loss))
                    fail("cl: " + method->name() + " task " + setup.tasks[t].name + " step " + std::to_string(step + 1) +
                         ": the loss is not finite; stopped (the latest adapters are those of task " +
                         std::to_string(t) + ")");
                double norm = std::sqrt(Backend::sum_of_squares(adapters.gradients, adapters.num_parameters) +
                                        method->extra_gradient_sum_of_squares(context));
                if (!std::isfinite(norm)) fail("cl: task " + setup.tasks[t].name + " step " +
                                               std::to_string(step + 1) + ": the gradient norm is not finite");
                const float clip = o.optimizer.grad_clip;
                const float scale = clip > 0 ? float(std::min(1.0, clip / (norm + 1e-6))) : 1.0f;
                step++;
                lora_update(adapters, o.optimizer, step, scale);
                method->extra_update(context, o.optimizer, step, scale);
                method->after_step(context);
                context.batch = nullptr;
                adapters.training = false;
                adapters.dropout_first_row = 0;
                loss_sum += loss;
                method_loss_sum += method_loss;
                loss_count++;
                tokens_since_log += double(global_batch.B) * global_batch.T;
                const double tokens_per_second = tokens_since_log / seconds_since(last_log);
                char where[160];  // "epoch 3/16 step 50/1008 | loss 0.4123"
                std::snprintf(where, sizeof(where), "epoch %d/%d step %d/%ld | loss %.4f", epoch + 1, o.epochs, step,
                              total_steps, loss_sum / loss_count);
                progress.update(step, std::string(where) + " | " + std::to_string(std::lround(tokens_per_second)) +
                                          " tok/s");
                // a log line and a training record every log_every steps, and at the task's last step
                if (o.log_every > 0 && (step % o.log_every == 0 || step == total_steps)) {
                    const double ms = 1000 * seconds_since(last_log) / loss_count;
                    if (!quiet) {
                        char rest[120];
                        std::snprintf(rest, sizeof(rest), " | lr %.2e | %.1f ms | %.0f tok/s",
                                      o.optimizer.learning_rate, ms, tokens_per_second);
                        progress.print(task_label + " " + where + rest);
                    }
                    if (root)
                        append_records(dir + "/metrics.jsonl",
                                       json{{"task", t + 1}, {"epoch", epoch + 1}, {"step", step},
                                            {"loss", loss_sum / loss_count},
                                            {"method_loss", method_loss_sum / loss_count},
                                            {"lr", o.optimizer.learning_rate}, {"ms", ms}}.dump() + "\n");
                    loss_sum = method_loss_sum = 0, loss_count = 0, tokens_since_log = 0;
                    last_log = Clock::now();
                }
            }
        }
        method->task_end(context);
    }

    // Task i's scores x100 in both modes: exact match of the greedy answers, and of the ranked labels (NaN for an
    // open task). Task-agnostic: the method sees the prompts, never the task id.
    struct TaskScores {
        double generate = 0, rank = std::nan("");
    };

    // Data parallelism: rank r decodes the evaluation batches r, r + world_size, ... (each exactly the batch a
    // single process decodes), and the ranks' counts of correct answers are added up; the ranking likewise splits
    // its batches and adds up the scores (rank_labels).
    TaskScores evaluate(int i) {
        const EncodedTask& task = setup.tasks[i];
        Clock::time_point started = Clock::now();
        const size_t batch_size = size_t(o.eval_batch_size), ranks = size_t(distributed().world_size);
        std::vector<size_t> examples_here;  // indices into task.test of this rank's prompts, in order
        for (size_t first = size_t(distributed().rank) * batch_size; first < task.test.size(); first += ranks * batch_size)
            for (size_t k = first; k < std::min(task.test.size(), first + batch_size); k++) examples_here.push_back(k);
        std::vector<std::vector<int>> prompts;
        for (size_t k : examples_here) prompts.push_back(task.test[k].prompt);
        GenerationSettings settings;
        settings.max_new_tokens = o.max_new_tokens;
        settings.batch_size = o.eval_batch_size;
        settings.stops = setup.stops;
        settings.max_T = max_T;  // the prompt cut as training cuts it (data/cl_batches.h, prompt_tokens_kept)
        std::vector<std::vector<int>> outputs;
        if (!prompts.empty())
            outputs = greedy_generate(model, prompts, settings, [&](const std::vector<size_t>& rows) {
                std::vector<const EncodedExample*> examples;
                for (size_t r : rows) examples.push_back(&task.test[examples_here[r]]);
                method->before_forward(context, examples, 1);
            });
        double total = 0;
        std::vector<std::string> answers;
        std::vector<double> example_scores;  // each answer's score x100 by the task's metric
        for (size_t k = 0; k < outputs.size(); k++) {
            answers.push_back(setup.codec.decode(outputs[k]));
            const size_t e = examples_here[k];
            example_scores.push_back(
                score_task_example(task.name, task.test_prompts[e], answers.back(), task.test_answers[e]));
            total += example_scores.back();
        }
        sum_over_ranks_host(&total, 1, "the evaluation's scores");
        TaskScores scores;
        scores.generate = total / double(task.test.size());
        generate_seconds += seconds_since(started);

        std::vector<size_t> ranked;  // (test size) each test example's chosen label; empty for an open task
        if (!setup.labels[i].empty()) {
            started = Clock::now();
            ranked = rank_labels(i);
            double right = 0;
            for (size_t k = 0; k < ranked.size(); k++)
                right += exact_match(setup.label_texts[i][ranked[k]], task.test_answers[k]);
            scores.rank = 100.0 * right / double(task.test.size());
            rank_seconds += seconds_since(started);
        }

        // data parallelism: each rank holds only its share of the answers, so none are written
        if (root && distributed().world_size == 1)
            for (size_t k = 0; k < outputs.size(); k++) {
                const std::string& expected = task.test_answers[examples_here[k]];
                json line = {{"after_task", context.task + 1},
                             {"task", task.name},
                             {"example", examples_here[k]},
                             {"answer", answers[k]},
                             {"expected", expected},
                             {"correct", exact_match(answers[k], expected)}};
                if (task.metric != TaskMetric::exact_match) line["score"] = example_scores[k];
                if (!ranked.empty()) {
                    const std::string& label = setup.label_texts[i][ranked[examples_here[k]]];
                    line["ranked"] = label;
                    line["rank_correct"] = exact_match(label, expected);
                }
                predictions.push_back(line);
            }
        return scores;
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
        settings.batch_size = o.eval_batch_size;
        settings.max_T = max_T;
        settings.first_batch = distributed().rank;
        settings.batch_stride = distributed().world_size;
        std::vector<std::vector<double>> scores =
            label_scores(model, prompts, labels, settings,
                         [&](const std::vector<const EncodedExample*>& rows, const TrainingBatch& batch) {
                             method->before_forward(context, rows, batch.T);
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

    // Whether results.json gets the rank mode: every task is closed-label and every rank score is known.
    bool rank_mode_complete() const {
        if (!setup.all_closed) return false;
        for (const std::vector<double>& row : rank_rows)
            for (double a : row)
                if (!std::isfinite(a)) return false;
        return true;
    }

    void finish_task(int t) {
        Diagnostics diagnostics = method->diagnostics(context);
        AdapterFile file;
        file.num_layers = setup.config.num_layers;
        file.channels = setup.config.channels;
        file.config = o.lora;
        file.branches = adapters.branches;
        file.first_trainable = adapters.first_trainable;
        file.tasks_completed = t + 1;
        file.set("lora", adapters.parameters_to_host());
        // each mode's rows, for a resume: accuracy/generate/<j> and, where every score is known (a run of
        // closed-label tasks), accuracy/rank/<j>
        for (size_t j = 0; j < generate_rows.size(); j++) {
            file.set("accuracy/generate/" + std::to_string(j),
                     std::vector<float>(generate_rows[j].begin(), generate_rows[j].end()));
            const std::vector<double>& rank = rank_rows[j];
            if (std::all_of(rank.begin(), rank.end(), [](double a) { return std::isfinite(a); }))
                file.set("accuracy/rank/" + std::to_string(j), std::vector<float>(rank.begin(), rank.end()));
        }
        method->save_state(context, file);
        check_same_on_all_ranks(checksum(file.tensor("lora")), "the adapters at the task boundary");
        if (!root) return;

        // the task's records first, then its adapters: a resume from these adapters finds every line of the task,
        // one from the previous task's drops them (MethodRun::run), so a kill between the two loses nothing
        json line = {{"task", t + 1},
                     {"name", setup.tasks[t].name},
                     {"accuracy", result.accuracy.back()},
                     {"eval", result.eval},
                     {"seconds", result.seconds_per_task.back()}};
        // both modes' rows (a rank score of an open task is NaN, written null); their evaluation times are printed
        // only (a record's times are its top-level "seconds", which the checks of resumed runs mask)
        line["modes"]["generate"] = {{"accuracy", generate_rows.back()}};
        if (setup.any_closed) line["modes"]["rank"] = {{"accuracy", rank_rows.back()}};
        for (const auto& [key, value] : diagnostics) line["diagnostics"][key] = value;
        // a decoded answer may end inside a multi-byte character, a task name be any bytes: replaced
        append_records(dir + "/metrics.jsonl", line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
        std::string answers;
        for (const json& p : predictions) answers += p.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        append_records(dir + "/predictions.jsonl", answers);
        predictions.clear();
        write_adapter_file(adapter_path(dir, t + 1), file);
        if (!quiet) {
            std::printf("%s after task %d (%s):", method->name().c_str(), t + 1, setup.tasks[t].name.c_str());
            for (double a : result.accuracy.back()) std::printf(" %.1f", a);
            if (setup.any_closed) {  // the other mode's row
                const bool rank = result.eval == "rank";
                std::printf(" (%s; %s", result.eval.c_str(), rank ? "generate" : "rank");
                for (double a : rank ? generate_rows.back() : rank_rows.back()) {
                    if (std::isfinite(a)) std::printf(" %.1f", a);
                    else std::printf(" -");  // an open task has no labels to rank
                }
                std::printf(")");
            }
            for (const auto& [key, value] : diagnostics) std::printf(" | %s %.4g", key.c_str(), value);
            std::printf("  (%.1f s", result.seconds_per_task.back());
            if (setup.any_closed)
                std::printf("; evaluation: rank %.1f s, generate %.1f s", rank_seconds, generate_seconds);
            std::printf(")\n");
            std::fflush(stdout);
        }
    }

    // Restores the latest task boundary saved in dir; returns the number of tasks it completed (0: none saved).
    int resume() {
        int completed = 0;
        for (int k = int(setup.tasks.size()); k >= 1 && !completed; k--)
            if (file_exists(adapter_path(dir, k))) completed = k;
        if (!completed) return 0;
        const std::string path = adapter_path(dir, completed);
        AdapterFile file = read_adapter_file(path);
        if (file.num_layers != setup.config.num_layers || file.channels != setup.config.channels ||
            file.config.rank != o.lora.rank || file.config.modules != o.lora.modules ||
            file.config.alpha != o.lora.alpha)
            fail(path + ": these adapters were written for another model or LoRA configuration (layers " +
                 std::to_string(file.num_layers) + ", channels " + std::to_string(file.channels) + ", rank " +
                 std::to_string(file.config.rank) + ", modules " + lora_modules_string(file.config.modules) + ")");
        adapters.resize(file.branches, file.tensor("lora"));
        adapters.first_trainable = file.first_trainable;
        for (int j = 0; j < completed; j++) {
            // files written before label ranking hold generation's rows as accuracy/<j>, and no ranking rows
            const std::string generate = "accuracy/generate/" + std::to_string(j), rank = "accuracy/rank/" +
                                                                                           std::to_string(j);
            const std::vector<float>& row = file.tensor(file.has(generate) ? generate : "accuracy/" + std::to_string(j));
            generate_rows.emplace_back(row.begin(), row.end());
            if (file.has(rank)) {
                const std::vector<float>& ranked = file.tensor(rank);
                rank_rows.emplace_back(ranked.begin(), ranked.end());
            } else {
                if (result.eval == "rank")
                    fail(path + ": holds no label-ranking scores of task " + std::to_string(j + 1) + "'s evaluation " +
                         "(written before `train cl` ranked labels), so this run's rank evaluation cannot resume");
                rank_rows.emplace_back(row.size(), std::nan(""));
            }
            result.accuracy.push_back(result.eval == "rank" ? rank_rows.back() : generate_rows.back());
            result.seconds_per_task.push_back(0);  // MethodRun::run reads them from metrics.jsonl
        }
        context.task = completed;
        method->load_state(context, file);
        if (!quiet) std::printf("%s: resumed from %s (%d tasks done)\n", method->name().c_str(), path.c_str(), completed);
        return completed;
    }

    void write_results() {
        // the primary mode's matrix and metrics at the top level (as before label ranking), every mode's in "modes"
        json results = {{"method", result.method},
                        {"tasks", result.task_names},
                        {"task_metrics", result.task_metrics},
                        {"eval", result.eval},
                        {"accuracy", result.accuracy},
                        {"average_accuracy", result.metrics.average_accuracy},
                        {"backward_transfer", result.metrics.backward_transfer},
                        {"forgetting", result.metrics.forgetting},
                        {"diagonal_mean", result.metrics.diagonal_mean},
                        {"seconds_per_task", result.seconds_per_task}};
        for (const auto& [name, mode] : result.modes) {
            results["modes"][name] = metrics_json(mode.metrics);
            results["modes"][name]["accuracy"] = mode.accuracy;
        }
        AtomicFileWriter writer(dir + "/results.json");
        std::string text = results.dump(2) + "\n";
        writer.write(text.data(), text.size());
        writer.commit();
    }
};

template <class Backend>
MethodResult run_method(const std::string& name, const Setup& setup, const ContinualOptions& options, bool resuming) {
    MethodRun<Backend> run(name, setup, options, resuming);
    return run.run();
}

// The primary mode's numbers; with two modes (a run of closed-label tasks), the other one's AA in a last column.
void print_comparison(const std::vector<MethodResult>& results) {
    const bool two = !results.empty() && results[0].modes.size() == 2;
    const std::string other = two ? (results[0].eval == "rank" ? "generate" : "rank") : "";
    if (two) std::printf("evaluation: %s (the columns); %s's AA in the last one\n", results[0].eval.c_str(),
                         other.c_str());
    std::printf("%-16s %7s %7s %7s %9s %8s", "method", "AA", "BWT", "FT", "diagonal", "s/task");
    if (two) std::printf(" %11s", ("AA " + other).c_str());
    std::printf("\n");
    for (const MethodResult& r : results) {
        double total = std::accumulate(r.seconds_per_task.begin(), r.seconds_per_task.end(), 0.0);
        std::printf("%-16s %7.1f %7.1f %7.1f %9.1f %8.2f", r.method.c_str(), r.metrics.average_accuracy,
                    r.metrics.backward_transfer, r.metrics.forgetting, r.metrics.diagonal_mean,
                    total / std::max<size_t>(1, r.seconds_per_task.size()));
        if (two && r.modes.count(other)) std::printf(" %11.1f", r.modes.at(other).metrics.average_accuracy);
        std::printf("\n");
    }
}

// run.json's options: every flag of `train cl` that sets what the run computes, and those that may change when it
// resumes: where and how fast it runs, which methods this session runs (each has its own folder) and how far.
RunDescription describe_run(const ContinualOptions& o, Device device, MatmulPrecision precision) {
    const MethodOptions& m = o.method;
    std::string methods;
    for (const std::string& name : o.methods) methods += (methods.empty() ? "" : ",") + name;
    RunDescription run;
    run.command = "cl";
    run.options = {{"method", methods}, {"order", o.order}, {"benchmark", o.benchmark_root},
                   {"tokenizer", o.tokenizer_dir}, {"max-train", o.max_train}, {"max-test", o.max_test},
                   {"synthetic-tasks", o.synthetic_tasks}, {"synthetic-disjoint", o.synthetic_disjoint_inputs},
                   {"base", o.base_checkpoint}, {"base-config", o.base_config}, {"device", device_name(device)},
                   {"precision", precision_name(precision)}, {"threads", cpu::cpu_threads()},
                   {"lora-modules", lora_modules_string(o.lora.modules)}, {"lora-rank", o.lora.rank},
                   {"lora-alpha", shortest_decimal(o.lora.alpha)}, {"lora-dropout", shortest_decimal(o.lora.dropout)},
                   {"epochs", o.epochs}, {"batch-size", o.batch_size}, {"max-seq-len", o.max_seq_len},
                   {"lr", shortest_decimal(o.optimizer.learning_rate)},
                   {"weight-decay", shortest_decimal(o.optimizer.weight_decay)},
                   {"grad-clip", shortest_decimal(o.optimizer.grad_clip)}, {"replay-size", o.replay_size},
                   {"olora-lambda1", shortest_decimal(m.olora_lambda1)},
                   {"olora-lambda2", shortest_decimal(m.olora_lambda2)}, {"orth", m.olora_orth},
                   {"nlora-lambda", shortest_decimal(m.nlora_lambda)}, {"nlora-form", m.nlora_form},
                   {"ilora-ema", shortest_decimal(m.ilora_ema)}, {"ilora-gamma", shortest_decimal(m.ilora_gamma)},
                   {"ilora-eval", m.ilora_eval}, {"gainlora-gate-hidden", m.gainlora_gate_hidden},
                   {"gainlora-epsilon0", shortest_decimal(m.gainlora_epsilon0)},
                   {"gainlora-max-batches", m.gainlora_max_batches},
                   {"gainlora-restore-norm", m.gainlora_restore_norm},
                   {"amlora-attention-dim", m.amlora_attention_dim},
                   {"amlora-lambda", shortest_decimal(m.amlora_lambda)}, {"amlora-norm", m.amlora_norm},
                   {"eval", o.eval}, {"eval-all", o.eval_all}, {"max-new-tokens", o.max_new_tokens},
                   {"eval-batch-size", o.eval_batch_size}, {"stop-after", o.stop_after}, {"seed", o.seed},
                   {"log-every", o.log_every}};
    // recorded only when on: a run without the prefix records what the runs made before --task-prefix existed
    if (task_prefix_on(o)) run.options["task-prefix"] = "on";
    run.may_change = {"method", "device", "precision", "threads", "stop-after", "log-every"};
    run.outputs = {"comparison.json"};
    for (const std::string& name : known_methods())
        for (const char* file : {"/adapters_task*.bin", "/metrics.jsonl", "/predictions.jsonl", "/results.json"})
            run.outputs.push_back(name + file);
    run.device = device_name(device);
    run.precision = precision_name(precision);
    return run;
}

// Runs every method of the options in turn (each resumes from its own folder when the run resumes), prints each
// accuracy matrix, then writes comparison.json and prints the comparison table.
std::vector<MethodResult> run_methods(const Setup& setup, const ContinualOptions& options, Device device, bool resuming) {
    const bool quiet = options.quiet || !is_root_rank();
    std::vector<MethodResult> results;
    for (const std::string& name : options.methods) {
        results.push_back(with_backend(device, [&](auto backend) {
            return run_method<typename decltype(backend)::type>(name, setup, options, resuming);
        }));
        if (!quiet) print_matrix(results.back());
    }
    json comparison = json::array();
    for (const MethodResult& r : results) {
        json entry = {{"method", r.method},
                      {"eval", r.eval},
                      {"average_accuracy", r.metrics.average_accuracy},
                      {"backward_transfer", r.metrics.backward_transfer},
                      {"forgetting", r.metrics.forgetting},
                      {"diagonal_mean", r.metrics.diagonal_mean},
                      {"seconds_per_task", r.seconds_per_task}};
        for (const auto& [name, mode] : r.modes) entry["modes"][name] = metrics_json(mode.metrics);
        comparison.push_back(entry);
    }
    if (!is_root_rank()) return results;
    AtomicFileWriter writer(options.out_dir + "/comparison.json");
    std::string text = comparison.dump(2) + "\n";
    writer.write(text.data(), text.size());
    writer.commit();
    if (!quiet) print_comparison(results);
    return results;
}

}  // namespace

ContinualPreset continual_preset(bool synthetic) {
    // N-LoRA's 0.04 is for its default scaled form (lambda r^2 mean |B_t A_t|, lora/methods/nlora.h): on the
    // synthetic base's 64 channels r^2 / (d_out d_in) is 16 times the study base's (256 channels), and there the
    // official 0.4 holds the new branch near 0 (task 1: 5%), 0.1 learns 82%, 0.04 97% with a collision rate (1e-2)
    // of 0.25 against IncLoRA's 0.83
    if (synthetic) return {"all", 8, 6, 3e-3f, 0.04f, 1e-4f};
    return {"qkv", 8, 3, 1e-3f, MethodOptions().nlora_lambda, MethodOptions().amlora_lambda};
}

std::vector<std::string> known_methods() { return {"seqlora", "inclora", "replay", "mtl", "ilora", "olora", "nlora",
                                                "gainlora-olora", "gainlora-inflora", "amlora"}; }

std::vector<std::string> parse_methods(const std::string& list) {
    if (list == "all") return known_methods();
    if (list == "baselines") return {"seqlora", "inclora", "replay", "mtl"};
    std::vector<std::string> methods;
    std::string item;
    std::stringstream items(list);
    while (std::getline(items, item, ',')) {
        std::vector<std::string> known = known_methods();
        if (std::find(known.begin(), known.end(), item) == known.end()) {
            std::string names;
            for (const std::string& k : known) names += " " + k;
            fail("unknown method '" + item + "' (known:" + names + ", all)");
        }
        if (std::find(methods.begin(), methods.end(), item) != methods.end())
            fail("--method: '" + item + "' is listed twice (each method writes <out>/" + item + ")");
        methods.push_back(item);
    }
    if (methods.empty()) fail("no method given");
    return methods;
}

std::vector<MethodResult> run_continual(const ContinualOptions& options) {
    if (options.epochs < 1 || options.batch_size < 1 || options.eval_batch_size < 1 || options.max_new_tokens < 1)
        fail("cl: epochs, batch size, eval batch size and max new tokens must be >= 1");
    if (options.eval != "auto" && options.eval != "rank" && options.eval != "generate")
        fail("cl: --eval must be auto, rank or generate, got '" + options.eval + "'");
    if (options.task_prefix != "auto" && options.task_prefix != "on" && options.task_prefix != "off")
        fail("cl: --task-prefix must be auto, on or off, got '" + options.task_prefix + "'");
    validate_lora_config(options.lora);
    const Device device = resolve_device(options.device);
    const MatmulPrecision precision = apply_precision(options.precision, device);
    Setup setup;
    prepare(setup, options);
    const bool quiet = options.quiet || !is_root_rank();  // data parallelism: rank 0 alone prints
    if (!quiet) {
        std::printf("cl: %zu tasks (%s), base %d layers x %d channels, vocab %d, LoRA r=%d alpha=%g dropout %g on "
                    "%s, %d epochs, lr %g, batch %d, %s (%s)\n",
                    setup.tasks.size(), options.order.empty() ? "synthetic" : ("order " + options.order).c_str(),
                    setup.config.num_layers, setup.config.channels, setup.config.vocab_size, options.lora.rank,
                    options.lora.alpha, options.lora.dropout, lora_modules_string(options.lora.modules).c_str(),
                    options.epochs, options.optimizer.learning_rate, options.batch_size, device_name(device),
                    precision_name(precision));
        if (distributed().launched)
            std::printf("  data parallel: %d ranks (%s), each step's batch split between them\n",
                        distributed().world_size, distributed().launcher.c_str());
        for (size_t i = 0; i < setup.tasks.size(); i++) {
            const EncodedTask& t = setup.tasks[i];
            const std::string labels = setup.labels[i].empty() ? "open (more than " + std::to_string(MAX_CLOSED_LABELS) +
                                                                     " distinct answers)"
                                                               : std::to_string(setup.labels[i].size()) + " labels";
            std::printf("  %-12s %5zu train %5zu test  %s, scored by %s\n", t.name.c_str(), t.train.size(),
                        t.test.size(), labels.c_str(), metric_name(t.metric));
        }
        if (task_prefix_on(options)) std::printf("  prompts start with \"Task:<TYPE>\\nDataset:<name>\\n\"\n");
        std::printf("  evaluation: %s%s\n", setup.eval.c_str(),
                    setup.all_closed ? " (label ranking and generation computed)"
                    : setup.any_closed ? " (label ranking computed on the closed-label tasks too)" : "");
    }
    RunDirectory run(options.out_dir, describe_run(options, device, precision), options.start, options.overwrite);
    // the synthetic benchmark's random base, so that its adapters can be exported (train export-hf, export-peft)
    if (options.base_checkpoint.empty() && is_root_rank())
        write_checkpoint(options.out_dir + "/base.bin", setup.config, setup.base_parameters.data());
    return run_recorded(run, [&] { return run_methods(setup, options, device, run.resuming()); });
}

