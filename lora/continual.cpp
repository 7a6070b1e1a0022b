// The continual-learning task loop (lora/continual.h); the method hooks are described in lora/method.h. Beside it:
// the set-up (lora/continual_setup.h), a step's rows (lora/step_batch.h), the evaluation (lora/continual_eval.h),
// the run's files (lora/run_files.h) and what it prints (lora/continual_print.h).
#include "lora/continual.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/record_files.h"
#include "lora/continual_eval.h"
#include "lora/continual_print.h"
#include "lora/continual_setup.h"
#include "lora/methods/registry.h"
#include "lora/run_files.h"
#include "lora/step_batch.h"
#include "model/backend.h"
#include "model/checkpoint.h"
#include "model/data_parallel.h"
#include "model/device.h"
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

// One method's run over the tasks: train each task, evaluate, save the task boundary; resume from the latest one.
template <class Backend>
class MethodRun {
public:
    MethodRun(const std::string& method_name, const ContinualSetup& setup, const ContinualOptions& options,
              bool resuming)
        : setup(setup), o(options), resuming(resuming), model(setup.config, setup.base_parameters.data()),
          adapters(setup.config, options.lora), method(make_method<Backend>(method_name, options)),
          context{model, adapters, setup.tasks, 0, options.seed, nullptr, 0, {}},
          dir(options.out_dir + "/" + method_name) {
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
        if (root) keep_task_records(dir, start, result.seconds_per_task);
        const int T = int(setup.tasks.size());
        const int end = o.stop_after > 0 ? std::min(T, o.stop_after) : T;
        for (int t = start; t < end; t++) {
            Clock::time_point started = Clock::now();
            context.task = t;
            train_task(t);
            evaluate_seen_tasks(t);
            result.accuracy.push_back(result.eval == "rank" ? rows.rank.back() : rows.generate.back());
            result.seconds_per_task.push_back(seconds_since(started));
            finish_task(t);
        }
        result.modes["generate"] = {rows.generate, continual_metrics(rows.generate)};
        if (rank_mode_complete()) result.modes["rank"] = {rows.rank, continual_metrics(rows.rank)};
        if (!result.modes.count(result.eval))  // resume() refuses a run whose rank rows it cannot restore
            fail("cl: " + result.method + ": the " + result.eval + " evaluation's matrix is incomplete");
        result.accuracy = result.modes.at(result.eval).accuracy;
        result.metrics = result.modes.at(result.eval).metrics;
        result.final_adapters = adapters.parameters_to_host();
        check_same_on_all_ranks(checksum(result.final_adapters), "the trained adapters");
        if (root) write_results(dir, result);
        return result;
    }

private:
    const ContinualSetup& setup;
    const ContinualOptions& o;
    const bool resuming;  // the run in out_dir continues: each method from its latest task boundary
    GPT2<Backend> model;
    LoraAdapters<Backend> adapters;
    std::unique_ptr<ContinualMethod<Backend>> method;
    ContinualContext<Backend> context;
    std::string dir;
    MethodResult result;
    std::string predictions;  // predictions.jsonl's lines of the current task's evaluations (single process)
    int max_T = 0;
    AccuracyRows rows;  // each evaluation mode's rows a[j][i] (the primary mode's are also result.accuracy's)
    double generate_seconds = 0, rank_seconds = 0;  // the current task's evaluation time in each mode
    // data parallelism (model/distributed.h): every rank trains and evaluates its share; rank 0 alone prints
    // and writes files
    const bool root = is_root_rank();
    const bool quiet = o.quiet || !root;

    // The running sums of a task's training between two log lines.
    struct TrainingLog {
        double loss_sum = 0, method_loss_sum = 0, tokens = 0;
        int count = 0;
        Clock::time_point last = Clock::now();
    };

    void train_task(int t) {
        method->task_start(context);
        lora_reset_optimizer(adapters);
        int step = 0;
        TrainingLog log;
        // the task's steps, as its first epoch counts them (a method's examples per epoch do not change)
        const long batches = long((method->training_examples(context).size() + size_t(o.batch_size) - 1) /
                                  size_t(o.batch_size));
        const long total_steps = batches * o.epochs;
        const std::string task_label = result.method + " task " + std::to_string(t + 1) + "/" +
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
                double method_loss = 0, tokens = 0;
                const double loss = train_step(t, step, groups, method_loss, tokens);
                step++;
                log.loss_sum += loss;
                log.method_loss_sum += method_loss;
                log.count++;
                log.tokens += tokens;
                log_step(t, epoch, step, total_steps, task_label, progress, log);
            }
        }
        method->task_end(context);
    }

    // One optimizer step (step: the task's steps before it) on the step's row groups; returns its loss, the
    // method's part of it in method_loss, and the global batch's tokens.
    double train_step(int t, int step, const std::vector<std::vector<const EncodedExample*>>& groups,
                      double& method_loss, double& tokens) {
        std::vector<const EncodedExample*> global_rows, rows_here;
        const TrainingBatch global_batch = make_step_batch(groups, max_T, global_rows);
        size_t first_row = 0;
        TrainingBatch batch = take_rank_rows(global_batch, groups, global_rows, rows_here, context.group_rows, first_row);
        adapters.dropout_first_row = first_row * size_t(batch.T);  // the masks' rows are positions (b, t)
        context.batch = &batch;
        context.step = step;
        adapters.training = true;
        adapters.dropout_seed = derive_seed(o.seed, t, step, 3);  // the step's LoRA-dropout masks
        method->before_forward(context, rows_here, batch.T);
        gpt2_forward(model, batch.inputs.data(), batch.targets.data(), batch.loss_weights.data(), batch.B, batch.T);
        gpt2_global_loss(model);  // data parallelism: the backward divides by the global weight sum
        lora_zero_grad(adapters);
        method->before_backward(context);
        gpt2_backward(model);
        model.extra_dlnf = nullptr;
        sum_over_ranks(context, adapters.gradients, adapters.num_parameters, "the adapters' gradients");
        method_loss = method->extra_loss(context);
        const double loss = model.mean_loss + method_loss;
        if (!std::isfinite(loss))
            fail("cl: " + result.method + " task " + setup.tasks[t].name + " step " + std::to_string(step + 1) +
                 ": the loss is not finite; stopped (the latest adapters are those of task " + std::to_string(t) +
                 ")");
        double norm = std::sqrt(Backend::sum_of_squares(adapters.gradients, adapters.num_parameters) +
                                method->extra_gradient_sum_of_squares(context));
        if (!std::isfinite(norm))
            fail("cl: task " + setup.tasks[t].name + " step " + std::to_string(step + 1) +
                 ": the gradient norm is not finite");
        const float clip = o.optimizer.grad_clip;
        const float scale = clip > 0 ? float(std::min(1.0, clip / (norm + 1e-6))) : 1.0f;
        lora_update(adapters, o.optimizer, step + 1, scale);
        method->extra_update(context, o.optimizer, step + 1, scale);
        method->after_step(context);
        context.batch = nullptr;
        adapters.training = false;
        adapters.dropout_first_row = 0;
        tokens = double(global_batch.B) * global_batch.T;
        return loss;
    }

    // The live line after each step; a log line and a training record every log_every steps, and at the task's
    // last step (then the sums start again).
    void log_step(int t, int epoch, int step, long total_steps, const std::string& task_label, Progress& progress,
                  TrainingLog& log) {
        const double tokens_per_second = log.tokens / seconds_since(log.last);
        char where[160];  // "epoch 3/16 step 50/1008 | loss 0.4123"
        std::snprintf(where, sizeof(where), "epoch %d/%d step %d/%ld | loss %.4f", epoch + 1, o.epochs, step,
                      total_steps, log.loss_sum / log.count);
        progress.update(step, std::string(where) + " | " + std::to_string(std::lround(tokens_per_second)) + " tok/s");
        if (o.log_every <= 0 || (step % o.log_every != 0 && step != total_steps)) return;
        const double ms = 1000 * seconds_since(log.last) / log.count;
        if (!quiet) {
            char rest[120];
            std::snprintf(rest, sizeof(rest), " | lr %.2e | %.1f ms | %.0f tok/s", o.optimizer.learning_rate, ms,
                          tokens_per_second);
            progress.print(task_label + " " + where + rest);
        }
        if (root)
            append_records(dir + "/metrics.jsonl",
                           json{{"task", t + 1}, {"epoch", epoch + 1}, {"step", step},
                                {"loss", log.loss_sum / log.count},
                                {"method_loss", log.method_loss_sum / log.count},
                                {"lr", o.optimizer.learning_rate}, {"ms", ms}}.dump() + "\n");
        log = TrainingLog();
    }

    // After task t: every task seen so far (--eval-all: every task) in both modes; a row of each.
    void evaluate_seen_tasks(int t) {
        const int T = int(setup.tasks.size()), evaluated = o.eval_all ? T : t + 1;
        std::vector<double> generated, ranked;
        generate_seconds = rank_seconds = 0;
        Progress progress(result.method + " evaluation after task " + std::to_string(t + 1) + "/" + std::to_string(T),
                          evaluated, !quiet && progress_on_terminal());
        TaskEvaluation<Backend> evaluation{model, *method, context, setup, o, max_T};
        for (int i = 0; i < evaluated; i++) {
            progress.update(i, "task " + std::to_string(i + 1) + "/" + std::to_string(evaluated) + " (" +
                                   setup.tasks[size_t(i)].name + ")");
            TaskAnswers answers;
            const TaskScores scores = evaluation.evaluate(i, answers);
            generated.push_back(scores.generate);
            ranked.push_back(scores.rank);
            generate_seconds += scores.generate_seconds;
            rank_seconds += scores.rank_seconds;
            // data parallelism: each rank holds only its share of the answers, so none are written
            if (root && distributed().world_size == 1)
                predictions += prediction_lines(setup.tasks[size_t(i)], t + 1, answers, setup.label_texts[size_t(i)]);
        }
        progress.finish();
        rows.generate.push_back(generated);
        rows.rank.push_back(ranked);
    }

    // Whether results.json gets the rank mode: every task is closed-label and every rank score is known.
    bool rank_mode_complete() const {
        if (!setup.all_closed) return false;
        for (const std::vector<double>& row : rows.rank)
            for (double a : row)
                if (!std::isfinite(a)) return false;
        return true;
    }

    // The task boundary: the adapter file (adapters, accuracy rows, the method's state) and the task's records.
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
        save_accuracy_rows(file, rows);
        method->save_state(context, file);
        check_same_on_all_ranks(checksum(file.tensor("lora")), "the adapters at the task boundary");
        if (!root) return;
        // the task's records first, then its adapters: a resume from these adapters finds every line of the task,
        // one from the previous task's drops them (MethodRun::run), so a kill between the two loses nothing
        append_task_records(dir, t, setup.tasks[t].name, result, rows, setup.any_closed, diagnostics, predictions);
        predictions.clear();
        write_adapter_file(adapter_path(dir, t + 1), file);
        if (!quiet)
            print_task_boundary(result.method, t, setup, result, rows, diagnostics, rank_seconds, generate_seconds);
    }

    // Restores the latest task boundary saved in dir; returns the number of tasks it completed (0: none saved).
    int resume() {
        const int completed = latest_adapter_task(dir, int(setup.tasks.size()));
        if (!completed) return 0;
        const std::string path = adapter_path(dir, completed);
        AdapterFile file = read_adapter_file(path);
        check_adapters_fit(file, path, setup.config, o.lora);
        adapters.resize(file.branches, file.tensor("lora"));
        adapters.first_trainable = file.first_trainable;
        load_accuracy_rows(file, path, completed, result.eval, rows);
        for (int j = 0; j < completed; j++) {
            result.accuracy.push_back(result.eval == "rank" ? rows.rank[size_t(j)] : rows.generate[size_t(j)]);
            result.seconds_per_task.push_back(0);  // MethodRun::run reads them from metrics.jsonl
        }
        context.task = completed;
        method->load_state(context, file);
        if (!quiet) std::printf("%s: resumed from %s (%d tasks done)\n", result.method.c_str(), path.c_str(), completed);
        return completed;
    }
};

template <class Backend>
MethodResult run_method(const std::string& name, const ContinualSetup& setup, const ContinualOptions& options,
                        bool resuming) {
    MethodRun<Backend> run(name, setup, options, resuming);
    return run.run();
}

// Runs every method of the options in turn (each resumes from its own folder when the run resumes), prints each
// accuracy matrix, then writes comparison.json and prints the comparison table.
std::vector<MethodResult> run_methods(const ContinualSetup& setup, const ContinualOptions& options, Device device,
                                      bool resuming) {
    const bool quiet = options.quiet || !is_root_rank();
    std::vector<MethodResult> results;
    for (const std::string& name : options.methods) {
        results.push_back(with_backend(device, [&](auto backend) {
            return run_method<typename decltype(backend)::type>(name, setup, options, resuming);
        }));
        if (!quiet) print_matrix(results.back());
    }
    if (!is_root_rank()) return results;
    write_comparison(options.out_dir, results);
    if (!quiet) print_comparison(results);
    return results;
}

}  // namespace

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
    ContinualSetup setup;
    prepare_setup(setup, options);
    if (!options.quiet && is_root_rank()) print_setup(setup, options, device, precision);  // data parallelism: rank 0
    RunDirectory run(options.out_dir, describe_run(options, device, precision), options.start, options.overwrite);
    // the synthetic benchmark's random base, so that its adapters can be exported (train export-hf, export-peft)
    if (options.base_checkpoint.empty() && is_root_rank())
        write_checkpoint(options.out_dir + "/base.bin", setup.config, setup.base_parameters.data());
    return run_recorded(run, [&] { return run_methods(setup, options, device, run.resuming()); });
}
