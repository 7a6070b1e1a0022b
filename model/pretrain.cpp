#include "model/pretrain.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "data/file_io.h"
#include "data/record_files.h"
#include "data/synthetic_tokens.h"
#include "data/token_loader.h"
#include "model/backend.h"
#include "model/checkpoint.h"
#include "model/cpu/threads.h"
#include "model/data_parallel.h"
#include "model/device.h"
#include "model/initialisation.h"
#include "model/precision.h"
#include "model/progress.h"
#include "model/training_state.h"

namespace {

const char* SYNTHETIC_CONFIG = "2:64:4:256:64";

std::string step_file(const std::string& dir, const char* prefix, int step) {
    char name[64];
    std::snprintf(name, sizeof(name), "/%s_%08d.bin", prefix, step);
    return dir + name;
}

struct Data {
    std::unique_ptr<TokenLoader> train, val;
};

Data open_data(const PretrainOptions& options, const GPT2Config& config) {
    Data data;
    const int B = options.batch_size, T = options.seq_len;
    if (options.train_pattern.empty()) {
        // Built-in default: a learnable synthetic stream; validation on a held-out part of the same chain.
        size_t count = std::max<size_t>(size_t(B) * T * 64, 1 << 16);
        std::vector<uint16_t> stream = synthetic_token_stream(count * 9 / 8, config.vocab_size, options.seed);
        std::vector<uint16_t> val(stream.begin() + count, stream.end());
        stream.resize(count);
        data.train = std::make_unique<TokenLoader>(std::move(stream), B, T, config.vocab_size);
        data.val = std::make_unique<TokenLoader>(std::move(val), B, T, config.vocab_size);
        return data;
    }
    data.train = std::make_unique<TokenLoader>(options.train_pattern, B, T, config.vocab_size);
    if (!options.val_pattern.empty())
        data.val = std::make_unique<TokenLoader>(options.val_pattern, B, T, config.vocab_size);
    return data;
}

// The loaders' order: in random order the training rows follow the run's seed, and the validation rows a fixed
// seed of their own, so that every evaluation (and every run with the same validation data) reads the same rows.
void set_data_order(Data& data, const PretrainOptions& options) {
    if (options.data_order != DataOrder::random) return;
    data.train->use_random_order(options.seed);
    if (data.val) data.val->use_random_order(0x76616C6964617465ULL);  // "validate"
}

// Data parallelism: every rank keeps its B / world_size rows of each global batch.
void keep_rank_rows(Data& data) {
    const Distributed& d = distributed();
    data.train->keep_rank_rows(d.rank, d.world_size);
    if (data.val) data.val->keep_rank_rows(d.rank, d.world_size);
}

// The run's closing lines: its steps, wall time, tokens and throughput; the training loss (the
// mean of the last up to 20 steps, the per-step loss being noisy) and the last validation loss.
void print_summary(const PretrainResult& result, const PretrainOptions& options, int tokens_per_step,
                   std::chrono::steady_clock::time_point started) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const size_t steps = result.train_losses.size(), last = std::min<size_t>(steps, 20);
    double tail = 0;
    for (size_t i = steps - last; i < steps; i++) tail += result.train_losses[i];
    const double tokens = double(steps) * tokens_per_step;  // --batch-size is the global batch
    std::printf("pretrain: done: steps %d-%d in %s (%.1f s), %.0f tokens, %.0f tok/s\n", result.first_step,
                options.steps, format_duration(seconds).c_str(), seconds, tokens, tokens / seconds);
    std::printf("  train loss %.4f (mean of the last %zu steps)", last ? tail / double(last) : std::nan(""), last);
    if (!result.val_losses.empty())
        std::printf(", val loss %.4f (step %d)", result.val_losses.back().second, result.val_losses.back().first);
    std::printf("\n  model: %s\n", checkpoint_path(options.out_dir, options.steps).c_str());
}

template <class Backend>
float validation_loss(GPT2<Backend>& model, TokenLoader& val, int batches) {
    val.reset();
    double total = 0;
    for (int i = 0; i < batches; i++) {
        val.next_batch();
        gpt2_forward(model, val.inputs.data(), val.targets.data(), nullptr, val.rows, val.seq_len);
        gpt2_global_loss(model);  // the mean over every rank's rows
        total += model.mean_loss;
    }
    return float(total / batches);
}

template <class Backend>
void save(GPT2<Backend>& model, const TokenLoader& train, const PretrainOptions& options, uint64_t run_id, int step) {
    using real = typename Backend::real;
    std::vector<float> parameters = model.parameters_to_host();
    TrainingState state;
    state.step = step;
    const bool random = train.order == DataOrder::random;
    state.data_order = random ? 1 : 0;
    state.shard_index = random ? 0 : train.shard_index;
    state.shard_position = random ? train.batches_drawn : train.position;
    state.rng_state = options.seed;  // the seed that made the data and the initial weights
    state.stamp = RunStamp{run_id, step};
    state.adam_m.resize(model.num_parameters);
    state.adam_v.resize(model.num_parameters);
    Backend::template download<float, real>(state.adam_m.data(), model.adam_m, model.num_parameters);
    Backend::template download<float, real>(state.adam_v.data(), model.adam_v, model.num_parameters);
    // the model first: a state file is only ever present beside its complete model file
    write_checkpoint(checkpoint_path(options.out_dir, step), model.config, parameters.data(), RunStamp{run_id, step});
    write_training_state(training_state_path(options.out_dir, step), state);
}

// The run's latest checkpoint must be a pair of this run and step: a model and a state file of two runs (or
// two steps) are never mixed.
void expect_run_stamp(const std::string& path, const RunStamp& found, const RunStamp& expected) {
    if (found != expected)
        fail("--resume: " + path + " is not this run's checkpoint of step " + std::to_string(expected.step) +
             (found.stamped() ? " (it has run " + run_id_text(found.run_id) + " step " + std::to_string(found.step)
                              : std::string(" (it has no run stamp")) +
             "; run.json has run " + run_id_text(expected.run_id) + ")");
}

// The model a run starts from: its latest checkpoint when resuming (resume_step > 0), --init-checkpoint, or
// random parameters of --model-config.
Checkpoint starting_model(const PretrainOptions& options, const RunDirectory& run, int resume_step) {
    if (resume_step > 0 || !options.init_checkpoint.empty()) {
        const std::string path = resume_step > 0 ? checkpoint_path(options.out_dir, resume_step) : options.init_checkpoint;
        Checkpoint checkpoint = read_checkpoint(path);
        if (resume_step > 0) expect_run_stamp(path, checkpoint.stamp, RunStamp{run.run_id(), resume_step});
        return checkpoint;
    }
    const bool synthetic = options.train_pattern.empty();
    Checkpoint fresh;
    fresh.config = config_from_spec(options.model_config.empty() ? (synthetic ? SYNTHETIC_CONFIG : "d12")
                                                                 : options.model_config);
    fresh.parameters = gpt2_random_parameters(fresh.config, options.seed);
    return fresh;
}

// A resumed run's AdamW moments and data position, from the training state beside its latest checkpoint, which
// must be of this run, seed and data order.
template <class Backend>
void restore_training_state(GPT2<Backend>& model, Data& data, const PretrainOptions& options, const RunDirectory& run,
                            int resume_step) {
    using real = typename Backend::real;
    const std::string path = training_state_path(options.out_dir, resume_step);
    TrainingState state = read_training_state(path, model.num_parameters);
    expect_run_stamp(path, state.stamp, RunStamp{run.run_id(), resume_step});
    model.adam_m = Backend::template allocate<real>(model.num_parameters);
    model.adam_v = Backend::template allocate<real>(model.num_parameters);
    Backend::upload(model.adam_m, state.adam_m.data(), model.num_parameters);
    Backend::upload(model.adam_v, state.adam_v.data(), model.num_parameters);
    if (state.rng_state != options.seed)
        fail("--resume: the checkpoint was trained with --seed " + std::to_string(state.rng_state) + ", not " +
             std::to_string(options.seed));
    if (state.data_order != (options.data_order == DataOrder::random ? 1 : 0))
        fail(path + ": the run read its data in " + (state.data_order ? "random" : "sequential") + " order, not " +
             data_order_name(options.data_order));
    try {
        if (options.data_order == DataOrder::random) data.train->seek_batch(state.shard_position);
        else data.train->seek(state.shard_index, state.shard_position);
    } catch (const Error& error) {
        fail(path + ": " + error.what());
    }
}

// One optimizer step on the next batch (forward, gradients summed over the ranks, AdamW at the schedule's rate);
// stops the run, before the update, on a loss or gradient norm that is not finite. Returns the norm.
template <class Backend>
double pretrain_step(GPT2<Backend>& model, Data& data, const PretrainOptions& options, const AdamWSettings& settings,
                     int step) {
    auto stopped = [&](const std::string& what) {
        fail("pretrain: step " + std::to_string(step) + ": " + what + "; stopped without a checkpoint (the latest is " +
             "step " + std::to_string(latest_checkpoint_step(options.out_dir)) + ")");
    };
    data.train->next_batch();
    gpt2_forward(model, data.train->inputs.data(), data.train->targets.data(), nullptr, data.train->rows,
                 options.seq_len);
    gpt2_global_loss(model);
    if (!std::isfinite(model.mean_loss))  // stop before the update: the last checkpoint stays the good one
        stopped("the loss is " + std::to_string(model.mean_loss) + " (not finite)");
    gpt2_zero_grad(model);
    gpt2_backward(model);
    gpt2_sum_gradients(model);
    const double norm = gpt2_update(model, settings, step);
    if (!std::isfinite(norm)) stopped("the gradient norm is not finite");
    return norm;
}

// The run's first line: the model, the device, the batch, the steps and the data (and the ranks, when launched).
void print_run_start(const PretrainOptions& options, const GPT2Config& config, size_t num_parameters,
                     const char* device, int rows) {
    const bool synthetic = options.train_pattern.empty();
    const std::string ranks = distributed().launched ? ", " + std::to_string(distributed().world_size) + " ranks (" +
                                                           distributed().launcher + "), " + std::to_string(rows) +
                                                           " rows each"
                                                     : "";
    std::printf("pretrain: %s, %zu parameters, device %s (%s), batch %dx%d, %d steps, data %s%s\n",
                describe_config(config).c_str(), num_parameters, device, precision_name(cuda::matmul_precision()),
                options.batch_size, options.seq_len, options.steps,
                synthetic ? "synthetic (built-in)" : options.train_pattern.c_str(), ranks.c_str());
}

template <class Backend>
PretrainResult pretrain_on(const PretrainOptions& options, const RunDirectory& run) {
    PretrainResult result;
    // the model: resumed (a resumed run killed before its first checkpoint starts over), loaded, or initialised
    const int resume_step = run.resuming() ? latest_checkpoint_step(options.out_dir) : 0;
    const Checkpoint start = starting_model(options, run, resume_step);
    const GPT2Config& config = start.config;
    if (options.seq_len > config.max_seq_len)
        fail("--seq-len " + std::to_string(options.seq_len) + " exceeds the model's max_seq_len " +
             std::to_string(config.max_seq_len));

    GPT2<Backend> model(config, start.parameters.data());
    model.logits_chunk_rows = TRAINING_LOGITS_CHUNK_ROWS;  // the logits never exist whole (validation included)
    Data data = open_data(options, config);
    set_data_order(data, options);
    keep_rank_rows(data);
    // data parallelism: every rank trains; rank 0 alone prints, logs and writes checkpoints
    const bool root = is_root_rank();
    const bool quiet = options.quiet || !root;
    if (resume_step > 0) {
        restore_training_state(model, data, options, run, resume_step);
        if (!quiet) std::printf("resumed from step %d in %s\n", resume_step, options.out_dir.c_str());
    }
    if (resume_step >= options.steps)
        fail("--resume: the checkpoint is at step " + std::to_string(resume_step) + ", --steps is " +
             std::to_string(options.steps));
    if (!quiet) print_run_start(options, config, model.num_parameters, Backend::name(), data.train->rows);

    // the records of the steps the checkpoint holds, and nothing after them (a killed run may have written more)
    const std::string metrics_path = options.out_dir + "/metrics.jsonl";
    if (root) keep_records(metrics_path, [&](const nlohmann::json& line) { return line.value("step", 0) <= resume_step; });

    LearningRateSchedule schedule = options.schedule;
    schedule.total_steps = options.steps;
    const int tokens_per_step = options.batch_size * options.seq_len;
    result.first_step = resume_step + 1;
    Progress progress("pretrain", options.steps - resume_step, !quiet && progress_on_terminal());
    const auto started = std::chrono::steady_clock::now();
    for (int step = resume_step + 1; step <= options.steps; step++) {
        auto start = std::chrono::steady_clock::now();
        AdamWSettings settings = options.optimizer;
        settings.learning_rate = schedule.at(step);
        const double norm = pretrain_step(model, data, options, settings, step);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        result.train_losses.push_back(model.mean_loss);
        bool last = step == options.steps;
        char line[256];
        std::snprintf(line, sizeof(line), "step %5d/%d | loss %.6f | lr %.3e | norm %.4f | %.1f ms | %.0f tok/s", step,
                      options.steps, model.mean_loss, settings.learning_rate, norm, ms, tokens_per_step / (ms / 1000));
        progress.update(step - resume_step, line);
        // a log file shows every logged step as it ends (Progress::print flushes)
        if (!quiet && options.log_every > 0 && (step % options.log_every == 0 || last)) progress.print(line);
        std::snprintf(line, sizeof(line), "{\"step\": %d, \"loss\": %.7g, \"lr\": %.7g, \"grad_norm\": %.7g, \"ms\": %.3f}\n",
                      step, model.mean_loss, settings.learning_rate, norm, ms);
        std::string lines = line;

        if (data.val && (last || (options.val_every > 0 && step % options.val_every == 0))) {
            float val_loss = validation_loss(model, *data.val, options.val_batches);
            result.val_losses.push_back({step, val_loss});
            std::snprintf(line, sizeof(line), "step %5d/%d | val loss %.6f", step, options.steps, val_loss);
            if (!quiet) progress.print(line);
            std::snprintf(line, sizeof(line), "{\"step\": %d, \"val_loss\": %.7g}\n", step, val_loss);
            lines += line;
        }
        // the step's records before its checkpoint: a checkpoint never holds a step whose lines are missing
        if (root) append_records(metrics_path, lines);
        if (root && (last || (options.checkpoint_every > 0 && step % options.checkpoint_every == 0))) {
            save(model, *data.train, options, run.run_id(), step);
            if (!quiet) progress.print("wrote " + checkpoint_path(options.out_dir, step));
        }
    }
    progress.finish();
    if (!quiet) print_summary(result, options, tokens_per_step, started);
    result.final_parameters = model.parameters_to_host();
    check_same_on_all_ranks(checksum(result.final_parameters), "the trained parameters");
    return result;
}

}  // namespace

std::string checkpoint_path(const std::string& dir, int step) { return step_file(dir, "model", step); }
std::string training_state_path(const std::string& dir, int step) { return step_file(dir, "state", step); }

int latest_checkpoint_step(const std::string& dir) {
    int latest = 0;
    std::vector<std::string> states;
    try {
        states = glob_files(dir + "/state_*.bin");
    } catch (const Error&) {
        return 0;
    }
    for (const std::string& path : states) {
        int step = 0;
        std::string name = path.substr(path.rfind('/') + 1);
        if (std::sscanf(name.c_str(), "state_%d.bin", &step) == 1 && file_exists(checkpoint_path(dir, step)))
            latest = std::max(latest, step);
    }
    return latest;
}

// run.json's options: every flag of `train pretrain` that sets what the run computes, and those that may change
// when it resumes (where and how fast it runs, how often it logs; --steps extends or shortens the run).
RunDescription describe_run(const PretrainOptions& o, Device device, MatmulPrecision precision) {
    RunDescription run;
    run.command = "pretrain";
    run.options = {{"train", o.train_pattern}, {"val", o.val_pattern}, {"init", o.init_checkpoint},
                   {"model-config", o.model_config}, {"device", device_name(device)},
                   {"precision", precision_name(precision)}, {"threads", cpu::cpu_threads()},
                   {"batch-size", o.batch_size}, {"seq-len", o.seq_len},
                   {"data-order", data_order_name(o.data_order)}, {"steps", o.steps},
                   {"lr", shortest_decimal(o.schedule.max_lr)}, {"lr-schedule", o.schedule.kind},
                   {"warmup", o.schedule.warmup_steps},
                   {"final-lr-fraction", shortest_decimal(o.schedule.final_fraction)},
                   {"weight-decay", shortest_decimal(o.optimizer.weight_decay)},
                   {"beta1", shortest_decimal(o.optimizer.beta1)}, {"beta2", shortest_decimal(o.optimizer.beta2)},
                   {"eps", shortest_decimal(o.optimizer.eps)}, {"grad-clip", shortest_decimal(o.optimizer.grad_clip)},
                   {"val-every", o.val_every}, {"val-batches", o.val_batches},
                   {"checkpoint-every", o.checkpoint_every}, {"seed", o.seed}};
    run.may_change = {"device", "precision", "threads", "steps", "val-every", "checkpoint-every"};
    run.outputs = {"model_*.bin", "state_*.bin", "metrics.jsonl"};
    run.device = device_name(device);
    run.precision = precision_name(precision);
    return run;
}

PretrainResult run_pretrain(const PretrainOptions& options) {
    if (options.batch_size <= 0 || options.seq_len <= 0 || options.steps <= 0)
        fail("--batch-size, --seq-len and --steps must be positive");
    options.schedule.validate();
    const Device device = resolve_device(options.device);
    const MatmulPrecision precision = apply_precision(options.precision, device);
    RunDirectory run(options.out_dir, describe_run(options, device, precision), options.start, options.overwrite);
    return run_recorded(run, [&] {
        return with_backend(device, [&](auto backend) { return pretrain_on<typename decltype(backend)::type>(options, run); });
    });
}
