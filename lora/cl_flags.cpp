// `train cl`'s flags (lora/cl_flags.h).
#include "lora/cl_flags.h"

#include "data/task_data.h"

namespace {

// " (default 1e-3; synthetic benchmark: 3e-3)": the help of a flag whose default depends on the data.
std::string preset_help(const std::string& value, const std::string& synthetic_value) {
    return " (default " + value + "; synthetic benchmark: " + synthetic_value + ")";
}

// Each method option's flag (lora/method_info.h), in registry order.
void add_method_flags(Flags& flags) {
    for (const MethodOption* option : method_options()) {
        // a real option is FLOAT even when its default reads as an integer (--ilora-gamma 1)
        const std::string metavar = option->kind == MethodOption::Kind::real    ? "FLOAT"
                                    : option->kind == MethodOption::Kind::count ? "N"
                                                                                : "";
        if (option->synthetic.empty())
            flags.add(option->flag, option->default_text(), option->help, metavar);
        else
            flags.add(option->flag, "", option->help + preset_help(option->default_text(), option->synthetic),
                      metavar);
    }
}

void add_data_and_model_flags(Flags& flags, const ContinualOptions& o) {
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
    add_device_flags(flags, o.device);
}

void add_training_flags(Flags& flags, const ContinualOptions& o) {
    const ContinualPreset real = continual_preset(false), synthetic = continual_preset(true);
    flags.add("lora-modules", "", "adapted linears: comma list of qkv, attn_proj, fc, fc_proj; or all" +
                                      preset_help(real.lora_modules, synthetic.lora_modules));
    flags.add("lora-rank", "", "r" + preset_help(std::to_string(real.lora_rank), std::to_string(synthetic.lora_rank)));
    flags.add("lora-alpha", "32", "alpha (scale = alpha / r)", "FLOAT");
    flags.add("lora-dropout", "0.1", "dropout on the adapters' input while training");
    flags.add("epochs", "", "epochs per task" +
                                preset_help(std::to_string(real.epochs), std::to_string(synthetic.epochs)));
    flags.add("batch-size", std::to_string(o.batch_size), "sequences per step");
    flags.add("max-seq-len", "0", "longest training sequence (0: the model's context)");
    flags.add("lr", "", "learning rate (constant)" + preset_help("1e-3", "3e-3"));
    flags.add("weight-decay", "0", "AdamW weight decay", "FLOAT");
    flags.add("grad-clip", "1.0", "clip the global gradient norm to this (0: off)");
    flags.add("replay-size", std::to_string(o.replay_size), "replay buffer capacity (reservoir)");
}

void add_evaluation_and_run_flags(Flags& flags, const ContinualOptions& o) {
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
}

// The method options: the data's presets, then every flag (one with a preset only when given: left out, it is "").
void read_method_flags(Flags& flags, const ContinualPreset& preset, MethodOptions& m) {
    m = preset.method;
    for (const MethodOption* option : method_options())
        if (option->synthetic.empty() || !flags.text(option->flag).empty()) option->read(flags.text(option->flag), m);
}

}  // namespace

Flags cl_flags() {
    const ContinualOptions o;
    Flags flags("train cl [flags]\n\nContinual learning with LoRA on a frozen GPT-2: for each task of the order, train "
                "the adapters, then\nevaluate every task seen so far (greedy decoding and exact match; label ranking on "
                "closed-label tasks). Prints the accuracy matrix and\nAA / BWT / FT per method, then a comparison "
                "table. With no --order: the built-in synthetic\nbenchmark on a small random base (the default run). "
                "Writes <out>/<method>/metrics.jsonl,\npredictions.jsonl (every generated answer), results.json and "
                "adapters_taskNN.bin (resume with --resume),\nand <out>/comparison.json.");
    add_data_and_model_flags(flags, o);
    add_training_flags(flags, o);
    add_method_flags(flags);
    add_evaluation_and_run_flags(flags, o);
    return flags;
}

ContinualOptions read_cl_flags(Flags& flags) {
    ContinualOptions o;
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
    o.lora.alpha = flags.real("lora-alpha", NumberRange::positive());
    o.lora.dropout = flags.real("lora-dropout", NumberRange::below_one());
    o.epochs = given("epochs") ? flags.count("epochs", 1) : preset.epochs;
    o.batch_size = flags.count("batch-size", 1);
    o.max_seq_len = flags.count("max-seq-len", 0);
    if (o.max_seq_len == 1) fail("--max-seq-len 1: a sequence needs a prompt token and an answer token (0 or >= 2)");
    o.optimizer.learning_rate = given("lr") ? flags.real("lr", NumberRange::positive()) : preset.learning_rate;
    o.optimizer.weight_decay = flags.real("weight-decay", NumberRange::non_negative());
    o.optimizer.grad_clip = flags.real("grad-clip", NumberRange::non_negative());
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
    read_method_flags(flags, preset, o.method);
    return o;
}
