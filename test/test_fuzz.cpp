// Every reader against seeded mutations of its files, run through the real `train` commands: model checkpoints and
// debug states (`train verify`), training states and checkpoints (`train pretrain --resume`), token shards
// (`train pretrain --train`), the adapter file of every method (`train cl --resume`), task JSON files (`train cl
// --order`), tokenizer files (`train tokenize`), Hugging Face model folders (`train import-hf`). Each mutated input must end in a clean error (exit 1, one line
// "error: ...") or in a run that finishes (with the unmutated run's result, or another for an input that is still
// valid); an unsealed change to a sealed file must be caught. No crash, abort or hang (each run under `timeout 60`,
// its memory capped). One line of counts per format is printed.
//
// CLORA_FUZZ_CASES=N runs N cases per format (default: a few dozen, about a minute in all on two cores);
// CLORA_FUZZ_SEED=S varies the mutations; CLORA_TRAIN=path runs another build of train (`make sanitize`: one with
// -fsanitize=address,undefined; its reports count as crashes), CLORA_FUZZ_MEMORY_KB=0 lifts the memory cap (which
// a sanitizer build needs).
#include <nlohmann/json.hpp>
#include <regex>
#include <tuple>

#include "data/checksum.h"
#include "data/token_shard.h"
#include "test/fuzz_support.h"
#include "test/tiny_tokenizer.h"

using namespace fuzz;

namespace {

const std::string CPU = " --device cpu --threads 1";
// The small continual-learning run every adapter case resumes: 2 tasks of the synthetic benchmark, a 1-layer base.
const std::string SMALL_CL = CPU + " --synthetic-tasks 2 --epochs 1 --base-config 1:16:2:257:32 --lora-rank 2 "
                                   "--log-every 0 --max-new-tokens 4 --gainlora-max-batches 2 --gainlora-gate-hidden 4 "
                                   "--amlora-attention-dim 4 --replay-size 50";

uint64_t fuzz_seed(uint64_t format_seed) {
    const char* text = std::getenv("CLORA_FUZZ_SEED");
    return format_seed * 1000003ULL + (text ? std::strtoull(text, nullptr, 10) : 0);
}

// `train <arguments>` under `timeout 60`, with its virtual memory capped (4 GB by default) so that a reader's huge
// allocation fails at once rather than swapping.
std::string train_command(const std::string& arguments) {
    const char* limit = std::getenv("CLORA_FUZZ_MEMORY_KB");
    const std::string kilobytes = limit ? limit : "4000000";
    return (kilobytes == "0" ? "" : "ulimit -v " + kilobytes + "; ") + "timeout 60 " + train_binary() + " " +
           arguments;
}

Run run_train(const std::string& arguments) { return run_command(train_command(arguments)); }

// Every "loss <number>" of the output, in order: what a pretraining run computed.
std::string losses(const Run& run) {
    static const std::regex loss("loss [-0-9.e+naif]+");
    std::string found;
    for (auto it = std::sregex_iterator(run.output.begin(), run.output.end(), loss); it != std::sregex_iterator(); ++it)
        found += it->str() + "\n";
    return found;
}

// The CRC-32C of a file, "absent" when there is none.
std::string file_digest(const std::string& path) {
    if (!file_exists(path)) return "absent";
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    return std::to_string(crc32c(bytes.data(), bytes.size()));
}

std::vector<uint8_t> sealed(std::vector<uint8_t> bytes) {
    seal_llmc_checksum(bytes);
    return bytes;
}

// One reader's fuzzing: a prepared directory holding every input unmutated, the file(s) to mutate in a fresh copy
// of it, the command that reads them and what counts as its result.
struct FileFuzz {
    std::string format;
    std::string prepared;
    std::vector<std::string> targets;                                      // relative to the copy; one per case
    std::function<Mutation(Draws&, const std::string& target)> mutate;    // of the target's prepared bytes
    std::function<std::string(const std::string& dir)> arguments;          // of `train`, for a copy at dir
    std::function<std::string(const Run&, const std::string& dir)> result;  // what must match the unmutated run
};

Tally run_fuzz(const FileFuzz& f, int cases, uint64_t seed) {
    Tally tally;
    tally.format = f.format;
    const std::string dir = make_temp_dir("fuzz_case") + "/run";
    copy_directory(f.prepared, dir);
    const Run base = run_train(f.arguments(dir));
    INFO(f.format << " unmutated: " << base.output);
    REQUIRE(base.status == 0);
    const std::string baseline = f.result(base, dir);
    Draws random(fuzz_seed(seed));
    for (int i = 0; i < cases; i++) {
        copy_directory(f.prepared, dir);
        const std::string& target = random.pick(f.targets);
        Mutation m = f.mutate(random, target);
        m.description = f.format + " case " + std::to_string(i) + ": " + target + ": " + m.description;
        put_bytes(dir + "/" + target, m.bytes);
        const Run run = run_train(f.arguments(dir));
        const Outcome outcome = classify(run, run.status == 0 || run.status == 1 ? f.result(run, dir) : "", baseline);
        tally.add(m, outcome, run);
    }
    run_command("rm -rf " + quoted(dir));
    return tally;
}

// Mutations of an llm.c-header file: mostly of its sealed bytes, some of the same bytes unsealed (as llm.c writes
// them: the reader's checks alone stand guard).
std::function<Mutation(Draws&, const std::string&)> llmc_mutations(const std::string& prepared,
                                                                      std::vector<int> header_slots) {
    for (int slot : {RUN_ID_SLOT, RUN_ID_SLOT + 1, RUN_STEP_SLOT, RUN_STEP_SLOT + 1, CHECKSUM_TAG_SLOT, CHECKSUM_SLOT})
        header_slots.push_back(slot);
    return [prepared, header_slots](Draws& random, const std::string& target) {
        std::vector<uint8_t> bytes = read_file_bytes(prepared + "/" + target);
        const bool keep_seal = random.chance(0.8);
        if (!keep_seal) {  // the unsealed file: slots 254 and 255 back to 0
            std::memset(bytes.data() + CHECKSUM_TAG_SLOT * 4, 0, 8);
        }
        return mutate_llmc_file(bytes, random, header_slots, keep_seal);
    };
}

std::function<Mutation(Draws&, const std::string&)> text_mutations(const std::string& prepared) {
    return [prepared](Draws& random, const std::string& target) {
        return mutate_text(read_text(prepared + "/" + target), random);
    };
}

void put_text(const std::string& path, const std::string& text) {
    put_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace

// ---- model checkpoint and debug state: train verify ----

TEST_CASE("fuzz: model checkpoints and debug states through train verify", "[fuzz]") {
    const std::string prepared = make_temp_dir("fuzz_verify");
    put_bytes(prepared + "/model.bin", sealed(read_file_bytes("test/fixtures/gpt2_tiny.bin")));
    put_bytes(prepared + "/state.bin", sealed(read_file_bytes("test/fixtures/gpt2_tiny_state.bin")));
    auto arguments = [](const std::string& dir) {
        return "verify --model " + dir + "/model.bin --state " + dir + "/state.bin" + CPU;
    };
    auto verdict = [](const Run& run, const std::string&) { return run.output; };
    FileFuzz checkpoint{"model checkpoint", prepared, {"model.bin"},
                        llmc_mutations(prepared, {0, 1, 2, 3, 4, 5, 6, 7}), arguments, verdict};
    FileFuzz debug_state{"debug state", prepared, {"state.bin"}, llmc_mutations(prepared, {0, 1, 2, 3}), arguments,
                         verdict};
    report(run_fuzz(checkpoint, case_count(30), 1));
    report(run_fuzz(debug_state, case_count(30), 2));
}

// ---- training state and checkpoint: train pretrain --resume ----

TEST_CASE("fuzz: training states and checkpoints through train pretrain --resume", "[fuzz]") {
    const std::string prepared = make_temp_dir("fuzz_pretrain") + "/run";
    const std::string steps = " --steps 4 --checkpoint-every 2 --batch-size 2 --seq-len 16" + CPU;
    const Run run = run_train("pretrain --out " + prepared + steps);
    INFO(run.output);
    REQUIRE(run.status == 0);
    // resume from step 2: the step-4 files go
    REQUIRE(std::remove((prepared + "/model_00000004.bin").c_str()) == 0);
    REQUIRE(std::remove((prepared + "/state_00000004.bin").c_str()) == 0);
    auto arguments = [steps](const std::string& dir) { return "pretrain --resume --out " + dir + steps; };
    auto result = [](const Run& run, const std::string&) { return losses(run); };
    FileFuzz state{"training state", prepared, {"state_00000002.bin"},
                   llmc_mutations(prepared, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), arguments, result};
    FileFuzz checkpoint{"checkpoint (resume)", prepared, {"model_00000002.bin"},
                        llmc_mutations(prepared, {0, 1, 2, 3, 4, 5, 6, 7}), arguments, result};
    report(run_fuzz(state, case_count(30), 3));
    report(run_fuzz(checkpoint, case_count(15), 4));
}

// ---- token shards: train pretrain --train ----

TEST_CASE("fuzz: token shards through train pretrain --train", "[fuzz]") {
    const std::string prepared = make_temp_dir("fuzz_shards");
    make_directories(prepared + "/shards");
    for (int shard = 0; shard < 2; shard++) {  // two shards: the run uses only the first, the loader checks both
        std::vector<uint16_t> tokens;
        for (double x : random_vector<double>(300, 50 + shard, 0, 64)) tokens.push_back(uint16_t(x));
        write_token_shard(prepared + "/shards/train_00" + std::to_string(shard) + ".bin", tokens);
    }
    auto arguments = [](const std::string& dir) {
        return "pretrain --train '" + dir + "/shards/train_*.bin' --model-config 1:16:2:64:16 --batch-size 2 "
               "--seq-len 8 --steps 2 --out " + dir + "/out" + CPU;
    };
    auto result = [](const Run& run, const std::string&) { return losses(run); };
    FileFuzz shards{"token shard", prepared, {"shards/train_000.bin", "shards/train_001.bin"},
                    llmc_mutations(prepared, {0, 1, 2}), arguments, result};
    report(run_fuzz(shards, case_count(30), 5));
}

// ---- adapter files of every method: train cl --resume ----

TEST_CASE("fuzz: the adapter file of every method through train cl --resume", "[fuzz]") {
    uint64_t seed = 60;
    for (const char* method : {"seqlora", "inclora", "replay", "mtl", "ilora", "olora", "nlora", "gainlora-olora",
                               "gainlora-inflora", "amlora"}) {
        const std::string prepared = make_temp_dir("fuzz_cl") + "/run";
        const Run run =
            run_train("cl --method " + std::string(method) + " --stop-after 1 --out " + prepared + SMALL_CL);
        INFO(run.output);
        REQUIRE(run.status == 0);
        const std::string file = std::string(method) + "/adapters_task01.bin";
        REQUIRE(file_exists(prepared + "/" + file));
        auto arguments = [method](const std::string& dir) {
            return "cl --method " + std::string(method) + " --resume --out " + dir + SMALL_CL;
        };
        auto result = [method](const Run&, const std::string& dir) {
            return read_text(dir + "/" + method + "/predictions.jsonl");
        };
        FileFuzz adapters{std::string("adapters ") + method, prepared, {file},
                          llmc_mutations(prepared, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), arguments, result};
        report(run_fuzz(adapters, case_count(8), seed++));
    }
}

// ---- task JSON files: train cl --order DIR,DIR ----

TEST_CASE("fuzz: task files through train cl --order", "[fuzz]") {
    const std::string prepared = make_temp_dir("fuzz_tasks");
    write_tiny_tokenizer(prepared + "/tokenizer");
    const Run base = run_train("pretrain --model-config 1:16:2:263:64 --steps 1 --out " + prepared + "/base" + CPU);
    INFO(base.output);
    REQUIRE(base.status == 0);
    // two tasks: alpha in the prompt/answer format, beta the same with labels.json
    nlohmann::json train = nlohmann::json::array(), test = nlohmann::json::array();
    for (const char* word : {"cab", "abc", "the", "bad", "dab", "ace"}) {
        std::string answer(word);
        std::reverse(answer.begin(), answer.end());
        train.push_back({{"prompt", std::string("flip ") + word + "="}, {"answer", answer}});
    }
    test = {train[0], train[1], train[2]};
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& record : train) labels.push_back(record["answer"]);
    for (const char* task : {"alpha", "beta"}) {
        make_directories(prepared + "/bench/" + task);
        put_text(prepared + "/bench/" + task + "/train.json", train.dump(1));
        put_text(prepared + "/bench/" + task + "/test.json", test.dump(1));
    }
    put_text(prepared + "/bench/beta/labels.json", labels.dump(1));
    auto arguments = [](const std::string& dir) {
        return "cl --method seqlora --order " + dir + "/bench/alpha," + dir + "/bench/beta --base " + dir +
               "/base/model_00000001.bin --tokenizer " + dir + "/tokenizer --epochs 1 --lora-rank 2 --batch-size 4 "
               "--max-new-tokens 4 --log-every 0 --out " + dir + "/out" + CPU;
    };
    auto result = [](const Run&, const std::string& dir) {
        return file_digest(dir + "/out/seqlora/predictions.jsonl");
    };
    const std::vector<std::string> files = {"bench/alpha/train.json", "bench/alpha/test.json", "bench/beta/train.json",
                                            "bench/beta/labels.json"};
    FileFuzz tasks{"task JSON", prepared, files, text_mutations(prepared), arguments, result};
    report(run_fuzz(tasks, case_count(30), 7));

    // a task directory whose name is not UTF-8 (the names go into JSON files): a clean error at load
    const std::string odd = prepared + "/bench/caf\xE9";
    make_directories(odd);
    put_text(odd + "/train.json", train.dump());
    put_text(odd + "/test.json", test.dump());
    const Run named = run_train("cl --method seqlora --order " + quoted(odd) + " --base " + prepared +
                            "/base/model_00000001.bin --tokenizer " + prepared + "/tokenizer --out " + prepared +
                            "/odd_out" + CPU);
    INFO(named.output);
    CHECK(named.status == 1);
    CHECK_THAT(named.output, Catch::Contains("error: ") && Catch::Contains("is not valid UTF-8") &&
                                 Catch::Contains("caf\\xE9"));
}

// ---- Hugging Face model folders: train import-hf ----

// A safetensors file's mutations: its JSON header as text (the 8-byte length prefix rewritten to match), or the file
// as any binary (the prefix probed as header slots 0 and 1).
Mutation mutate_safetensors(const std::vector<uint8_t>& original, Draws& random) {
    uint64_t length = 0;
    std::memcpy(&length, original.data(), sizeof(length));
    if (!random.chance(0.5) || length > original.size() - 8) return mutate_llmc_file(original, random, {0, 1}, false);
    Mutation m = mutate_text(std::string(original.begin() + 8, original.begin() + 8 + length), random);
    const uint64_t new_length = m.bytes.size();
    std::vector<uint8_t> bytes(8);
    std::memcpy(bytes.data(), &new_length, sizeof(new_length));
    bytes.insert(bytes.end(), m.bytes.begin(), m.bytes.end());
    bytes.insert(bytes.end(), original.begin() + 8 + length, original.end());
    m.bytes = bytes;
    m.description = "JSON header: " + m.description;
    return m;
}

TEST_CASE("fuzz: Hugging Face model folders through train import-hf", "[fuzz]") {
    const std::string prepared = make_temp_dir("fuzz_hf");
    copy_directory("test/fixtures/hf/gpt2_tiny", prepared + "/model");
    auto arguments = [](const std::string& dir) { return "import-hf --hf " + dir + "/model --out " + dir + "/out.bin"; };
    auto result = [](const Run&, const std::string& dir) { return file_digest(dir + "/out.bin"); };
    auto mutate = [prepared](Draws& random, const std::string& target) {
        if (target == "model/config.json") return mutate_text(read_text(prepared + "/" + target), random);
        return mutate_safetensors(read_file_bytes(prepared + "/" + target), random);
    };
    FileFuzz folder{"Hugging Face model", prepared, {"model/model.safetensors", "model/config.json"}, mutate, arguments,
                    result};
    report(run_fuzz(folder, case_count(40), 10));
}

// ---- tokenizer files: train tokenize ----

TEST_CASE("fuzz: tokenizer files through train tokenize", "[fuzz]") {
    const std::string prepared = make_temp_dir("fuzz_tokenizer");
    write_tiny_tokenizer(prepared + "/tokenizer");
    std::string story;
    for (int i = 0; i < 20; i++) story += "aaaa the cat ate the hat, " + std::to_string(i) + "  aa\n";
    put_text(prepared + "/story.txt", story);
    auto arguments = [](const std::string& dir) {
        return "tokenize --input " + dir + "/story.txt --out " + dir + "/shards --tokenizer " + dir + "/tokenizer";
    };
    auto result = [](const Run&, const std::string& dir) {
        return file_digest(dir + "/shards/train_000000.bin") + " " + file_digest(dir + "/shards/val_000000.bin");
    };
    FileFuzz tiny{"tokenizer (tiny)", prepared, {"tokenizer/encoder.json", "tokenizer/vocab.bpe"},
                  text_mutations(prepared), arguments, result};
    report(run_fuzz(tiny, case_count(30), 8));

    const std::string shared = shared_data_dir();
    if (shared.empty()) SKIP_TEST("../shared/data/tokenizer/gpt2 is absent: the GPT-2 tokenizer files were not fuzzed");
    const std::string gpt2 = make_temp_dir("fuzz_gpt2_tokenizer");
    copy_directory(shared + "/tokenizer/gpt2", gpt2 + "/tokenizer");
    put_text(gpt2 + "/story.txt", story);
    FileFuzz real{"tokenizer (GPT-2)", gpt2, {"tokenizer/encoder.json", "tokenizer/vocab.bpe"},
                  text_mutations(gpt2), arguments, result};
    report(run_fuzz(real, case_count(6), 9));
}

// ---- the crashes the fuzzing found (issue 24), each once, as a user meets them ----

TEST_CASE("fuzz: the inputs that crashed the readers now end in one clean error", "[fuzz]") {
    const std::string dir = make_temp_dir("fuzz_regressions");
    auto expect_clean_error = [](const Run& run, const std::string& message) {
        INFO(run.output);
        CHECK(run.status == 1);
        CHECK(classify(run, "", "") == Outcome::clean_error);
        CHECK_THAT(run.output, Catch::Contains(message));
    };
    // an adapter file whose header claims more completed tasks than the order has (replay and I-LoRA indexed the
    // tasks with it), or a huge channel count (a signed overflow computing shapes), re-sealed
    for (const char* method : {"replay", "ilora"}) {
        const std::string out = dir + "/" + method;
        const Run first = run_train("cl --method " + std::string(method) + " --stop-after 1 --out " + out + SMALL_CL);
        REQUIRE(first.status == 0);
        const std::string path = out + "/" + method + "/adapters_task01.bin";
        for (const auto& [slot, value, message] : {std::make_tuple(11, 5, "5 tasks completed"),
                                                   std::make_tuple(3, 1 << 30, "channels = 1073741824"),
                                                   std::make_tuple(4, INT32_MAX, "rank")}) {
            std::vector<uint8_t> bytes = read_file_bytes(path), original = bytes;
            std::memcpy(bytes.data() + slot * 4, &value, 4);
            seal_llmc_checksum(bytes);
            put_bytes(path, bytes);
            expect_clean_error(run_train("cl --method " + std::string(method) + " --resume --out " + out + SMALL_CL),
                               message);
            put_bytes(path, original);
        }
    }
    // a task file with a number out of double's range: nlohmann::json throws out_of_range, not parse_error
    write_tiny_tokenizer(dir + "/tokenizer");
    REQUIRE(run_train("pretrain --model-config 1:16:2:263:64 --steps 1 --out " + dir + "/base" + CPU).status == 0);
    make_directories(dir + "/task");
    put_text(dir + "/task/train.json", "[{\"prompt\": \"x=\", \"answer\": 1e999999}]");
    put_text(dir + "/task/test.json", "[]");
    expect_clean_error(run_train("cl --method seqlora --order " + dir + "/task --base " + dir +
                             "/base/model_00000001.bin --tokenizer " + dir + "/tokenizer --out " + dir + "/task_out" +
                             CPU),
                       dir + "/task/train.json: malformed JSON");
    // token shards: one with no tokens; a second shard with an id out of range fails before the first step
    make_directories(dir + "/empty");
    write_token_shard(dir + "/empty/train_000.bin", {});
    const std::string model = " --model-config 1:16:2:64:16 --batch-size 2 --seq-len 8 --steps 1 --out ";
    expect_clean_error(run_train("pretrain --train '" + dir + "/empty/train_*.bin'" + model + dir + "/empty_out" + CPU),
                       dir + "/empty/train_000.bin: no tokens");
    make_directories(dir + "/shards");
    write_token_shard(dir + "/shards/train_000.bin", std::vector<uint16_t>(300, 5));
    std::vector<uint16_t> bad(300, 5);
    bad[250] = 64;
    write_token_shard(dir + "/shards/train_001.bin", bad);
    const Run late = run_train("pretrain --train '" + dir + "/shards/train_*.bin'" + model + dir + "/shards_out" + CPU);
    expect_clean_error(late, dir + "/shards/train_001.bin: token id 64 at position 250");
    CHECK_THAT(late.output, !Catch::Contains("step "));
    // vocab.bpe cut at a line boundary, or only its header: too few merges for the encoder
    const std::string bpe = tiny_tokenizer_files().second;
    const std::string tokenize = "tokenize --input " + dir + "/story.txt --out " + dir + "/tokens --tokenizer " + dir +
                                 "/tokenizer";
    put_text(dir + "/story.txt", "the cat");
    const std::string without_last_merge = bpe.substr(0, bpe.rfind('\n', bpe.size() - 2) + 1);
    for (const std::string& cut : {without_last_merge, std::string("#version: 0.2\n")}) {
        put_text(dir + "/tokenizer/vocab.bpe", cut);
        expect_clean_error(run_train(tokenize), "merges, but");
    }
    // a tokenizer error quoting a line with an escape sequence and invalid UTF-8: escaped, never echoed raw
    put_text(dir + "/tokenizer/vocab.bpe", "#version: 0.2\n\x1B[31m \xFF\n");
    const Run raw = run_train(tokenize);
    expect_clean_error(raw, "\\x1B[31m");
    CHECK(raw.output.find('\x1B') == std::string::npos);
    CHECK(raw.output.find('\xFF') == std::string::npos);
}
