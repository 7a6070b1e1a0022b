// clora's entry point: `train <command> [--flag value ...]`. Each command parses its flags (unknown flags,
// missing or malformed values are errors), runs, and returns its exit status; every Error is printed
// as one line on stderr with exit status 1. Under mpirun or srun every rank runs the command, data-parallel
// (model/distributed.h); an Error on any rank is printed with its rank and ends the whole job. The flags'
// parsing is lora/cli_flags.h; `train cl`'s flags are lora/cl_flags.h.
#include <climits>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "data/token_loader.h"
#include "data/tokenize_text.h"
#include "lora/cl_flags.h"
#include "lora/cli_flags.h"
#include "lora/continual.h"
#include "lora/hf_adapters.h"
#include "model/checkpoint.h"
#include "model/distributed.h"
#include "model/hf_gpt2.h"
#include "model/pretrain.h"
#include "model/run_directory.h"
#include "model/verify.h"

namespace {

using Range = NumberRange;

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
    add_device_flags(flags, o.device);
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
    add_device_flags(flags, "auto", false);
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
    Flags flags = cl_flags();
    if (!flags.parse(argc, argv, 2)) return 0;
    run_continual(read_cl_flags(flags));
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
