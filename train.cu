// clora's entry point: `train <command> [--flag value ...]`. Each command parses its flags (unknown flags,
// missing or malformed values are errors), runs, and returns its exit status; every Error is printed
// as one line on stderr with exit status 1. Under mpirun or srun every rank runs the command, data-parallel
// (model/distributed.h); an Error on any rank is printed with its rank and ends the whole job.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "data/task_data.h"
#include "data/tokenize_text.h"
#include "lora/continual.h"
#include "lora/hf_adapters.h"
#include "model/cpu/threads.h"
#include "model/checkpoint.h"
#include "model/distributed.h"
#include "model/hf_gpt2.h"
#include "model/pretrain.h"
#include "model/run_directory.h"
#include "model/verify.h"

namespace {

// Levenshtein distance: the fewest insertions, deletions and substitutions that turn a into b.
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); j++) row[j] = j;
    for (size_t i = 1; i <= a.size(); i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); j++) {
            const size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// A number as a user would type it in a flag's default: 0.5, not 0.500000.
std::string number_text(double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value);
    return text;
}

// The flags of one command: declared with defaults and help, then parsed from argv.
struct Flags {
    struct Flag {
        std::string name, value, help;
        bool is_switch;
        bool repeatable = false;
        std::vector<std::string> values;  // every occurrence, for repeatable flags
    };
    std::string usage;
    std::vector<Flag> flags;

    Flags(std::string usage) : usage(std::move(usage)) {}
    void add(const std::string& name, const std::string& default_value, const std::string& help) {
        flags.push_back({name, default_value, help, false, false, {}});
    }
    void add_switch(const std::string& name, const std::string& help) {
        flags.push_back({name, "", help, true, false, {}});
    }
    void add_repeatable(const std::string& name, const std::string& help) {
        flags.push_back({name, "", help, false, true, {}});
    }

    Flag* find(const std::string& name) {
        for (Flag& flag : flags)
            if (flag.name == name) return &flag;
        return nullptr;
    }
    void print_help() const {
        std::printf("%s\n\nflags (--name VALUE or --name=VALUE):\n", usage.c_str());
        for (const Flag& flag : flags)
            std::printf("  --%-24s %s%s\n", (flag.name + (flag.is_switch ? "" : " " + metavar(flag))).c_str(),
                        flag.help.c_str(),
                        flag.is_switch || flag.value.empty() ? "" : (" (default " + flag.value + ")").c_str());
        std::printf("  --%-24s %s\n", "help", "show this help");
    }
    // What a flag's value is, for --help: PATH, LIST, SPEC (L:C:NH:V:maxT), CHOICE (the help names them), N or
    // FLOAT (from the default, for the numeric flags).
    static std::string metavar(const Flag& flag) {
        static const std::map<std::string, std::string> named = {
            {"train", "PATH"}, {"val", "PATH"}, {"init", "PATH"}, {"out", "PATH"}, {"model", "PATH"},
            {"state", "PATH"}, {"benchmark", "PATH"}, {"base", "PATH"}, {"tokenizer", "PATH"}, {"hf", "PATH"},
            {"adapters", "PATH"}, {"input", "PATH"}, {"method", "LIST"}, {"lora-modules", "LIST"},
            {"order", "LIST"}, {"model-config", "SPEC"}, {"base-config", "SPEC"}, {"threads", "N|auto"},
            {"lora-rank", "N"}, {"epochs", "N"}, {"lr", "FLOAT"}, {"nlora-lambda", "FLOAT"},
            {"amlora-lambda", "FLOAT"}};
        const auto found = named.find(flag.name);
        if (found != named.end()) return found->second;
        const std::string& value = flag.value;
        if (value.empty() || value.find_first_not_of("0123456789.e-+") != std::string::npos) return "CHOICE";
        return value.find_first_not_of("0123456789") == std::string::npos ? "N" : "FLOAT";
    }
    // The closest flag name within two edits of `name`, or "" (for "did you mean").
    std::string closest(const std::string& name) const {
        std::string best;
        size_t best_distance = 3;
        for (const Flag& flag : flags) {
            const size_t distance = edit_distance(name, flag.name);
            if (distance < best_distance) best = flag.name, best_distance = distance;
        }
        return best;
    }
    // Returns false when --help was asked for (help printed).
    bool parse(int argc, char** argv, int first) {
        for (int i = first; i < argc; i++) {
            std::string argument = argv[i];
            if (argument == "--help" || argument == "-h") {
                print_help();
                return false;
            }
            if (argument.rfind("--", 0) != 0) fail("unexpected argument '" + argument + "' (flags start with --)");
            // --name=value or --name value
            const size_t equals = argument.find('=');
            const std::string name = argument.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
            Flag* flag = find(name);
            if (!flag) {
                const std::string guess = closest(name);
                fail("unknown flag '--" + name + "'" + (guess.empty() ? "" : " (did you mean --" + guess + "?)") +
                     " (see --help)");
            }
            if (flag->is_switch) {
                if (equals != std::string::npos) fail("flag '--" + name + "' takes no value");
                flag->value = "1";
                continue;
            }
            if (equals != std::string::npos) {
                flag->value = argument.substr(equals + 1);
            } else {
                if (i + 1 >= argc) fail("flag '" + argument + "' needs a value");
                flag->value = argv[++i];
            }
            flag->values.push_back(flag->value);
        }
        return true;
    }
    std::string text(const std::string& name) { return find(name)->value; }
    const std::vector<std::string>& all(const std::string& name) { return find(name)->values; }
    bool on(const std::string& name) { return find(name)->value == "1"; }

    // An integer flag in [low, high]: anything else (text, a value beyond long long, out of range) fails naming
    // the flag, so a value never wraps around on its way into an int.
    long long integer(const std::string& name, long long low = 0, long long high = INT_MAX) {
        const std::string& value = find(name)->value;
        char* end = nullptr;
        errno = 0;
        const long long number = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0') fail("--" + name + " '" + value + "': expected an integer");
        if (errno == ERANGE || number < low || number > high)
            fail("--" + name + " " + value + ": expected an integer " +
                 (high == LLONG_MAX || high == INT_MAX ? ">= " + std::to_string(low)
                                                       : "from " + std::to_string(low) + " to " + std::to_string(high)));
        return number;
    }
    int count(const std::string& name, int low) { return int(integer(name, low, INT_MAX)); }

    // A number flag, finite and within range (e.g. Range::positive()); fails naming the flag otherwise.
    struct Range {
        double low, high;
        bool low_open, high_open;  // is the bound itself excluded
        static Range positive() { return {0, HUGE_VAL, true, false}; }
        static Range non_negative() { return {0, HUGE_VAL, false, false}; }
        static Range unit() { return {0, 1, false, false}; }            // [0, 1]
        static Range below_one() { return {0, 1, false, true}; }        // [0, 1)
        static Range above_zero_to_one() { return {0, 1, true, false}; }  // (0, 1]
        bool contains(double x) const {
            return (low_open ? x > low : x >= low) && (high_open ? x < high : x <= high);
        }
        std::string text() const {
            auto number = [](double x) {
                char buffer[32];
                std::snprintf(buffer, sizeof(buffer), "%g", x);
                return std::string(buffer);
            };
            if (high == HUGE_VAL) return std::string(low_open ? "> " : ">= ") + number(low);
            return "in " + std::string(low_open ? "(" : "[") + number(low) + ", " + number(high) + (high_open ? ")" : "]");
        }
    };
    float real(const std::string& name, Range range) {
        const std::string& value = find(name)->value;
        char* end = nullptr;
        const double number = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0') fail("--" + name + " '" + value + "': expected a number");
        if (!std::isfinite(number) || !std::isfinite(float(number)) || !range.contains(number))
            fail("--" + name + " " + value + ": expected a finite number " + range.text());
        return float(number);
    }
};

using Range = Flags::Range;

// A flag whose value must be one of `choices`.
std::string one_of(Flags& flags, const std::string& name, std::initializer_list<const char*> choices) {
    const std::string value = flags.text(name);
    std::string listed;
    for (const char* choice : choices) {
        if (value == choice) return value;
        listed += std::string(listed.empty() ? "" : ", ") + choice;
    }
    fail("--" + name + " '" + value + "': expected one of " + listed);
}

// --precision of `train pretrain` and `train cl` (model/precision.h)
const char* PRECISION_HELP = "matrix products on CUDA: bf16 (mixed precision), fp32, or auto (bf16 on CUDA, fp32 on "
                             "the CPU)";

// --threads of the commands that compute (model/cpu/threads.h)
const char* THREADS_HELP = "CPU threads: a count, or auto (OMP_NUM_THREADS, else every core)";
void apply_threads(Flags& flags) {
    const std::string value = flags.text("threads");
    if (value == "auto") return;
    char* end = nullptr;
    const long count = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || count < 1 || count > 4096)
        fail("--threads '" + value + "': expected a positive count or auto");
    cpu::set_cpu_threads(int(count));
}

// --resume, --resume-or-start and --overwrite of the commands that write a run folder (model/run_directory.h)
void add_run_flags(Flags& flags, const std::string& resume_help) {
    flags.add_switch("resume", resume_help + " (an error when --out holds no run)");
    flags.add_switch("resume-or-start", "resume the run in --out if there is one, else start it (runs in stages)");
    flags.add_switch("overwrite", "start afresh even when --out holds a run (its files are deleted)");
}
void apply_run_flags(Flags& flags, StartMode& start, bool& overwrite) {
    const bool resume = flags.on("resume"), resume_or_start = flags.on("resume-or-start");
    overwrite = flags.on("overwrite");
    if (int(resume) + int(resume_or_start) + int(overwrite) > 1)
        fail("give one of --resume, --resume-or-start and --overwrite");
    start = resume ? StartMode::resume : resume_or_start ? StartMode::resume_or_fresh : StartMode::fresh;
}

int command_pretrain(int argc, char** argv) {
    PretrainOptions o;
    Flags flags("train pretrain [flags]\n\nTrain GPT-2 on llm.c token shards; with no --train, on a built-in synthetic "
                "token stream\nwith a tiny model (the default run). Writes <out>/model_<step>.bin (llm.c format), "
                "<out>/state_<step>.bin\n(optimizer and data position) and <out>/metrics.jsonl.");
    flags.add("train", "", "glob of training token shards, e.g. 'data/shard_train_*.bin'");
    flags.add("val", "", "glob of validation token shards");
    flags.add("init", "", "start from this llm.c checkpoint instead of a random init");
    flags.add("model-config", "", "random init of this size: d12|d24|d36|d48 or L:C:NH:V:maxT (default d12; "
                                  "synthetic: 2:64:4:256:64); a base for real tasks (GPT-2's tokenizer) needs "
                                  "V = 50257, e.g. 6:256:8:50257:128 on a CPU (README: a first real run)");
    flags.add("out", o.out_dir, "output directory");
    flags.add("device", o.device, "cpu, cuda or auto");
    flags.add("threads", "auto", THREADS_HELP);
    flags.add("precision", "auto", PRECISION_HELP);
    flags.add("batch-size", std::to_string(o.batch_size), "sequences per step (B)");
    flags.add("seq-len", std::to_string(o.seq_len), "tokens per sequence (T)");
    flags.add("data-order", "random", "random: each row at a seeded random offset of all the shards (every step "
                                      "mixes documents); sequential: llm.c's consecutive windows");
    flags.add("steps", std::to_string(o.steps), "optimizer steps in all (a resumed run continues to this count)");
    flags.add("lr", "1e-3", "peak learning rate");
    flags.add("lr-schedule", "cosine", "constant or cosine (linear warmup, then cosine decay)");
    flags.add("warmup", "0", "warmup steps");
    flags.add("final-lr-fraction", "0.1", "cosine decays to this fraction of the peak");
    flags.add("weight-decay", "0.1", "AdamW weight decay on the 2-D tensors");
    flags.add("beta1", "0.9", "AdamW beta1");
    flags.add("beta2", "0.95", "AdamW beta2");
    flags.add("eps", "1e-8", "AdamW epsilon");
    flags.add("grad-clip", "1.0", "clip the global gradient norm to this (0: off)");
    flags.add("val-every", std::to_string(o.val_every), "validation loss every N steps (and at the end)");
    flags.add("val-batches", std::to_string(o.val_batches), "batches per validation");
    flags.add("checkpoint-every", "0", "checkpoint every N steps (0: only at the end)");
    flags.add("log-every", std::to_string(o.log_every), "steps between log lines, and the last step (0: none)");
    flags.add("seed", std::to_string(o.seed), "seed of the initial weights and the synthetic data");
    add_run_flags(flags, "continue the run in --out from its latest checkpoint");
    if (!flags.parse(argc, argv, 2)) return 0;
    apply_threads(flags);

    o.train_pattern = flags.text("train");
    o.val_pattern = flags.text("val");
    o.init_checkpoint = flags.text("init");
    o.model_config = flags.text("model-config");
    o.out_dir = flags.text("out");
    o.device = flags.text("device");
    o.precision = flags.text("precision");
    o.batch_size = flags.count("batch-size", 1);
    o.seq_len = flags.count("seq-len", 1);
    o.data_order = parse_data_order(flags.text("data-order"));
    o.steps = flags.count("steps", 1);
    o.schedule.max_lr = flags.real("lr", Range::positive());
    o.schedule.kind = flags.text("lr-schedule");
    o.schedule.warmup_steps = flags.count("warmup", 0);
    o.schedule.final_fraction = flags.real("final-lr-fraction", Range::unit());
    o.optimizer.weight_decay = flags.real("weight-decay", Range::non_negative());
    o.optimizer.beta1 = flags.real("beta1", Range::below_one());
    o.optimizer.beta2 = flags.real("beta2", Range::below_one());
    o.optimizer.eps = flags.real("eps", Range::positive());
    o.optimizer.grad_clip = flags.real("grad-clip", Range::non_negative());
    o.val_every = flags.count("val-every", 0);
    o.val_batches = flags.count("val-batches", 1);
    o.checkpoint_every = flags.count("checkpoint-every", 0);
    o.log_every = flags.count("log-every", 0);
    o.seed = uint64_t(flags.integer("seed", 0, LLONG_MAX));
    apply_run_flags(flags, o.start, o.overwrite);
    if (!o.init_checkpoint.empty() && !o.model_config.empty()) fail("give --init or --model-config, not both");
    run_pretrain(o);
    return 0;
}

int command_verify(int argc, char** argv) {
    Flags flags("train verify --model M.bin --state S.bin [flags]\n\nOne forward and backward on the debug state's batch "
                "(llm.c format, e.g. written by PyTorch);\nprints the relative error of the logits, the loss and each "
                "of the 16 gradient tensors.\nExit status 0 only when all are within the tolerance.");
    flags.add("model", "", "llm.c model checkpoint (version 3 fp32 or 5 bf16)");
    flags.add("state", "", "llm.c debug state (inputs, targets, logits, loss, gradients)");
    flags.add("device", "auto", "cpu, cuda or auto");
    flags.add("threads", "auto", THREADS_HELP);
    flags.add("tolerance", "1e-4", "largest relative error accepted (fp32)");
    if (!flags.parse(argc, argv, 2)) return 0;
    apply_threads(flags);
    if (flags.text("model").empty() || flags.text("state").empty()) fail("verify needs --model and --state");
    double tolerance = flags.real("tolerance", Range::positive());
    VerifyReport report = run_verify(flags.text("model"), flags.text("state"), flags.text("device"), tolerance);
    print_verify_report(report, tolerance);
    return report.all_ok() ? 0 : 1;
}

int command_tokenize(int argc, char** argv) {
    TokenizeOptions o;
    Flags flags("train tokenize --input PATH [--input PATH ...] --out DIR [flags]\n\nText files -> GPT-2 token shards "
                "(llm.c format) for `train pretrain`: <out>/train_NNNNNN.bin and\n<out>/val_NNNNNN.bin. Each file is "
                "one document, starting with <|endoftext|>; Project Gutenberg\nheaders and footers are cut.");
    flags.add_repeatable("input", "text file, directory (its *.txt files) or quoted glob; repeatable");
    flags.add("out", "", "output directory, created if missing");
    flags.add("tokenizer", "../shared/data/tokenizer/gpt2", "folder with GPT-2's encoder.json and vocab.bpe");
    flags.add("val-fraction", "0.05", "share held out for validation: whole documents when there are at least "
                                      "1/F of them, else the last F of each document");
    flags.add("shard-tokens", "100000000", "at most this many tokens per shard");
    flags.add_switch("no-strip-gutenberg", "keep Project Gutenberg headers and footers");
    flags.add_switch("keep-crlf", "do not turn \\r\\n into \\n");
    if (!flags.parse(argc, argv, 2)) return 0;
    o.inputs = flags.all("input");
    o.out_dir = flags.text("out");
    if (o.inputs.empty() || o.out_dir.empty()) fail("tokenize needs --input and --out");
    o.tokenizer_dir = flags.text("tokenizer");
    o.val_fraction = flags.real("val-fraction", Range::below_one());
    long long shard_tokens = flags.integer("shard-tokens", 1, INT32_MAX);
    o.shard_tokens = size_t(shard_tokens);
    o.strip_gutenberg = !flags.on("no-strip-gutenberg");
    o.normalize_newlines = !flags.on("keep-crlf");
    run_tokenize(o);
    return 0;
}

int command_cl(int argc, char** argv) {
    ContinualOptions o;
    Flags flags("train cl [flags]\n\nContinual learning with LoRA on a frozen GPT-2: for each task of the order, train "
                "the adapters, then\nevaluate every task seen so far (greedy decoding and exact match; label ranking on closed-label "
                "tasks). Prints the "
                "accuracy matrix and\nAA / BWT / FT per method, then a comparison table. With no --order: the built-in "
                "synthetic\nbenchmark on a small random base (the default run). Writes <out>/<method>/metrics.jsonl,\n"
                "predictions.jsonl (every generated answer), results.json and adapters_taskNN.bin (resume with "
                "--resume),\nand <out>/comparison.json.");
    std::string method_names;
    for (const std::string& name : known_methods()) method_names += name + ", ";
    flags.add("method", "baselines", "comma list of " + method_names + "or baselines (the first four) or all");
    flags.add("order", "", "task order: 1..6 (task_orders.json: 1-3 Standard CL, 4-6 Long Sequence), trace (TRACE's "
                           "8 tasks), or a comma list of task names or directories");
    flags.add("task-prefix", o.task_prefix,
              "\"Task:<TYPE>\\nDataset:<name>\\n\" before every prompt (O-LoRA's prefix): on, off, or auto (on for "
              "orders 4-6, as O-LoRA's scripts run them)");
    flags.add("benchmark", "", "benchmark root (default " + default_benchmark_root() + ")");
    flags.add("tokenizer", "../shared/data/tokenizer/gpt2", "folder with GPT-2's encoder.json and vocab.bpe");
    flags.add("max-train", "0", "keep the first N training examples per task (0: all)");
    flags.add("max-test", "0", "keep the first N test examples per task (0: all)");
    flags.add("synthetic-tasks", std::to_string(o.synthetic_tasks), "tasks of the built-in benchmark");
    flags.add_switch("synthetic-disjoint", "built-in benchmark: each task's inputs in its own characters");
    flags.add("base", "", "base model checkpoint (llm.c format); required with --order");
    flags.add("base-config", o.base_config, "random base for the synthetic benchmark: L:C:NH:V:maxT");
    flags.add("device", o.device, "cpu, cuda or auto");
    flags.add("threads", "auto", THREADS_HELP);
    flags.add("precision", "auto", PRECISION_HELP);
    const ContinualPreset real = continual_preset(false), synthetic = continual_preset(true);
    auto preset_help = [](const std::string& value, const std::string& synthetic_value) {
        return " (default " + value + "; synthetic benchmark: " + synthetic_value + ")";
    };
    flags.add("lora-modules", "", "adapted linears: comma list of qkv, attn_proj, fc, fc_proj; or all" +
                                      preset_help(real.lora_modules, synthetic.lora_modules));
    flags.add("lora-rank", "", "r" + preset_help(std::to_string(real.lora_rank), std::to_string(synthetic.lora_rank)));
    flags.add("lora-alpha", "32", "alpha (scale = alpha / r)");
    flags.add("lora-dropout", "0.1", "dropout on the adapters' input while training");
    flags.add("epochs", "", "epochs per task" +
                                preset_help(std::to_string(real.epochs), std::to_string(synthetic.epochs)));
    flags.add("batch-size", std::to_string(o.batch_size), "sequences per step");
    flags.add("max-seq-len", "0", "longest training sequence (0: the model's context)");
    flags.add("lr", "", "learning rate (constant)" + preset_help("1e-3", "3e-3"));
    flags.add("weight-decay", "0", "AdamW weight decay");
    flags.add("grad-clip", "1.0", "clip the global gradient norm to this (0: off)");
    flags.add("replay-size", std::to_string(o.replay_size), "replay buffer capacity (reservoir)");
    const MethodOptions m;
    flags.add("olora-lambda1", number_text(m.olora_lambda1), "O-LoRA: weight of the orthogonality loss");
    flags.add("olora-lambda2", number_text(m.olora_lambda2), "O-LoRA: weight of the L2 loss");
    flags.add("orth", m.olora_orth, "O-LoRA orthogonality loss: abs (sum |A_old A_t^T|) or squared (the paper)");
    flags.add("nlora-lambda", "", "N-LoRA: weight of the L1 loss of the update (official: 0.4)" +
                                      preset_help("0.4", "0.04"));
    flags.add("nlora-form", m.nlora_form,
              "N-LoRA: scaled (r^2 * mean |B_t A_t|, the official scale on any module), full (sum |B_t A_t| over the "
              "d_out x d_in update, the paper's) or rr (sum |A_t B_t|, r x r, the official code's, square modules)");
    flags.add("ilora-ema", number_text(m.ilora_ema),
              "I-LoRA: slow = ema * slow + (1 - ema) * fast after every step (the paper's 0.99 is for thousands of "
              "steps per task)");
    flags.add("ilora-gamma", number_text(m.ilora_gamma), "I-LoRA: weight of the consistency loss");
    flags.add("ilora-eval", m.ilora_eval, "I-LoRA: evaluate with the slow or the fast adapter");
    flags.add("gainlora-gate-hidden", std::to_string(m.gainlora_gate_hidden), "GainLoRA: gate hidden size m");
    flags.add("gainlora-epsilon0", number_text(m.gainlora_epsilon0), "GainLoRA: GPM threshold at task 1");
    flags.add("gainlora-max-batches", std::to_string(m.gainlora_max_batches),
              "GainLoRA: batches of covariance collection per task");
    flags.add("gainlora-restore-norm", m.gainlora_restore_norm ? "on" : "off",
              "GainLoRA: restore each row's norm after the projection, as the official code does: on or off");
    flags.add("amlora-attention-dim", std::to_string(m.amlora_attention_dim), "AM-LoRA: attention size d_a");
    flags.add("amlora-lambda", "", "AM-LoRA: weight of the sparsity penalty" + preset_help("0.01", "1e-4"));
    flags.add("amlora-norm", m.amlora_norm, "AM-LoRA: sigmoid (+ L1) or softmax (+ entropy)");
    flags.add("eval", o.eval, "primary evaluation: rank (the highest-scored label of a closed-label task: at most " +
                                  std::to_string(MAX_CLOSED_LABELS) + " distinct training answers), generate (greedy "
                                  "answer, exact match), or auto (rank when every task is closed-label); both are "
                                  "computed and saved");
    flags.add_switch("eval-all", "evaluate every task after each task, not only those seen so far");
    flags.add("max-new-tokens", std::to_string(o.max_new_tokens), "longest generated answer");
    flags.add("eval-batch-size", std::to_string(o.eval_batch_size),
              "prompts decoded together; (prompt, label) rows per forward when ranking");
    flags.add("out", o.out_dir, "output directory");
    add_run_flags(flags, "continue the run in --out: each method from its latest task boundary");
    flags.add("stop-after", "0", "stop each method after this many tasks (a stage; continue with --resume)");
    flags.add("seed", std::to_string(o.seed), "seed of the data order, the adapters and the synthetic benchmark");
    flags.add("log-every", std::to_string(o.log_every),
              "steps between log lines and training records (metrics.jsonl), and the task's last step (0: none)");
    if (!flags.parse(argc, argv, 2)) return 0;
    apply_threads(flags);
    o.methods = parse_methods(flags.text("method"));
    o.order = flags.text("order");
    o.task_prefix = flags.text("task-prefix");
    o.benchmark_root = flags.text("benchmark");
    o.tokenizer_dir = flags.text("tokenizer");
    o.max_train = size_t(flags.integer("max-train", 0, LLONG_MAX));
    o.max_test = size_t(flags.integer("max-test", 0, LLONG_MAX));
    o.synthetic_tasks = int(flags.integer("synthetic-tasks", 1, 1000));
    o.synthetic_disjoint_inputs = flags.on("synthetic-disjoint");
    o.base_checkpoint = flags.text("base");
    o.base_config = flags.text("base-config");
    o.device = flags.text("device");
    o.precision = flags.text("precision");
    // flags left out take the preset of the data: the built-in synthetic benchmark or real tasks
    const ContinualPreset preset = continual_preset(o.order.empty());
    auto given = [&](const std::string& name) { return !flags.text(name).empty(); };
    o.lora.modules = parse_lora_modules(given("lora-modules") ? flags.text("lora-modules") : preset.lora_modules);
    o.lora.rank = given("lora-rank") ? int(flags.integer("lora-rank", 1, 4096)) : preset.lora_rank;
    o.lora.alpha = flags.real("lora-alpha", Range::positive());
    o.lora.dropout = flags.real("lora-dropout", Range::below_one());
    o.epochs = given("epochs") ? flags.count("epochs", 1) : preset.epochs;
    o.batch_size = flags.count("batch-size", 1);
    o.max_seq_len = flags.count("max-seq-len", 0);
    if (o.max_seq_len == 1) fail("--max-seq-len 1: a sequence needs a prompt token and an answer token (0 or >= 2)");
    o.optimizer.learning_rate = given("lr") ? flags.real("lr", Range::positive()) : preset.learning_rate;
    o.optimizer.weight_decay = flags.real("weight-decay", Range::non_negative());
    o.optimizer.grad_clip = flags.real("grad-clip", Range::non_negative());
    o.replay_size = flags.count("replay-size", 1);
    o.eval = one_of(flags, "eval", {"auto", "rank", "generate"});
    o.eval_all = flags.on("eval-all");
    o.max_new_tokens = flags.count("max-new-tokens", 1);
    o.eval_batch_size = flags.count("eval-batch-size", 1);
    o.out_dir = flags.text("out");
    apply_run_flags(flags, o.start, o.overwrite);
    o.stop_after = flags.count("stop-after", 0);
    o.seed = uint64_t(flags.integer("seed", 0, LLONG_MAX));
    o.log_every = flags.count("log-every", 0);
    MethodOptions& mo = o.method;
    mo.olora_lambda1 = flags.real("olora-lambda1", Range::non_negative());
    mo.olora_lambda2 = flags.real("olora-lambda2", Range::non_negative());
    mo.olora_orth = one_of(flags, "orth", {"abs", "squared"});
    mo.nlora_lambda = given("nlora-lambda") ? flags.real("nlora-lambda", Range::non_negative()) : preset.nlora_lambda;
    mo.nlora_form = one_of(flags, "nlora-form", {"full", "rr", "scaled"});
    mo.ilora_ema = flags.real("ilora-ema", Range::unit());
    mo.ilora_gamma = flags.real("ilora-gamma", Range::non_negative());
    mo.ilora_eval = one_of(flags, "ilora-eval", {"slow", "fast"});
    mo.gainlora_gate_hidden = flags.count("gainlora-gate-hidden", 1);
    mo.gainlora_epsilon0 = flags.real("gainlora-epsilon0", Range::above_zero_to_one());
    mo.gainlora_max_batches = flags.count("gainlora-max-batches", 1);
    mo.gainlora_restore_norm = one_of(flags, "gainlora-restore-norm", {"on", "off"}) == "on";
    mo.amlora_attention_dim = flags.count("amlora-attention-dim", 1);
    mo.amlora_lambda = given("amlora-lambda") ? flags.real("amlora-lambda", Range::non_negative()) : preset.amlora_lambda;
    mo.amlora_norm = one_of(flags, "amlora-norm", {"sigmoid", "softmax"});
    run_continual(o);
    return 0;
}

// --- Hugging Face in and out (model/hf_gpt2.h, lora/hf_adapters.h) ---

const char* ILORA_ADAPTER_HELP = "I-LoRA adapters: export the slow adapter (what it evaluates with by default) or the "
                                 "fast one";

// --adapters as the fixed update its method evaluates with (--ilora-adapter picks I-LoRA's slow or fast one)
FixedAdapters read_adapters_flag(Flags& flags) {
    const bool ilora_fast = one_of(flags, "ilora-adapter", {"slow", "fast"}) == "fast";
    return fixed_adapters(read_adapter_file(flags.text("adapters")), ilora_fast);
}

int command_import_hf(int argc, char** argv) {
    Flags flags("train import-hf --hf DIR --out MODEL.bin\n\nA Hugging Face GPT-2 (transformers' GPT2LMHeadModel or "
                "GPT2Model folder: config.json and\nmodel.safetensors, or a sharded model.safetensors.index.json; fp32, "
                "fp16 or bf16) -> an llm.c\ncheckpoint (version 3, fp32) for --base / --init. Refuses, naming the field "
                "or tensor, what clora\ncannot represent (another activation or attention scaling, an untied head, a "
                "missing tensor ...).");
    flags.add("hf", "", "Hugging Face model folder");
    flags.add("out", "", "llm.c checkpoint to write");
    if (!flags.parse(argc, argv, 2)) return 0;
    if (flags.text("hf").empty() || flags.text("out").empty()) fail("import-hf needs --hf and --out");
    const HfModel model = read_hf_gpt2(flags.text("hf"));
    write_checkpoint(flags.text("out"), model.config, model.parameters.data());
    std::printf("import-hf: %s -> %s (%s, %zu parameters)\n", flags.text("hf").c_str(), flags.text("out").c_str(),
                describe_config(model.config).c_str(), model.parameters.size());
    for (const std::string& note : model.notes) std::printf("  %s\n", note.c_str());
    return 0;
}

int command_export_hf(int argc, char** argv) {
    Flags flags("train export-hf --model MODEL.bin --out DIR [--adapters ADAPTERS.bin --merge]\n\nAn llm.c checkpoint "
                "-> DIR/config.json and DIR/model.safetensors (fp32), which\ntransformers' "
                "GPT2LMHeadModel.from_pretrained(DIR) loads. With --adapters and --merge, the adapters'\nupdate "
                "(every branch, scale alpha / r) is merged into the weights first; methods whose update depends\non "
                "the input (GainLoRA, AM-LoRA) are refused.");
    flags.add("model", "", "llm.c checkpoint (version 3 fp32 or 5 bf16)");
    flags.add("out", "", "folder to write (created when missing; its two files are replaced)");
    flags.add("adapters", "", "a train cl adapter file (<out>/<method>/adapters_taskNN.bin), with --merge");
    flags.add_switch("merge", "merge --adapters into the weights");
    flags.add("ilora-adapter", "slow", ILORA_ADAPTER_HELP);
    if (!flags.parse(argc, argv, 2)) return 0;
    if (flags.text("model").empty() || flags.text("out").empty()) fail("export-hf needs --model and --out");
    if (flags.text("adapters").empty() != !flags.on("merge"))
        fail("export-hf: --adapters and --merge go together (export-peft writes adapters unmerged)");
    Checkpoint checkpoint = read_checkpoint(flags.text("model"));
    std::string merged;
    if (flags.on("merge")) {
        const FixedAdapters adapters = read_adapters_flag(flags);
        merge_adapters(checkpoint.parameters, checkpoint.config, adapters);
        merged = ", merged with " + flags.text("adapters") + " (" + std::to_string(adapters.branches) +
                 " branches of " + adapters.source + ")";
    }
    write_hf_gpt2(flags.text("out"), checkpoint.config, checkpoint.parameters.data());
    std::printf("export-hf: %s -> %s/config.json, model.safetensors (%s)%s\n", flags.text("model").c_str(),
                flags.text("out").c_str(), describe_config(checkpoint.config).c_str(), merged.c_str());
    return 0;
}

int command_export_peft(int argc, char** argv) {
    Flags flags("train export-peft --adapters ADAPTERS.bin --out DIR\n\nA train cl adapter file -> Hugging Face PEFT "
                "LoRA adapters for the base exported by export-hf:\nDIR/adapter_config.json and "
                "adapter_model.safetensors hold every branch (summed, as the method\nevaluates), and with several "
                "branches DIR/task<k>/ holds branch k alone. Methods whose update\ndepends on the input (GainLoRA, "
                "AM-LoRA) are refused.");
    flags.add("adapters", "", "a train cl adapter file (<out>/<method>/adapters_taskNN.bin)");
    flags.add("out", "", "folder to write (created when missing)");
    flags.add("ilora-adapter", "slow", ILORA_ADAPTER_HELP);
    if (!flags.parse(argc, argv, 2)) return 0;
    if (flags.text("adapters").empty() || flags.text("out").empty()) fail("export-peft needs --adapters and --out");
    const FixedAdapters adapters = read_adapters_flag(flags);
    const std::vector<std::string> folders = write_peft_adapters(flags.text("out"), adapters);
    const int R = adapters.branches * adapters.config.rank;
    std::printf("export-peft: %s (%s) -> %s: r %d, lora_alpha %g, modules %s\n", flags.text("adapters").c_str(),
                adapters.source.c_str(), folders[0].c_str(), R, double(adapters.config.alpha) * adapters.branches,
                lora_modules_string(adapters.config.modules).c_str());
    if (folders.size() > 1)
        std::printf("  the %d branches summed, as the method evaluates; each alone (rank %d) in %s/task1 .. task%d\n",
                    adapters.branches, adapters.config.rank, folders[0].c_str(), adapters.branches);
    std::printf("  load: PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained(BASE), \"%s\")\n",
                folders[0].c_str());
    return 0;
}

void print_usage() {
    std::printf(
        "clora: a from-scratch GPT-2 trainer for continual learning with LoRA adapters\n\n"
        "usage: train <command> [flags]     (train <command> --help for its flags; train --version)\n\n"
        "commands:\n"
        "  tokenize    text files -> GPT-2 token shards (train and validation)\n"
        "  pretrain    train GPT-2 on token shards (built-in synthetic data when none are given)\n"
        "  cl          continual learning with LoRA over a task order (built-in synthetic tasks when none given)\n"
        "  verify      check one forward/backward against an llm.c debug state (PyTorch parity)\n"
        "  import-hf   a Hugging Face GPT-2 folder (safetensors) -> an llm.c checkpoint\n"
        "  export-hf   an llm.c checkpoint (with merged adapters) -> a Hugging Face GPT-2 folder\n"
        "  export-peft a train cl adapter file -> Hugging Face PEFT LoRA adapters\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
        std::string(argv[1]) == "help") {
        print_usage();
        return argc < 2 ? 1 : 0;
    }
    if (std::string(argv[1]) == "--version" || std::string(argv[1]) == "version") {
        std::printf("clora %s (commit %s)\n", clora_version(), clora_commit());
        return 0;
    }
    const std::vector<std::pair<std::string, std::function<int(int, char**)>>> commands = {
        {"tokenize", command_tokenize}, {"pretrain", command_pretrain}, {"cl", command_cl},
        {"verify", command_verify}, {"import-hf", command_import_hf}, {"export-hf", command_export_hf},
        {"export-peft", command_export_peft}};
    std::string name = argv[1];
    try {
        distributed_init();  // under a launcher: MPI; alone: nothing
        record_command_line(argc, argv);
        for (const auto& command : commands)
            if (command.first == name) {
                const int status = command.second(argc, argv);
                distributed_finalize();
                return status;
            }
        std::string guess;
        for (const auto& command : commands)
            if (edit_distance(name, command.first) <= 2) guess = command.first;
        fail("unknown command '" + name + "'" + (guess.empty() ? "" : " (did you mean " + guess + "?)") +
             " (see train --help)");
    } catch (const Error& error) {
        return distributed_fail(error.what());
    } catch (const std::bad_alloc&) {
        return distributed_fail("out of memory");
    } catch (const std::exception& error) {  // a reader's own checks let something through: still one line, exit 1
        return distributed_fail(std::string("internal error: ") + error.what());
    }
    return 1;
}
