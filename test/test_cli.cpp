// The `train` binary end to end: exit codes, messages and files, run as a user would.
#include "data/file_io.h"
#include "test/json_files.h"
#include "test/run_command.h"
#include "test/test_support.h"

namespace {
Run run_train(const std::string& arguments) { return run_command(train_binary() + " " + arguments); }
}  // namespace

TEST_CASE("cli: train verify passes on the PyTorch fixture and prints every tensor") {
    Run run = run_train("verify --model test/fixtures/gpt2_tiny.bin --state test/fixtures/gpt2_tiny_state.bin --device cpu");
    INFO(run.output);
    CHECK(run.status == 0);
    for (const char* name : {"logits", "loss", "wte", "qkvw", "fcprojb", "lnfb", "all within tolerance"})
        CHECK_THAT(run.output, Catch::Contains(name));
}

TEST_CASE("cli: verify fails when the reference disagrees") {
    // a model with different weights against the same state: far outside the tolerance
    std::string dir = make_temp_dir("cli_verify");
    std::vector<uint8_t> bytes = read_file_bytes("test/fixtures/gpt2_tiny.bin");
    REQUIRE(bytes.size() > 4096);
    bytes[1024 + 37 * 4 + 3] ^= 0x01;  // nudge one wte value
    bytes[2000] ^= 0x40;
    AtomicFileWriter writer(dir + "/changed.bin");
    writer.write(bytes.data(), bytes.size());
    writer.commit();
    Run run = run_train("verify --model " + dir + "/changed.bin --state test/fixtures/gpt2_tiny_state.bin --device cpu");
    INFO(run.output);
    CHECK(run.status == 1);
    CHECK_THAT(run.output, Catch::Contains("FAIL"));
}

TEST_CASE("cli: the default pretraining run works with no data and writes its checkpoint") {
    std::string dir = make_temp_dir("cli_pretrain");
    Run run = run_train("pretrain --steps 3 --val-every 2 --device cpu --out " + dir);
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("step     3/3 | loss"));
    CHECK_THAT(run.output, Catch::Contains("val loss"));
    CHECK(file_exists(dir + "/model_00000003.bin"));
    CHECK(file_exists(dir + "/state_00000003.bin"));
    CHECK(file_exists(dir + "/metrics.jsonl"));
}

TEST_CASE("cli: `make` alone builds ./train, as the README's first command needs (its default goal is all)") {
    // make's database, without running anything: the default goal is the first target unless set
    CHECK(run_command("make -pnq 2>/dev/null | grep -qx '.DEFAULT_GOAL := all'").status == 0);
}

TEST_CASE("cli: bad input gives one clear error line and a non-zero exit") {
    struct Case {
        const char* arguments;
        const char* message;
    } cases[] = {
        {"pretrain --bogus 1", "unknown flag '--bogus'"},
        {"pretrain --steps", "flag '--steps' needs a value"},
        {"pretrain --steps ten", "--steps 'ten': expected an integer"},
        {"pretrain --device tpu", "expected cpu, cuda or auto"},
        {"pretrain --threads 0", "--threads '0': expected a positive count or auto"},
        {"cl --threads many", "--threads 'many': expected a positive count or auto"},
        {"pretrain --model-config 3:100:7:50:64", "channels must be divisible by num_heads"},
        {"verify --model /nonexistent/m.bin --state s.bin", "/nonexistent/m.bin: cannot open"},
        {"verify --model test/fixtures/gpt2_tiny.bin", "verify needs --model and --state"},
        {"frobnicate", "unknown command 'frobnicate'"},
        {"tokenize --out /tmp/clora_cli_never", "tokenize needs --input and --out"},
        {"tokenize --input /nonexistent/book.txt --out /tmp/clora_cli_never --tokenizer /nonexistent",
         "/nonexistent"},
        // numbers: finite, in range, never wrapped into an int
        {"pretrain --lr inf", "--lr inf: expected a finite number > 0"},
        {"pretrain --lr -1", "--lr -1: expected a finite number > 0"},
        {"pretrain --beta1 1", "--beta1 1: expected a finite number in [0, 1)"},
        {"pretrain --weight-decay nan", "--weight-decay nan: expected a finite number >= 0"},
        {"pretrain --final-lr-fraction nan", "--final-lr-fraction nan"},
        {"pretrain --eps -1e-8", "--eps -1e-8"},
        {"pretrain --grad-clip -1", "--grad-clip -1"},
        {"pretrain --checkpoint-every -5", "--checkpoint-every -5: expected an integer >= 0"},
        {"pretrain --val-every -1", "--val-every -1"},
        {"pretrain --steps 4294967298", "--steps 4294967298: expected an integer >= 1"},
        {"pretrain --seed 99999999999999999999", "--seed 99999999999999999999"},
        {"pretrain --resume --overwrite", "give one of --resume, --resume-or-start and --overwrite"},
    };
    for (const Case& c : cases) {
        Run run = run_train(c.arguments);
        INFO(c.arguments << "\n" << run.output);
        CHECK(run.status == 1);
        CHECK_THAT(run.output, Catch::Contains("error: ") && Catch::Contains(c.message));
    }
}

TEST_CASE("cli: tokenize turns text into shards that pretrain reads") {
    std::string data = shared_data_dir();
    if (data.empty()) SKIP_TEST("../shared/data (the GPT-2 tokenizer files) is absent");
    std::string dir = make_temp_dir("cli_tokenize");
    {
        AtomicFileWriter text(dir + "/story.txt");
        std::string story;
        for (int i = 0; i < 60; i++) story += "Once upon a time, a small model read a story, line " + std::to_string(i) + ".\n";
        text.write(story.data(), story.size());
        text.commit();
    }
    Run tokenize = run_train("tokenize --input " + dir + "/story.txt --out " + dir + "/shards --val-fraction 0.2 --tokenizer " +
                             data + "/tokenizer/gpt2");
    INFO(tokenize.output);
    REQUIRE(tokenize.status == 0);
    CHECK(file_exists(dir + "/shards/train_000000.bin"));
    CHECK(file_exists(dir + "/shards/val_000000.bin"));
    Run pretrain = run_train("pretrain --train '" + dir + "/shards/train_*.bin' --val '" + dir +
                             "/shards/val_*.bin' --model-config 1:16:2:50257:16 --batch-size 2 --seq-len 16 --steps 2 "
                             "--val-batches 1 --device cpu --out " + dir + "/out");
    INFO(pretrain.output);
    CHECK(pretrain.status == 0);
    CHECK_THAT(pretrain.output, Catch::Contains("val loss"));
}

TEST_CASE("cli: --help on every command") {
    for (const char* command : {"tokenize", "pretrain", "verify"}) {
        Run run = run_train(std::string(command) + " --help");
        INFO(run.output);
        CHECK(run.status == 0);
        CHECK_THAT(run.output, Catch::Contains(std::string("train ") + command));
    }
    CHECK_THAT(run_train("pretrain --help").output, Catch::Contains("--resume"));
    CHECK(run_train("--help").status == 0);
}

TEST_CASE("cli: --device cuda without a GPU is a clear error, auto falls back to the CPU") {
    Run probe = run_train("pretrain --steps 1 --device cuda --overwrite --out /tmp/clora_cli_cuda_probe");
    if (probe.status == 0) SKIP_TEST("a usable GPU is present");
    CHECK(probe.status == 1);
    CHECK_THAT(probe.output, Catch::Contains("--device cuda"));
    std::string dir = make_temp_dir("cli_auto");
    Run run = run_train("pretrain --steps 1 --device auto --out " + dir);
    CHECK(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("device: auto -> cpu"));
    CHECK_THAT(run.output, !Catch::Contains("driver version"));  // plain words, not the CUDA runtime's
}

TEST_CASE("cli: --flag=value is --flag value; a misspelt flag or command gets a suggestion; --version; metavars") {
    const std::string dir = make_temp_dir("cli_conventions");
    const std::string run_flags = " --method seqlora --synthetic-tasks 1 --epochs 1 --device cpu --log-every 0";
    Run equals = run_train("cl --lr=2e-3 --out=" + dir + "/equals" + run_flags);
    Run spaced = run_train("cl --lr 2e-3 --out " + dir + "/spaced" + run_flags);
    INFO(equals.output << spaced.output);
    REQUIRE(equals.status == 0);
    REQUIRE(spaced.status == 0);
    CHECK_THAT(equals.output, Catch::Contains("lr 0.002"));
    // the same run: every recorded option and the same accuracies (results.json also holds wall times)
    CHECK(read_json(dir + "/equals/run.json").at("options") == read_json(dir + "/spaced/run.json").at("options"));
    CHECK(read_json(dir + "/equals/seqlora/results.json").at("accuracy") ==
          read_json(dir + "/spaced/seqlora/results.json").at("accuracy"));

    Run misspelt = run_train("cl --lrr 1e-3");
    CHECK(misspelt.status == 1);
    CHECK_THAT(misspelt.output, Catch::Contains("unknown flag '--lrr' (did you mean --lr?)"));
    Run command = run_train("prtrain");
    CHECK(command.status == 1);
    CHECK_THAT(command.output, Catch::Contains("unknown command 'prtrain' (did you mean pretrain?)"));
    Run valued_switch = run_train("export-hf --merge=1");
    CHECK(valued_switch.status == 1);
    CHECK_THAT(valued_switch.output, Catch::Contains("flag '--merge' takes no value"));

    Run version = run_train("--version");
    CHECK(version.status == 0);
    CHECK_THAT(version.output, Catch::StartsWith("clora ") && Catch::Contains("(commit "));

    Run help = run_train("cl --help");
    CHECK(help.status == 0);
    for (const char* shown : {"--lr FLOAT", "--out PATH", "--method LIST", "--epochs N", "--base-config SPEC",
                              "--eval CHOICE", "(default 0.5)", "(default 0.95)",
                              // real flags whose defaults read as integers
                              "--ilora-gamma FLOAT", "--olora-lambda2 FLOAT", "--weight-decay FLOAT",
                              "--lora-alpha FLOAT", "--replay-size N"})
        CHECK_THAT(help.output, Catch::Contains(shown));
    CHECK_THAT(help.output, !Catch::Contains("0.500000"));
}

TEST_CASE("cli: --precision bf16 on the CPU is a clear error before any work; a run prints its precision") {
    for (const char* command :
         {"pretrain --steps 1", "cl --method seqlora --synthetic-tasks 1 --epochs 1 --log-every 0"}) {
        INFO(command);
        const std::string dir = make_temp_dir("cli_precision");
        Run bf16 = run_train(std::string(command) + " --device cpu --precision bf16 --out " + dir + "/bf16");
        CHECK(bf16.status == 1);
        CHECK_THAT(bf16.output, Catch::Contains("--precision bf16: the CPU backend computes in fp32 only"));
        CHECK_FALSE(file_exists(dir + "/bf16"));
        Run unknown = run_train(std::string(command) + " --device cpu --precision fp16 --out " + dir + "/fp16");
        CHECK(unknown.status == 1);
        CHECK_THAT(unknown.output, Catch::Contains("--precision 'fp16': expected fp32, bf16 or auto"));
        Run run = run_train(std::string(command) + " --device cpu --out " + dir + "/auto");
        INFO(run.output);
        CHECK(run.status == 0);
        CHECK_THAT(run.output, Catch::Contains("cpu (fp32)"));
    }
}

TEST_CASE("cli: train cl runs the synthetic benchmark, prints the matrix and writes its files") {
    std::string dir = make_temp_dir("cli_cl");
    Run run = run_train("cl --device cpu --method seqlora --synthetic-tasks 2 --epochs 1 --log-every 0 --out " + dir);
    INFO(run.output);
    CHECK(run.status == 0);
    for (const char* text : {"exact match (%) after each task", "after sub2", "AA", "BWT", "FT", "diagonal"})
        CHECK_THAT(run.output, Catch::Contains(text));
    for (const char* file : {"/seqlora/adapters_task01.bin", "/seqlora/adapters_task02.bin", "/seqlora/results.json",
                             "/seqlora/metrics.jsonl", "/comparison.json"})
        CHECK(file_exists(dir + file));
}

TEST_CASE("cli: a folder holds one run: refused, resumed, overwritten, each on request") {
    const std::string dir = make_temp_dir("cli_run_folder") + "/out";
    const std::string run = "pretrain --device cpu --threads 1 --steps 2 --val-every 0 --out " + dir;
    Run resume_nothing = run_train(run + " --resume");
    CHECK(resume_nothing.status == 1);
    CHECK_THAT(resume_nothing.output, Catch::Contains("holds no run to resume"));
    REQUIRE(run_train(run).status == 0);
    const nlohmann::json record = read_json(dir + "/run.json");
    CHECK(record["status"] == "finished");
    CHECK(record["options"]["steps"] == 2);
    CHECK(record["sessions"][0]["command_line"][1] == "pretrain");
    Run again = run_train(run);
    CHECK(again.status == 1);
    CHECK_THAT(again.output, Catch::Contains("holds another run") && Catch::Contains("--overwrite"));
    Run changed = run_train(run + " --resume --steps 4 --seed 7");
    CHECK(changed.status == 1);
    CHECK_THAT(changed.output, Catch::Contains("--seed 7 (the run has --seed 1337)"));
    Run longer = run_train(run + " --resume --steps 4 --threads 2");  // steps and threads may change
    INFO(longer.output);
    CHECK(longer.status == 0);
    CHECK_THAT(longer.output, Catch::Contains("resumed from step 2"));
    CHECK(run_train(run + " --overwrite").status == 0);
    CHECK_FALSE(file_exists(dir + "/model_00000004.bin"));
}

TEST_CASE("cli: train cl rejects bad flags with one line and exit 1") {
    const std::pair<const char*, const char*> cases[] = {
        {"cl --method magic", "unknown method 'magic'"},
        {"cl --lora-modules mlp", "unknown LoRA module 'mlp'"},
        {"cl --lora-dropout 1.5", "dropout"},
        {"cl --epochs -1", "epochs"},
        {"cl --order 1", "need a base model"},
        {"cl --nlora-form square", "expected one of full, rr"},
        {"cl --lr nan", "--lr nan: expected a finite number > 0"},
        {"cl --method seqlora,seqlora", "'seqlora' is listed twice"},
        {"cl --base-config 2:32:4:257:1", "max_seq_len must be >= 2"},
        {"cl --max-seq-len 1", "--max-seq-len 1"},
        {"cl --ilora-ema 1.5", "--ilora-ema 1.5: expected a finite number in [0, 1]"},
        {"cl --replay-size 0", "--replay-size 0: expected an integer >= 1"},
    };
    for (const auto& [arguments, message] : cases) {
        Run run = run_train(arguments);
        INFO(arguments << "\n" << run.output);
        CHECK(run.status == 1);
        CHECK_THAT(run.output, Catch::Contains(message));
        CHECK_THAT(run.output, Catch::StartsWith("error: ") || Catch::Contains("\nerror: "));
    }
}

TEST_CASE("cli: train cl --order trace scores each task by its own metric; order 4 puts O-LoRA's prefix first") {
    const std::string data = shared_data_dir();
    if (data.empty()) SKIP_TEST("../shared/data (the continual-learning benchmark and the tokenizer) is absent");
    const std::string dir = make_temp_dir("cli_trace");
    // a one-layer random base with GPT-2's vocabulary, as every real task needs
    REQUIRE(run_train("pretrain --device cpu --model-config 1:16:2:50257:64 --steps 1 --log-every 0 --out " + dir +
                      "/base").status == 0);
    const std::string common = " --device cpu --method seqlora --max-train 2 --max-test 2 --epochs 1 --batch-size 2 "
                               "--max-new-tokens 2 --log-every 0 --benchmark " + data +
                               "/cl_benchmark/LLM-CL-Benchmark_500 --tokenizer " + data + "/tokenizer/gpt2 --base " +
                               dir + "/base/model_00000001.bin";
    // (with 2 training examples every task's answers look like a closed label set: generation is asked for)
    Run trace = run_train("cl --order trace --eval generate" + common + " --out " + dir + "/trace");
    INFO(trace.output);
    REQUIRE(trace.status == 0);
    CHECK_THAT(trace.output, Catch::Contains("MeetingBank trains on its eval.json: it has no train.json"));
    CHECK_THAT(trace.output, Catch::Contains("each task's metric (%)") && Catch::Contains("rouge_l") &&
                                 Catch::Contains("sari"));
    const nlohmann::json results = read_json(dir + "/trace/seqlora/results.json");
    CHECK(results.at("task_metrics") == nlohmann::json({"first_line", "first_line", "rouge_l", "edit_similarity",
                                                        "first_line", "first_line", "first_line", "sari"}));
    CHECK_THAT(trace.output, !Catch::Contains("prompts start with"));

    Run long_sequence = run_train("cl --order 4 --stop-after 2" + common + " --out " + dir + "/order4");
    INFO(long_sequence.output);
    REQUIRE(long_sequence.status == 0);
    CHECK_THAT(long_sequence.output, Catch::Contains("prompts start with \"Task:<TYPE>\\nDataset:<name>\\n\""));
    CHECK(read_json(dir + "/order4/run.json").at("options").at("task-prefix") == "on");
    CHECK(run_train("cl --order 4 --task-prefix maybe" + common + " --out " + dir + "/bad").status == 1);
}
