#include "model/pretrain.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>

#include "data/file_io.h"
#include "data/synthetic_tokens.h"
#include "data/token_loader.h"
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "model/checkpoint.h"
#include "model/data_parallel.h"
#include "model/device.h"
#include "model/initialisation.h"
#include "model/precision.h"
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

// Data parallelism: every rank keeps its B / world_size rows of each global batch.
void keep_rank_rows(Data& data) {
    const Distributed& d = distributed();
    data.train->keep_rank_rows(d.rank, d.world_size);
    if (data.val) data.val->keep_rank_rows(d.rank, d.world_size);
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
void save(GPT2<Backend>& model, const TokenLoader& train, const PretrainOptions& options, int step) {
    using real = typename Backend::real;
    std::vector<float> parameters = model.parameters_to_host();
    TrainingState state;
    state.step = step;
    state.shard_index = train.shard_index;
    state.shard_position = train.position;
    state.rng_state = options.seed;  // the seed that made the data and the initial weights
    state.adam_m.resize(model.num_parameters);
    state.adam_v.resize(model.num_parameters);
    Backend::template download<float, real>(state.adam_m.data(), model.adam_m, model.num_parameters);
    Backend::template download<float, real>(state.adam_v.data(), model.adam_v, model.num_parameters);
    // the model first: a state file is only ever present beside its complete model file
    write_checkpoint(checkpoint_path(options.out_dir, step), model.config, parameters.data());
    write_training_state(training_state_path(options.out_dir, step), state);
}

template <class Backend>
PretrainResult pretrain_on(const PretrainOptions& options) {
    using real = typename Backend::real;
    const bool synthetic = options.train_pattern.empty();
    PretrainResult result;

    // the model: resumed, loaded, or initialised
    int resume_step = options.resume ? latest_checkpoint_step(options.out_dir) : 0;
    if (options.resume && resume_step == 0)
        fail("--resume: no checkpoint (state_*.bin with its model_*.bin) in " + options.out_dir);
    GPT2Config config;
    std::vector<float> parameters;
    if (resume_step > 0 || !options.init_checkpoint.empty()) {
        Checkpoint checkpoint = read_checkpoint(resume_step > 0 ? checkpoint_path(options.out_dir, resume_step)
                                                                : options.init_checkpoint);
        config = checkpoint.config;
        parameters = std::move(checkpoint.parameters);
    } else {
        std::string spec = options.model_config.empty() ? (synthetic ? SYNTHETIC_CONFIG : "d12") : options.model_config;
        config = config_from_spec(spec);
        parameters = gpt2_random_parameters(config, options.seed);
    }
    if (options.seq_len > config.max_seq_len)
        fail("--seq-len " + std::to_string(options.seq_len) + " exceeds the model's max_seq_len " +
             std::to_string(config.max_seq_len));
    if (options.batch_size <= 0 || options.seq_len <= 0 || options.steps <= 0)
        fail("--batch-size, --seq-len and --steps must be positive");
    options.schedule.validate();

    GPT2<Backend> model(config, parameters.data());
    model.logits_chunk_rows = TRAINING_LOGITS_CHUNK_ROWS;  // the logits never exist whole (validation included)
    Data data = open_data(options, config);
    keep_rank_rows(data);
    // data parallelism: every rank trains; rank 0 alone prints, logs and writes checkpoints
    const bool root = is_root_rank();
    const bool quiet = options.quiet || !root;
    if (resume_step > 0) {
        TrainingState state = read_training_state(training_state_path(options.out_dir, resume_step),
                                                  model.num_parameters);
        model.adam_m = Backend::template allocate<real>(model.num_parameters);
        model.adam_v = Backend::template allocate<real>(model.num_parameters);
        Backend::upload(model.adam_m, state.adam_m.data(), model.num_parameters);
        Backend::upload(model.adam_v, state.adam_v.data(), model.num_parameters);
        if (state.rng_state != options.seed)
            fail("--resume: the checkpoint was trained with --seed " + std::to_string(state.rng_state) +
                 ", not " + std::to_string(options.seed));
        data.train->seek(state.shard_index, state.shard_position);
        if (!quiet) std::printf("resumed from step %d in %s\n", resume_step, options.out_dir.c_str());
    }
    if (resume_step >= options.steps)
        fail("--resume: the checkpoint is at step " + std::to_string(resume_step) + ", --steps is " +
             std::to_string(options.steps));
    if (root) make_directories(options.out_dir);
    if (!quiet)
        std::printf("pretrain: %s, %zu parameters, device %s (%s), batch %dx%d, %d steps, data %s%s\n",
                    describe_config(config).c_str(), model.num_parameters, Backend::name(),
                    precision_name(cuda::matmul_precision()), options.batch_size,
                    options.seq_len, options.steps, synthetic ? "synthetic (built-in)" : options.train_pattern.c_str(),
                    distributed().launched ? (", " + std::to_string(distributed().world_size) + " ranks (" +
                                              distributed().launcher + "), " + std::to_string(data.train->rows) +
                                              " rows each").c_str()
                                           : "");

    std::string metrics_path = options.out_dir + "/metrics.jsonl";
    FILE* metrics = root ? std::fopen(metrics_path.c_str(), resume_step > 0 ? "a" : "w") : nullptr;
    if (root && !metrics) fail(metrics_path + ": cannot open for writing");
    std::unique_ptr<FILE, int (*)(FILE*)> metrics_guard(metrics, [](FILE* file) { return file ? std::fclose(file) : 0; });

    LearningRateSchedule schedule = options.schedule;
    schedule.total_steps = options.steps;
    const int tokens_per_step = options.batch_size * options.seq_len;
    result.first_step = resume_step + 1;
    for (int step = resume_step + 1; step <= options.steps; step++) {
        auto start = std::chrono::steady_clock::now();
        data.train->next_batch();
        gpt2_forward(model, data.train->inputs.data(), data.train->targets.data(), nullptr, data.train->rows,
                     options.seq_len);
        gpt2_global_loss(model);
        gpt2_zero_grad(model);
        gpt2_backward(model);
        gpt2_sum_gradients(model);
        AdamWSettings settings = options.optimizer;
        settings.learning_rate = schedule.at(step);
        double norm = gpt2_update(model, settings, step);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        result.train_losses.push_back(model.mean_loss);
        if (!quiet)
            std::printf("step %5d/%d | loss %.6f | lr %.3e | norm %.4f | %.1f ms | %.0f tok/s\n", step, options.steps,
                        model.mean_loss, settings.learning_rate, norm, ms, tokens_per_step / (ms / 1000));
        if (metrics)
            std::fprintf(metrics, "{\"step\": %d, \"loss\": %.7g, \"lr\": %.7g, \"grad_norm\": %.7g, \"ms\": %.3f}\n", step,
                     model.mean_loss, settings.learning_rate, norm, ms);

        bool last = step == options.steps;
        if (data.val && (last || (options.val_every > 0 && step % options.val_every == 0))) {
            float val_loss = validation_loss(model, *data.val, options.val_batches);
            result.val_losses.push_back({step, val_loss});
            if (!quiet) std::printf("step %5d/%d | val loss %.6f\n", step, options.steps, val_loss);
            if (metrics) std::fprintf(metrics, "{\"step\": %d, \"val_loss\": %.7g}\n", step, val_loss);
        }
        if (root && (last || (options.checkpoint_every > 0 && step % options.checkpoint_every == 0))) {
            save(model, *data.train, options, step);
            if (!quiet) std::printf("wrote %s\n", checkpoint_path(options.out_dir, step).c_str());
        }
        if (metrics) std::fflush(metrics);
    }
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

PretrainResult run_pretrain(const PretrainOptions& options) {
    const Device device = resolve_device(options.device);
    apply_precision(options.precision, device);
    if (device == Device::cuda) return pretrain_on<CudaBackend>(options);
    return pretrain_on<CpuBackend<float>>(options);
}
