// clora's side of the peer benchmark (dev/bench/peer.py): the time of one training step (forward + backward +
// optimizer) of GPT-2 with random weights, on synthetic tokens, printed as one JSON line.
//
//   build/bench/train_step --mode lora      LoRA on a frozen base (--lora-modules, --lora-rank, --lora-alpha,
//                                           --lora-dropout; defaults: METHODS.md's r 8, alpha 32, dropout 0.1, qkv)
//   build/bench/train_step --mode full      full training of every parameter (AdamW on all of them)
//   build/bench/train_step --mode branches --method gainlora|amlora|inclora --branches N
//                                           N stacked branches (N-1 frozen, the last trainable) built by the
//                                           method's own task hooks (lora/methods/), then its training step
//   build/bench/train_step --mode gemm      the measured cuBLAS peak (bf16, tf32, fp32 products of --gemm-n^3)
//
// Every step is what `train pretrain` (full) and `train cl` (lora, branches) run per batch, without the data
// pipeline: gpt2_forward with targets on every position (loss weights all 1, as the PyTorch side's
// cross-entropy over all B*T positions), the backward, the global-norm clip (1.0) and AdamW. Timing: the device is
// synchronised before and after each step (the forward also reads the loss back); --warmup steps are run first and
// not timed. Memory (CUDA): peak_bytes = the most bytes clora's own allocations (model/cuda/memory.cu) held at once
// from just after the model was built (weights included) to the last step: parameters, gradients (none for a frozen
// base), AdamW moments, activations, adapters, scratch; device_used_bytes = what cudaMemGetInfo says is in use on the
// device after the last step (also the CUDA context, cuBLAS's workspace and any other process), a cross-check;
// activation_bytes (both devices) = the activations and their gradients as model/activations.h lays them out for the
// run, the part of peak_bytes predicted without a GPU.
//
// Runs on the CPU too (--device cpu, a tiny --model-config): test/test_bench.cpp checks every mode there.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "model/lora_adapters.h"
#include "lora/continual.h"
#include "lora/methods/registry.h"
#include "model/backend.h"
#include "model/cpu/threads.h"
#include "model/cuda/gemm_peak.h"
#include "model/cuda/memory_use.h"
#include "model/device.h"
#include "model/distributed.h"
#include "model/gpt2.h"
#include "model/initialisation.h"
#include "model/parameters.h"
#include "model/precision.h"

namespace {

struct Options {
    std::string mode = "lora";  // lora | full | branches | gemm
    std::string method = "gainlora";  // branches: gainlora (= gainlora-olora) | amlora | inclora | any `train cl` method
    std::string device = "cuda";
    std::string model_config = "d12";
    std::string precision = "auto";  // bf16 | fp32 | auto (bf16 on CUDA): the CUDA matmul precision, model/precision.h
    bool bf16_base = true;  // with bf16 products on CUDA, a frozen base stored in bf16 (GPT2::bf16_base), as `train cl`
    int branches = 15;
    int batch = 8, seq = 1024;
    int steps = 20, warmup = 5;
    int gemm_n = 8192, gemm_iterations = 20;
    int threads = 0;  // CPU threads (0: OMP_NUM_THREADS, else every core)
    LoraConfig lora;
    uint64_t seed = 1337;
};

const char* USAGE =
    "usage: train_step [--mode lora|full|branches|gemm] [--method gainlora|amlora|inclora] [--branches N]\n"
    "                  [--batch B] [--seq T] [--steps S] [--warmup W] [--device cuda|cpu|auto]\n"
    "                  [--model-config d12|L:C:NH:V:maxT] [--precision bf16|fp32|auto] [--lora-modules qkv,...]\n"
    "                  [--lora-rank r] [--lora-alpha a] [--lora-dropout p] [--gemm-n n] [--gemm-iterations k]\n"
    "                  [--bf16-base on|off] [--seed s] [--threads N]\n"
    "Prints one JSON line: the step's ms (mean and median over S steps after W warmup steps), tokens/s, peak memory.";

int positive(const std::string& flag, const std::string& value) {
    char* end = nullptr;
    const long number = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end || number < 1 || number > (1L << 30))
        fail("--" + flag + ": expected a positive integer, got '" + value + "'");
    return int(number);
}

float real_number(const std::string& flag, const std::string& value) {
    char* end = nullptr;
    const float number = std::strtof(value.c_str(), &end);
    if (value.empty() || *end) fail("--" + flag + ": expected a number, got '" + value + "'");
    return number;
}

// Returns false after --help.
bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; i++) {
        const std::string argument = argv[i];
        if (argument == "--help" || argument == "-h") {
            std::puts(USAGE);
            return false;
        }
        if (argument.rfind("--", 0) != 0) fail("unexpected argument '" + argument + "' (see --help)");
        if (i + 1 >= argc) fail("flag '" + argument + "' needs a value");
        const std::string flag = argument.substr(2), value = argv[++i];
        if (flag == "mode") o.mode = value;
        else if (flag == "method") o.method = value;
        else if (flag == "device") o.device = value;
        else if (flag == "model-config") o.model_config = value;
        else if (flag == "precision") o.precision = value;
        else if (flag == "bf16-base" && (value == "on" || value == "off")) o.bf16_base = value == "on";
        else if (flag == "bf16-base") fail("--bf16-base: on or off, got '" + value + "'");
        else if (flag == "branches") o.branches = positive(flag, value);
        else if (flag == "batch") o.batch = positive(flag, value);
        else if (flag == "seq") o.seq = positive(flag, value);
        else if (flag == "steps") o.steps = positive(flag, value);
        else if (flag == "warmup") o.warmup = value == "0" ? 0 : positive(flag, value);
        else if (flag == "gemm-n") o.gemm_n = positive(flag, value);
        else if (flag == "gemm-iterations") o.gemm_iterations = positive(flag, value);
        else if (flag == "lora-modules") o.lora.modules = parse_lora_modules(value);
        else if (flag == "lora-rank") o.lora.rank = positive(flag, value);
        else if (flag == "lora-alpha") o.lora.alpha = real_number(flag, value);
        else if (flag == "lora-dropout") o.lora.dropout = real_number(flag, value);
        else if (flag == "seed") o.seed = uint64_t(positive(flag, value));
        else if (flag == "threads") o.threads = positive(flag, value);
        else fail("unknown flag '" + argument + "' (see --help)");
    }
    if (o.mode != "lora" && o.mode != "full" && o.mode != "branches" && o.mode != "gemm")
        fail("--mode: lora, full, branches or gemm, got '" + o.mode + "'");
    validate_lora_config(o.lora);
    return true;
}

// The method of `--method` as `train cl` names it.
std::string method_name(const std::string& method) { return method == "gainlora" ? "gainlora-olora" : method; }

// A synthetic task for the branch-building hooks: a few short random (prompt, answer) examples. GainLoRA's task
// start collects its statistics over the training examples and evaluates its gates on the test ones; these keep
// that cheap (the timed steps use their own rows, below).
EncodedTask synthetic_task(int index, const GPT2Config& config, Random& random) {
    EncodedTask task;
    task.name = "task" + std::to_string(index + 1);
    const int eot = config.vocab_size - 1;
    auto example = [&] {
        EncodedExample e;
        for (int i = 0; i < 8; i++) e.prompt.push_back(int(random.below(uint32_t(eot))));
        for (int i = 0; i < 4; i++) e.answer.push_back(int(random.below(uint32_t(eot))));
        e.answer.push_back(eot);
        return e;
    };
    for (int i = 0; i < 4; i++) task.train.push_back(example());
    for (int i = 0; i < 2; i++) {
        task.test.push_back(example());
        task.test_answers.push_back("");
    }
    return task;
}

struct Timings {
    std::vector<double> ms;  // per timed step
    float first_loss = 0, last_loss = 0;
};

double mean(const std::vector<double>& x) {
    double total = 0;
    for (double v : x) total += v;
    return x.empty() ? 0 : total / double(x.size());
}
double median(std::vector<double> x) {
    if (x.empty()) return 0;
    std::sort(x.begin(), x.end());
    return x.size() % 2 ? x[x.size() / 2] : 0.5 * (x[x.size() / 2 - 1] + x[x.size() / 2]);
}

template <class Backend>
void synchronize() {
    if constexpr (std::is_same_v<Backend, CudaBackend>) cuda::synchronize();
}

// The benchmark of one configuration on one backend: the model (and for lora/branches the adapters and the
// method), built once; then warmup and timed steps.
template <class Backend>
struct StepBench {
    const Options& o;
    GPT2Config config;
    GPT2<Backend> model;
    LoraAdapters<Backend> adapters;
    ContinualOptions continual;  // what the methods read of a `train cl` run (batch size, seed, their options)
    std::unique_ptr<ContinualMethod<Backend>> method;
    std::vector<EncodedTask> tasks;
    ContinualContext<Backend> context;
    // the timed steps' batch: B rows of T random tokens (a prompt of T/8 tokens, the rest the "answer" so that
    // GainLoRA's gates read a prompt), targets the next token; every position weighs 1
    std::vector<EncodedExample> examples;
    std::vector<const EncodedExample*> rows;
    TrainingBatch batch;
    AdamWSettings optimizer;
    bool lora;

    StepBench(const Options& options, const GPT2Config& config, const std::vector<float>& parameters)
        : o(options), config(config), model(config, parameters.data()), adapters(config, options.lora),
          context{model, adapters, tasks, 0, options.seed, nullptr, 0, {}}, lora(options.mode != "full") {
        model.logits_chunk_rows = TRAINING_LOGITS_CHUNK_ROWS;  // as `train pretrain` and `train cl`
        Random random(o.seed ^ 0x5BD1E995ULL);
        const int eot = config.vocab_size - 1, P = std::max(1, o.seq / 8);
        for (int b = 0; b < o.batch; b++) {
            EncodedExample e;
            for (int t = 0; t < P; t++) e.prompt.push_back(int(random.below(uint32_t(eot))));
            for (int t = P; t < o.seq; t++) e.answer.push_back(int(random.below(uint32_t(eot))));
            e.answer.push_back(eot);
            examples.push_back(std::move(e));
        }
        for (const EncodedExample& e : examples) rows.push_back(&e);
        batch = make_training_batch(rows, o.seq);
        if (!lora) return;
        model.frozen_base = true;
        model.bf16_base = o.bf16_base && Backend::stores_frozen_base_in_bf16();
        model.lora = &adapters;
        if (o.mode == "lora") {
            lora_add_branch(adapters, o.seed + 1, true);
            return;
        }
        // branches: the method's task hooks, task after task, as `train cl` runs them (without training): each
        // task start adds a branch (freezing the earlier ones) and the method's state for it
        continual.lora = o.lora;
        continual.batch_size = o.batch;
        continual.seed = o.seed;
        continual.method.gainlora_max_batches = 1;
        method = make_method<Backend>(method_name(o.method), continual);
        for (int t = 0; t < o.branches; t++) tasks.push_back(synthetic_task(t, config, random));
        for (int t = 0; t < o.branches; t++) {
            context.task = t;
            method->task_start(context);
            if (t + 1 < o.branches) method->task_end(context);
        }
        lora_reset_optimizer(adapters);
    }

    // One training step (t: 1-based), the loss of its forward.
    float step(int t) {
        if (!lora) {
            gpt2_forward(model, batch.inputs.data(), batch.targets.data(), nullptr, batch.B, batch.T);
            gpt2_zero_grad(model);
            gpt2_backward(model);
            gpt2_update(model, optimizer, t);
            return model.mean_loss;
        }
        adapters.training = true;
        adapters.dropout_seed = o.seed * 0x9E3779B97F4A7C15ULL + uint64_t(t);
        context.batch = &batch;
        context.step = t - 1;
        context.group_rows = {batch.B};
        if (method) method->before_forward(context, rows, batch.T);
        gpt2_forward(model, batch.inputs.data(), batch.targets.data(), nullptr, batch.B, batch.T);
        lora_zero_grad(adapters);
        if (method) method->before_backward(context);
        gpt2_backward(model);
        double extra = 0, extra_squares = 0;
        if (method) {
            extra = method->extra_loss(context);
            extra_squares = method->extra_gradient_sum_of_squares(context);
        }
        const double norm =
            std::sqrt(Backend::sum_of_squares(adapters.gradients, adapters.num_parameters) + extra_squares);
        if (!std::isfinite(norm)) fail("train_step: the gradient norm is not finite at step " + std::to_string(t));
        const float clip = optimizer.grad_clip;
        const float scale = clip > 0 ? float(std::min(1.0, clip / (norm + 1e-6))) : 1.0f;
        lora_update(adapters, optimizer, t, scale);
        if (method) {
            method->extra_update(context, optimizer, t, scale);
            method->after_step(context);
        }
        context.batch = nullptr;
        adapters.training = false;
        return float(model.mean_loss + extra);
    }

    Timings run() {
        Timings timings;
        for (int t = 1; t <= o.warmup + o.steps; t++) {
            synchronize<Backend>();
            const auto start = std::chrono::steady_clock::now();
            const float loss = step(t);
            synchronize<Backend>();
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
            if (t == 1) timings.first_loss = loss;
            timings.last_loss = loss;
            if (t > o.warmup) timings.ms.push_back(ms);
        }
        return timings;
    }

    // The parameters the optimizer updates: every one (full); the trainable branch's rows of A, Bt (lora,
    // branches; the methods' own gates or attention not included).
    size_t trained_parameters() const {
        if (!lora) return model.num_parameters;
        size_t count = 0;
        for (const LoraSlot& s : adapters.slots)
            count += size_t(adapters.trainable_rows()) * (s.shape.in + s.shape.out);
        return count;
    }
};

std::string json_number(double x) {
    if (!std::isfinite(x)) return "null";
    char text[64];
    std::snprintf(text, sizeof(text), "%.6g", x);
    return text;
}
std::string json_string(const std::string& s) { return "\"" + s + "\""; }  // only our own plain names

template <class Backend>
void run_step_bench(const Options& o, Device device) {
    const GPT2Config config = config_from_spec(o.model_config);
    if (o.seq > config.max_seq_len)
        fail("--seq " + std::to_string(o.seq) + " exceeds the model's max_seq_len " + std::to_string(config.max_seq_len));
    const std::vector<float> parameters = gpt2_random_parameters(config, o.seed);
    constexpr bool cuda = std::is_same_v<Backend, CudaBackend>;  // the memory counters are the CUDA backend's
    const std::string precision = precision_name(apply_precision(o.precision, device));  // before any product
    if constexpr (cuda) cuda::reset_device_memory_peak();
    StepBench<Backend> bench(o, config, parameters);
    if constexpr (cuda) cuda::reset_device_memory_peak();  // from here: the model as built, then every step's allocations
    const Timings timings = bench.run();
    const double step_ms = mean(timings.ms), tokens = double(o.batch) * o.seq;
    std::map<std::string, std::string> fields;
    std::vector<std::string> order;
    auto put = [&](const std::string& key, const std::string& value) {
        order.push_back(key);
        fields[key] = value;
    };
    put("program", json_string("clora"));
    put("mode", json_string(o.mode));
    put("method", json_string(o.mode == "branches" ? method_name(o.method) : o.mode == "lora" ? "lora" : "none"));
    put("device", json_string(device_name(device)));
    put("model_config", json_string(o.model_config));
    put("precision", json_string(precision));
    put("precision_requested", json_string(o.precision));
    if (device == Device::cpu) put("threads", std::to_string(cpu::cpu_threads()));
    put("bf16_base", bench.model.bf16_base ? "true" : "false");
    put("batch", std::to_string(o.batch));
    put("seq", std::to_string(o.seq));
    put("steps", std::to_string(o.steps));
    put("warmup", std::to_string(o.warmup));
    put("branches", std::to_string(bench.lora ? bench.adapters.branches : 0));
    put("trainable_branches",
        std::to_string(bench.lora ? bench.adapters.branches - bench.adapters.first_trainable : 0));
    put("lora_rank", std::to_string(o.lora.rank));
    put("lora_alpha", json_number(o.lora.alpha));
    put("lora_dropout", json_number(bench.lora ? bench.adapters.config.dropout : 0));
    put("lora_modules", json_string(bench.lora ? lora_modules_string(o.lora.modules) : ""));
    put("parameters", std::to_string(bench.model.num_parameters));
    put("trained_parameters", std::to_string(bench.trained_parameters()));
    put("ms_per_step", json_number(step_ms));
    put("ms_median", json_number(median(timings.ms)));
    put("ms_min", json_number(timings.ms.empty() ? 0 : *std::min_element(timings.ms.begin(), timings.ms.end())));
    put("tokens_per_second", json_number(step_ms > 0 ? tokens / (step_ms / 1000) : 0));
    put("first_loss", json_number(timings.first_loss));
    put("last_loss", json_number(timings.last_loss));
    // the activations and their gradients as model/activations.h lays them out for this run (both devices): the
    // prediction that peak_bytes includes
    const GPT2<Backend>& model = bench.model;
    const size_t activations = num_activations<Backend>(config, o.batch, o.seq, model.kept) +
                               num_activation_gradients(config, o.batch, o.seq);
    put("activation_bytes", std::to_string(activations * sizeof(typename Backend::real)));
    put("logits_chunk_rows", std::to_string(model.logits_chunk_rows));
    if constexpr (cuda) {
        put("peak_bytes", std::to_string(cuda::device_memory_use().peak));
        put("device_used_bytes", std::to_string(cuda::device_memory_used()));
    } else {
        put("peak_bytes", "null");
        put("device_used_bytes", "null");
    }
    std::string line = "{";
    for (size_t i = 0; i < order.size(); i++)
        line += (i ? ", \"" : "\"") + order[i] + "\": " + fields[order[i]];
    std::printf("%s}\n", line.c_str());
}

template <class Backend>
void run_gemm(const Options& o, Device device) {
    if constexpr (!std::is_same_v<Backend, CudaBackend>) {
        std::printf("{\"program\": \"clora\", \"mode\": \"gemm\", \"skipped\": \"no GPU (--device %s)\"}\n",
                    device_name(device));
    } else {
        std::printf("{\"program\": \"clora\", \"mode\": \"gemm\", \"device\": \"cuda\", \"n\": %d, \"iterations\": %d",
                    o.gemm_n, o.gemm_iterations);
        for (cuda::GemmPrecision p : {cuda::GemmPrecision::bf16, cuda::GemmPrecision::tf32, cuda::GemmPrecision::fp32})
            std::printf(", \"%s_tflops\": %s", cuda::gemm_precision_name(p),
                        json_number(cuda::gemm_tflops(p, o.gemm_n, o.gemm_iterations)).c_str());
        std::printf("}\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        distributed_init();
        Options options;
        if (!parse(argc, argv, options)) return 0;
        if (options.threads > 0) cpu::set_cpu_threads(options.threads);
        const Device device = resolve_device(options.device);
        with_backend(device, [&](auto backend) {
            using Backend = typename decltype(backend)::type;
            if (options.mode == "gemm") run_gemm<Backend>(options, device);
            else run_step_bench<Backend>(options, device);
        });
        std::fflush(stdout);
        distributed_finalize();
        return 0;
    } catch (const Error& error) {
        return distributed_fail(error.what());
    }
}
