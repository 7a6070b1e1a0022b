// Hugging Face in and out: `train import-hf`, `export-hf` and `export-peft` against what transformers and PEFT
// themselves write (test/fixtures/hf/, dev/hf_reference.py), and every refusal.
#include <filesystem>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/json_file.h"
#include "data/safetensors.h"
#include "lora/adapter_file.h"
#include "model/lora_adapters.h"
#include "lora/hf_adapters.h"
#include "model/backend_cpu.h"
#include "model/checkpoint.h"
#include "model/debug_state.h"
#include "model/gpt2.h"
#include "model/hf_gpt2.h"
#include "test/peft_fixture.h"
#include "test/run_command.h"
#include "test/test_support.h"

using nlohmann::json;
namespace filesystem = std::filesystem;

namespace {
const std::string MODEL = "test/fixtures/gpt2_tiny.bin";
const std::string STATE = "test/fixtures/gpt2_tiny_state.bin";
const std::string HF_TINY = "test/fixtures/hf/gpt2_tiny";
const std::string HF_TINY_FP16 = "test/fixtures/hf/gpt2_tiny_fp16.safetensors";
const std::string PEFT_TINY = "test/fixtures/hf/peft_tiny";
const std::string PEFT_LOGITS = "test/fixtures/hf/peft_tiny_logits.safetensors";
const std::string MERGED_TINY = "test/fixtures/hf/merged_tiny";

Run run_train(const std::string& arguments) { return run_command(train_binary() + " " + arguments); }

// A copy of the fixture's HF folder to alter.
std::string copy_of_hf_tiny(const std::string& name) {
    const std::string dir = make_temp_dir(name) + "/model";
    filesystem::copy(HF_TINY, dir, filesystem::copy_options::recursive);
    return dir;
}

void write_text(const std::string& path, const std::string& text) {
    AtomicFileWriter writer(path);
    writer.write(text.data(), text.size());
    writer.commit();
}

void set_config_field(const std::string& dir, const std::string& key, const json& value) {
    json config = parse_json_file(dir + "/config.json");
    config[key] = value;
    write_text(dir + "/config.json", config.dump(2));
}

// Same names and shapes, and values equal bit for bit (max_difference 0) or within max_difference.
void check_same_tensors(const SafeTensors& ours, const SafeTensors& theirs, double max_difference = 0) {
    std::vector<std::string> our_names, their_names;
    for (const auto& entry : ours.tensors) our_names.push_back(entry.first);
    for (const auto& entry : theirs.tensors) their_names.push_back(entry.first);
    REQUIRE(our_names == their_names);
    for (const auto& [name, tensor] : theirs.tensors) {
        INFO(name);
        const SafeTensor& mine = ours.tensors.at(name);
        CHECK(mine.shape == tensor.shape);
        REQUIRE(mine.values.size() == tensor.values.size());
        double largest = 0;
        for (size_t i = 0; i < tensor.values.size(); i++)
            largest = std::max(largest, std::fabs(double(mine.values[i]) - double(tensor.values[i])));
        CHECK(largest <= max_difference);
    }
}

// The PEFT fixture's adapters (peft_lora.txt) as a clora adapter file, `branches` copies of the branch with
// branch b scaled by (b + 1).
AdapterFile peft_fixture_adapter_file(const GPT2Config& config, int branches = 1) {
    auto values = read_key_values(PEFT_LORA);
    AdapterFile file;
    file.num_layers = config.num_layers;
    file.channels = config.channels;
    file.config = peft_fixture_config(values);
    file.branches = branches;
    std::vector<LoraSlot> one, all;
    const size_t one_count = lora_layout(file.config, config, 1, one);
    const std::vector<float> single = peft_fixture_parameters(values, one, one_count, file.config.rank);
    std::vector<float> lora(lora_layout(file.config, config, branches, all));
    const size_t r = size_t(file.config.rank);
    for (size_t s = 0; s < all.size(); s++)
        for (int b = 0; b < branches; b++) {
            const size_t in = size_t(all[s].shape.in), out = size_t(all[s].shape.out);
            for (size_t i = 0; i < r * in; i++) lora[all[s].A + b * r * in + i] = single[one[s].A + i] * float(b + 1);
            for (size_t i = 0; i < r * out; i++) lora[all[s].Bt + b * r * out + i] = single[one[s].Bt + i];
        }
    file.set("lora", lora);
    return file;
}

std::string write_adapter_fixture(const std::string& dir, AdapterFile file) {
    const std::string path = dir + "/adapters_task01.bin";
    file.tasks_completed = 1;
    write_adapter_file(path, file);
    return path;
}

// PEFT's adapter folder read back into clora's layout (one branch of rank r): lora_A is A, lora_B^T is Bt.
std::vector<float> read_peft_folder(const std::string& dir, const LoraConfig& config, const GPT2Config& model) {
    const SafeTensors file = read_safetensors(dir + "/adapter_model.safetensors");
    const char* names[NUM_LORA_MODULES] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
    std::vector<LoraSlot> slots;
    std::vector<float> values(lora_layout(config, model, 1, slots));
    const size_t r = size_t(config.rank);
    for (const LoraSlot& s : slots) {
        const std::string prefix = "base_model.model.transformer.h." + std::to_string(s.layer) + "." + names[s.module];
        const std::vector<float>& A = file.tensors.at(prefix + ".lora_A.weight").values;
        const std::vector<float>& B = file.tensors.at(prefix + ".lora_B.weight").values;  // (out, r)
        std::copy(A.begin(), A.end(), values.begin() + s.A);
        for (size_t k = 0; k < r; k++)
            for (size_t o = 0; o < size_t(s.shape.out); o++) values[s.Bt + k * s.shape.out + o] = B[o * r + k];
    }
    return values;
}
}  // namespace

TEST_CASE("hf: half and bfloat16 widen to fp32 exactly") {
    CHECK(half_to_float(0x3C00) == 1.0f);
    CHECK(half_to_float(0xC000) == -2.0f);
    CHECK(half_to_float(0x7BFF) == 65504.0f);                 // the largest half
    CHECK(half_to_float(0x0400) == std::ldexp(1.0f, -14));   // the smallest normal
    CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));   // the smallest subnormal
    CHECK(half_to_float(0x03FF) == std::ldexp(1023.0f, -24));
    CHECK(std::isinf(half_to_float(0x7C00)));
    CHECK(std::isnan(half_to_float(0x7E00)));
    CHECK(std::signbit(half_to_float(0x8000)));
    CHECK(bfloat16_to_float(0x3F80) == 1.0f);
    CHECK(bfloat16_to_float(0xC0A0) == -5.0f);
}

TEST_CASE("hf: transformers' save of the tiny GPT-2 imports to the very parameters it was made from") {
    const HfModel model = read_hf_gpt2(HF_TINY);
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    CHECK(describe_config(model.config) == describe_config(checkpoint.config));
    CHECK(bit_identical(model.parameters, checkpoint.parameters));
}

TEST_CASE("hf: import-hf then verify gives PyTorch's logits, loss and gradients") {
    const std::string dir = make_temp_dir("hf_import_verify");
    Run run = run_train("import-hf --hf " + HF_TINY + " --out " + dir + "/tiny.bin");
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("L=2 C=36 NH=4 V=67"));
    run = run_train("verify --model " + dir + "/tiny.bin --state " + STATE + " --device cpu --tolerance 1e-5");
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("all within tolerance"));
}

TEST_CASE("hf: fp16 and bf16 tensors, names without transformer., a tied lm_head, old buffers and shards import") {
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    SECTION("fp16: each value the fp32 one rounded to half precision") {
        const std::string dir = copy_of_hf_tiny("hf_fp16");
        filesystem::copy_file(HF_TINY_FP16, dir + "/model.safetensors", filesystem::copy_options::overwrite_existing);
        const HfModel model = read_hf_gpt2(dir);
        REQUIRE(model.parameters.size() == checkpoint.parameters.size());
        double largest = 0;
        for (size_t i = 0; i < model.parameters.size(); i++)
            largest = std::max(largest, std::fabs(double(model.parameters[i]) - checkpoint.parameters[i]) /
                                            std::max(1e-3, std::fabs(double(checkpoint.parameters[i]))));
        CHECK(largest > 0);         // it is the half file
        CHECK(largest < 1.0 / 1024);  // within half precision's rounding
    }
    SECTION("bf16, bare names, lm_head equal to wte, mask buffers, two shards and an index") {
        const std::string dir = copy_of_hf_tiny("hf_shards");
        SafeTensors file = read_safetensors(dir + "/model.safetensors");
        filesystem::remove(dir + "/model.safetensors");
        SafeTensors first, second;
        json weight_map = json::object();
        bool alternate = false;
        std::vector<float> expected = checkpoint.parameters;
        for (auto& [name, tensor] : file.tensors) {
            for (float& value : tensor.values) value = bfloat16_to_float(float_to_bf16(value));
            const std::string bare = name.substr(std::string("transformer.").size());
            (alternate ? first : second).tensors[bare] = tensor;
            weight_map[bare] = alternate ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
            alternate = !alternate;
        }
        for (float& value : expected) value = bfloat16_to_float(float_to_bf16(value));
        first.tensors["lm_head.weight"] = file.tensors.at("transformer.wte.weight");
        weight_map["lm_head.weight"] = "model-00001-of-00002.safetensors";
        first.tensors["h.0.attn.bias"] = SafeTensor{"F32", {1, 1, 2, 2}, {1, 0, 1, 1}};
        weight_map["h.0.attn.bias"] = "model-00001-of-00002.safetensors";
        write_safetensors(dir + "/model-00001-of-00002.safetensors", first);
        write_safetensors(dir + "/model-00002-of-00002.safetensors", second);
        write_text(dir + "/model.safetensors.index.json", json{{"metadata", json::object()}, {"weight_map", weight_map}}.dump());
        const HfModel model = read_hf_gpt2(dir);
        CHECK(bit_identical(model.parameters, expected));
        REQUIRE(model.notes.size() == 2);
        CHECK_THAT(model.notes[0], Catch::Contains("tied"));
        CHECK_THAT(model.notes[1], Catch::Contains("1 attention mask buffers ignored"));
    }
}

TEST_CASE("hf: import-hf refuses what clora cannot represent, naming it, and writes nothing") {
    struct Case {
        const char* what;
        std::function<void(const std::string&)> alter;
        const char* message;
    };
    const auto truncate = [](const std::string& dir) {
        filesystem::resize_file(dir + "/model.safetensors", filesystem::file_size(dir + "/model.safetensors") - 10);
    };
    const auto header_past_end = [](const std::string& dir) {
        std::vector<uint8_t> bytes = read_file_bytes(dir + "/model.safetensors");
        const uint64_t length = bytes.size() + 100;
        std::memcpy(bytes.data(), &length, sizeof(length));
        AtomicFileWriter writer(dir + "/model.safetensors");
        writer.write(bytes.data(), bytes.size());
        writer.commit();
    };
    const auto edit_tensors = [](const std::string& dir, const std::function<void(SafeTensors&)>& edit) {
        SafeTensors file = read_safetensors(dir + "/model.safetensors");
        edit(file);
        write_safetensors(dir + "/model.safetensors", file);
    };
    const std::vector<Case> cases = {
        {"activation", [](const std::string& d) { set_config_field(d, "activation_function", "relu"); },
         "\"activation_function\" is \"relu\""},
        {"inverse layer scaling", [](const std::string& d) { set_config_field(d, "scale_attn_by_inverse_layer_idx", true); },
         "\"scale_attn_by_inverse_layer_idx\" is true"},
        {"reorder and upcast", [](const std::string& d) { set_config_field(d, "reorder_and_upcast_attn", true); },
         "\"reorder_and_upcast_attn\" is true"},
        {"untied head",
         [&](const std::string& d) {
             edit_tensors(d, [](SafeTensors& f) {
                 SafeTensor head = f.tensors.at("transformer.wte.weight");
                 head.values[5] += 0.5f;
                 f.tensors["lm_head.weight"] = head;
             });
         },
         "lm_head.weight differs from wte.weight"},
        {"missing tensor",
         [&](const std::string& d) { edit_tensors(d, [](SafeTensors& f) { f.tensors.erase("transformer.h.1.ln_2.bias"); }); },
         "tensor h.1.ln_2.bias is missing"},
        {"unexpected tensor",
         [&](const std::string& d) {
             edit_tensors(d, [](SafeTensors& f) { f.tensors["transformer.h.0.crossattention.q_attn.weight"] = SafeTensor{"F32", {1}, {0}}; });
         },
         "unexpected tensor h.0.crossattention.q_attn.weight"},
        {"integer weights",
         [](const std::string& d) {
             std::vector<uint8_t> bytes = read_file_bytes(d + "/model.safetensors");
             std::string text(bytes.begin(), bytes.end());
             const std::string entry = "\"transformer.wpe.weight\":{\"dtype\":\"F32\"";
             const size_t at = text.find(entry);
             REQUIRE(at != std::string::npos);
             bytes[at + entry.size() - 4] = 'I';  // F32 -> I32: the same bytes, read as integers
             AtomicFileWriter writer(d + "/model.safetensors");
             writer.write(bytes.data(), bytes.size());
             writer.commit();
         },
         "tensor wpe.weight is I32: clora reads F32, F16 and BF16 weights"},
        {"shape against config", [](const std::string& d) { set_config_field(d, "n_positions", 32); },
         "tensor wpe.weight has shape (16, 36), the config gives (32, 36)"},
        {"truncated file", truncate, "fall outside the file's"},
        {"trailing bytes",
         [](const std::string& d) {
             std::vector<uint8_t> bytes = read_file_bytes(d + "/model.safetensors");
             bytes.resize(bytes.size() + 4, 0);
             AtomicFileWriter writer(d + "/model.safetensors");
             writer.write(bytes.data(), bytes.size());
             writer.commit();
         },
         "4 unexpected trailing bytes"},
        {"header past the end", header_past_end, "runs past the file's end"},
        {"no config", [](const std::string& d) { filesystem::remove(d + "/config.json"); }, "config.json: missing file"},
    };
    for (const Case& c : cases) {
        SECTION(c.what) {
            const std::string dir = copy_of_hf_tiny("hf_refuse");
            c.alter(dir);
            const std::string out = dir + "/../imported.bin";
            const Run run = run_train("import-hf --hf " + dir + " --out " + out);
            INFO(run.output);
            CHECK(run.status == 1);
            CHECK_THAT(run.output, Catch::Contains(c.message));
            CHECK(!file_exists(out));
        }
    }
}

TEST_CASE("hf: export-hf writes what transformers itself saves, and import-hf reads it back bit for bit") {
    const std::string dir = make_temp_dir("hf_export") + "/out";
    const Run run = run_train("export-hf --model " + MODEL + " --out " + dir);
    INFO(run.output);
    REQUIRE(run.status == 0);
    check_same_tensors(read_safetensors(dir + "/model.safetensors"), read_safetensors(HF_TINY + "/model.safetensors"));
    const json ours = parse_json_file(dir + "/config.json"), theirs = parse_json_file(HF_TINY + "/config.json");
    for (const char* key : {"model_type", "architectures", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head",
                            "n_inner", "activation_function", "layer_norm_epsilon", "scale_attn_weights",
                            "tie_word_embeddings", "bos_token_id", "eos_token_id"}) {
        INFO(key);
        CHECK(ours.at(key) == theirs.at(key));
    }
    CHECK(bit_identical(read_hf_gpt2(dir).parameters, read_checkpoint(MODEL).parameters));
}

TEST_CASE("hf: export-peft writes what PEFT itself saves, whose forward clora's matches") {
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    const std::string dir = make_temp_dir("hf_peft");
    const std::string adapters = write_adapter_fixture(dir, peft_fixture_adapter_file(checkpoint.config));
    const Run run = run_train("export-peft --adapters " + adapters + " --out " + dir + "/peft");
    INFO(run.output);
    REQUIRE(run.status == 0);
    check_same_tensors(read_safetensors(dir + "/peft/adapter_model.safetensors"),
                       read_safetensors(PEFT_TINY + "/adapter_model.safetensors"));
    const json ours = parse_json_file(dir + "/peft/adapter_config.json");
    const json theirs = parse_json_file(PEFT_TINY + "/adapter_config.json");
    for (const char* key : {"peft_type", "task_type", "r", "lora_alpha", "fan_in_fan_out", "bias", "use_rslora"}) {
        INFO(key);
        CHECK(ours.at(key) == theirs.at(key));
    }
    CHECK(ours.at("target_modules").get<std::set<std::string>>() == theirs.at("target_modules").get<std::set<std::string>>());

    // clora's logits with the adapters read back from the export, against PEFT's forward
    const LoraConfig config = peft_fixture_config(read_key_values(PEFT_LORA));
    const DebugState state = read_debug_state(STATE, checkpoint.config);
    GPT2<CpuBackend<float>> model(checkpoint.config, checkpoint.parameters.data());
    LoraAdapters<CpuBackend<float>> lora(checkpoint.config, config);
    lora_add_branch(lora, 1);
    lora.parameters_from_host(read_peft_folder(dir + "/peft", config, checkpoint.config));
    model.lora = &lora;
    model.frozen_base = true;
    gpt2_forward(model, state.inputs.data(), nullptr, nullptr, state.batch_size, state.seq_len);
    const SafeTensors peft_logits = read_safetensors(PEFT_LOGITS);
    const SafeTensor& expected = peft_logits.tensors.at("logits");  // (B, T, V)
    const int V = checkpoint.config.vocab_size, Vp = checkpoint.config.padded_vocab_size;
    REQUIRE(expected.values.size() == state.inputs.size() * size_t(V));
    std::vector<float> ours_logits;
    for (size_t row = 0; row < state.inputs.size(); row++)
        ours_logits.insert(ours_logits.end(), model.acts.logits + row * Vp, model.acts.logits + row * Vp + V);
    CHECK(relative_error(ours_logits, expected.values) < 1e-5);
}

TEST_CASE("hf: export-hf --merge equals PEFT's merge_and_unload") {
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    const std::string dir = make_temp_dir("hf_merge");
    const std::string adapters = write_adapter_fixture(dir, peft_fixture_adapter_file(checkpoint.config));
    const Run run = run_train("export-hf --model " + MODEL + " --adapters " + adapters + " --merge --out " + dir + "/merged");
    INFO(run.output);
    REQUIRE(run.status == 0);
    const SafeTensors ours = read_safetensors(dir + "/merged/model.safetensors");
    check_same_tensors(ours, read_safetensors(MERGED_TINY + "/model.safetensors"), 1e-6);
    // the check can fail: the merge changed the weights
    const SafeTensors base = read_safetensors(HF_TINY + "/model.safetensors");
    CHECK(ours.tensors.at("transformer.h.1.mlp.c_proj.weight").values !=
          base.tensors.at("transformer.h.1.mlp.c_proj.weight").values);
}

TEST_CASE("hf: several branches export as their sum (rank x branches) and as one adapter per branch") {
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    const std::string dir = make_temp_dir("hf_branches");
    const AdapterFile two = peft_fixture_adapter_file(checkpoint.config, 2);
    const FixedAdapters adapters = fixed_adapters(two, false);
    const std::vector<std::string> folders = write_peft_adapters(dir + "/peft", adapters);
    REQUIRE(folders == std::vector<std::string>{dir + "/peft", dir + "/peft/task1", dir + "/peft/task2"});
    const json root = parse_json_file(dir + "/peft/adapter_config.json"), one = parse_json_file(dir + "/peft/task2/adapter_config.json");
    CHECK(root.at("r") == 2 * two.config.rank);
    CHECK(root.at("lora_alpha") == 2 * two.config.alpha);  // the same scale alpha / r
    CHECK(one.at("r") == two.config.rank);
    CHECK(one.at("lora_alpha") == two.config.alpha);

    // merging the root's rank-2r adapter = merging task1's and task2's one after the other = merging the file
    auto merged = [&](const std::vector<std::string>& parts) {
        std::vector<float> parameters = checkpoint.parameters;
        for (const std::string& part : parts) {
            FixedAdapters single = adapters;
            single.branches = 1;
            single.values = read_peft_folder(part, two.config, checkpoint.config);
            merge_adapters(parameters, checkpoint.config, single);
        }
        return parameters;
    };
    std::vector<float> whole = checkpoint.parameters;
    merge_adapters(whole, checkpoint.config, adapters);
    const std::vector<float> by_branch = merged({dir + "/peft/task1", dir + "/peft/task2"});
    CHECK(relative_error(by_branch, whole) < 1e-6);
    CHECK(relative_error(merged({dir + "/peft/task1"}), whole) > 1e-3);  // the second branch counts
    const SafeTensors root_tensors = read_safetensors(dir + "/peft/adapter_model.safetensors");
    CHECK(root_tensors.tensors.at("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape ==
          std::vector<int64_t>{2 * two.config.rank, checkpoint.config.channels});
}

TEST_CASE("hf: methods whose update depends on the input are refused by export-peft and export-hf --merge") {
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    for (const char* tensor : {"gainlora/gates", "amlora/attention"}) {
        SECTION(tensor) {
            const std::string dir = make_temp_dir("hf_refuse_method");
            AdapterFile file = peft_fixture_adapter_file(checkpoint.config);
            file.set(tensor, {1, 2, 3});
            const std::string adapters = write_adapter_fixture(dir, file);
            const std::string method = std::string(tensor) == "gainlora/gates" ? "GainLoRA" : "AM-LoRA";
            Run run = run_train("export-peft --adapters " + adapters + " --out " + dir + "/peft");
            INFO(run.output);
            CHECK(run.status == 1);
            CHECK_THAT(run.output, Catch::Contains(method) && Catch::Contains("depends on the input"));
            CHECK(!file_exists(dir + "/peft"));
            run = run_train("export-hf --model " + MODEL + " --adapters " + adapters + " --merge --out " + dir + "/hf");
            INFO(run.output);
            CHECK(run.status == 1);
            CHECK_THAT(run.output, Catch::Contains(method));
            CHECK(!file_exists(dir + "/hf"));
        }
    }
}

TEST_CASE("hf: I-LoRA exports its slow adapter unless asked for the fast one") {
    const Checkpoint checkpoint = read_checkpoint(MODEL);
    AdapterFile file = peft_fixture_adapter_file(checkpoint.config);
    std::vector<float> slow = file.tensor("lora");
    for (float& value : slow) value *= 0.5f;
    file.set("ilora/slow", slow);
    CHECK(fixed_adapters(file, false).values == slow);
    CHECK(fixed_adapters(file, false).source == "ilora/slow");
    CHECK(fixed_adapters(file, true).values == file.tensor("lora"));
}

TEST_CASE("hf: transformers and PEFT load the exports and compute clora's loss and logits") {
    const char* peer = std::getenv("PEER_PYTHON");
    const std::string python = peer && *peer ? peer : "python3";
    if (run_command(python + " -c 'import torch, transformers, peft, safetensors'").status != 0)
        SKIP_TEST(python + " cannot import torch, transformers, peft and safetensors (set PEER_PYTHON to one that can)");
    const std::string dir = make_temp_dir("hf_roundtrip");
    const Run run = run_command(python + " dev/hf_roundtrip.py --train " + train_binary() + " --work " + dir +
                                " --config 3:48:6:50257:64");
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("import-hf: loss matches") && Catch::Contains("export-peft: logits match") &&
                               Catch::Contains("export-hf --merge: logits match"));
}

TEST_CASE("hf: the synthetic train cl writes its base, so its adapters export to transformers and PEFT") {
    const std::string dir = make_temp_dir("hf_synthetic");
    Run run = run_train("cl --method inclora --synthetic-tasks 2 --epochs 1 --device cpu --out " + dir + "/cl");
    INFO(run.output);
    REQUIRE(run.status == 0);
    REQUIRE(file_exists(dir + "/cl/base.bin"));
    run = run_train("export-hf --model " + dir + "/cl/base.bin --adapters " + dir +
                    "/cl/inclora/adapters_task02.bin --merge --out " + dir + "/hf");
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("2 branches of lora"));
    CHECK(read_hf_gpt2(dir + "/hf").config.vocab_size == read_checkpoint(dir + "/cl/base.bin").config.vocab_size);
    run = run_train("export-peft --adapters " + dir + "/cl/inclora/adapters_task02.bin --out " + dir + "/peft");
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK(file_exists(dir + "/peft/task2/adapter_model.safetensors"));
}
