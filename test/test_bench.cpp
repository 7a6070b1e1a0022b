// The peer benchmark's clora side (dev/bench/train_step.cpp, built by `make test` and `make lab`), run as
// dev/bench/peer.py runs it, on the CPU with a tiny model: every mode prints one JSON line with consistent numbers,
// and the stacked-branch mode really builds the branches it is asked for, all frozen but the last. The PyTorch side
// (dev/bench/pytorch_step.py, when a Python with torch, transformers and peft is at hand) trains the same shapes and
// the same number of LoRA parameters. On a GPU: the device memory counters (model/cuda/memory.cu), the cuBLAS peak
// (model/cuda/gemm_peak.cu) and train_step's memory numbers (the measured peak holds at least the weights and the
// planned activations).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/file_io.h"
#include "model/cuda/gemm_peak.h"
#include "model/cuda/memory_use.h"
#include "model/gpt2.h"
#include "test/cuda_test_support.h"
#include "test/json_files.h"
#include "test/run_command.h"
#include "test/test_support.h"

namespace {

const std::string TRAIN_STEP = std::string(CLORA_BUILD_DIR) + "/bench/train_step";
const char* TINY = " --device cpu --model-config 2:64:2:256:64 --batch 2 --seq 32 --steps 2 --warmup 1";

Run run_train_step(const std::string& arguments) {
    REQUIRE(file_exists(TRAIN_STEP));  // `make test` builds it
    return run_command(std::string(TRAIN_STEP) + " " + arguments);
}

// The run's output must be exactly one JSON object line.
nlohmann::json json_line(const Run& run) {
    INFO(run.output);
    REQUIRE(run.status == 0);
    REQUIRE(!run.output.empty());
    REQUIRE(run.output.back() == '\n');
    REQUIRE(run.output.find('\n') == run.output.size() - 1);
    return nlohmann::json::parse(run.output);
}

// LoRA r = 8 on qkv of the tiny model: per layer r (C + 3C) = 8 * 256, two layers.
const size_t TINY_QKV_LORA_PARAMETERS = 2 * 8 * (64 + 3 * 64);

void check_step_numbers(const nlohmann::json& line) {
    INFO(line.dump());
    CHECK(line.at("program") == "clora");
    CHECK(line.at("device") == "cpu");
    CHECK(line.at("batch") == 2);
    CHECK(line.at("seq") == 32);
    CHECK(line.at("steps") == 2);
    const double ms = line.at("ms_per_step"), tokens_per_second = line.at("tokens_per_second");
    CHECK(ms > 0);
    CHECK(line.at("ms_median").get<double>() > 0);
    CHECK(line.at("ms_min").get<double>() <= ms * 1.0001);
    CHECK(tokens_per_second == Approx(2 * 32 / (ms / 1000)).epsilon(1e-3));
    // random targets over V = 256 tokens: the cross-entropy starts near ln 256 = 5.5 (plus a method's own loss)
    CHECK(std::isfinite(line.at("first_loss").get<double>()));
    CHECK(line.at("first_loss").get<double>() > 4.0);
    CHECK(std::isfinite(line.at("last_loss").get<double>()));
    CHECK(line.at("parameters") == 120576);  // 2:64:2:256:64 in llm.c's layout (V padded to 256)
    CHECK(line.at("peak_bytes").is_null());  // the CPU has no device memory counters
}

}  // namespace

TEST_CASE("bench: train_step --mode full trains every parameter and prints one JSON line") {
    const nlohmann::json line = json_line(run_train_step(std::string("--mode full") + TINY));
    check_step_numbers(line);
    CHECK(line.at("mode") == "full");
    CHECK(line.at("branches") == 0);
    CHECK(line.at("trained_parameters") == line.at("parameters"));
    CHECK(line.at("last_loss").get<double>() < line.at("first_loss").get<double>());  // AdamW moved the weights
    CHECK(line.at("logits_chunk_rows") == TRAINING_LOGITS_CHUNK_ROWS);  // as the training commands
}

TEST_CASE("bench: train_step --mode lora trains one qkv branch of r 8 on a frozen base") {
    const nlohmann::json line = json_line(run_train_step(std::string("--mode lora") + TINY));
    check_step_numbers(line);
    CHECK(line.at("mode") == "lora");
    CHECK(line.at("branches") == 1);
    CHECK(line.at("trainable_branches") == 1);
    CHECK(line.at("lora_modules") == "qkv");
    CHECK(line.at("lora_alpha") == 32);
    CHECK(line.at("lora_dropout").get<double>() == Approx(0.1));
    CHECK(line.at("trained_parameters") == TINY_QKV_LORA_PARAMETERS);
    CHECK(line.at("bf16_base") == false);  // the CPU computes in fp32: no bf16 storage
    // the frozen base keeps ln2 and fch_gelu for one layer, not two: 5 (B,T,C) fewer floats than full training
    const nlohmann::json full = json_line(run_train_step(std::string("--mode full") + TINY));
    CHECK(full.at("activation_bytes").get<double>() - line.at("activation_bytes").get<double>() ==
          5.0 * 2 * 32 * 64 * 4);
}

TEST_CASE("bench: train_step --mode branches builds 15 branches, 14 frozen, with GainLoRA and with AM-LoRA") {
    for (const char* method : {"gainlora", "amlora", "inclora"}) {
        INFO(method);
        const nlohmann::json line =
            json_line(run_train_step(std::string("--mode branches --branches 15 --method ") + method + TINY));
        check_step_numbers(line);
        CHECK(line.at("mode") == "branches");
        CHECK(line.at("method") == (std::string(method) == "gainlora" ? "gainlora-olora" : method));
        CHECK(line.at("branches") == 15);
        CHECK(line.at("trainable_branches") == 1);
        CHECK(line.at("trained_parameters") == TINY_QKV_LORA_PARAMETERS);  // the last branch's rows only
    }
    // the one-branch comparison of the same method
    const nlohmann::json one = json_line(run_train_step(std::string("--mode branches --branches 1 --method amlora") + TINY));
    CHECK(one.at("branches") == 1);
    CHECK(one.at("trainable_branches") == 1);
}

TEST_CASE("bench: peer.py --device cpu --tiny runs every clora row and writes the table (PyTorch skipped)") {
    if (run_command("python3 --version").status != 0) SKIP_TEST("python3 is not installed");
    const std::string out = make_temp_dir("peer") + "/peer.json";
    // the stacked-branch rows are CUDA's default; on the CPU they are asked for
    const Run run = run_command("python3 dev/bench/peer.py --device cpu --tiny --branches 15 --threads 2 --skip-pytorch "
                                "--out " + out);
    INFO(run.output);
    REQUIRE(run.status == 0);
    const nlohmann::json report = read_json(out);
    CHECK(report.at("pytorch_skipped") == "--skip-pytorch");
    std::vector<std::string> keys;
    for (const nlohmann::json& row : report.at("table")) {
        INFO(row.dump());
        CHECK(row.at("error").is_null());  // e.g. a flag train_step refuses on the CPU
        CHECK(row.at("tokens_per_second").get<double>() > 0);
        CHECK(row.at("activation_bytes").get<double>() > 0);
        CHECK(row.at("threads") == 2);  // --threads reaches train_step
        keys.push_back(row.at("key"));
    }
    for (const char* key : {"lora", "full"}) CHECK(std::count(keys.begin(), keys.end(), key) == 1);
    CHECK(keys.size() == 8);  // LoRA, full, and three methods with 1 and 15 branches (the bf16-base row is CUDA's)
}

TEST_CASE("bench: pytorch_step.py trains PEFT's LoRA with clora's trained-parameter count, eager and compiled") {
    // PEER_PYTHON: a Python with torch, transformers and peft, as dev/gpu_check.sh takes it (default python3)
    const char* peer = std::getenv("PEER_PYTHON");
    const std::string python = peer && *peer ? peer : "python3";
    if (run_command(python + " -c 'import torch, transformers, peft'").status != 0)
        SKIP_TEST(python + " cannot import torch, transformers and peft (set PEER_PYTHON to one that can)");
    const Run run = run_command(python + " dev/bench/pytorch_step.py --device cpu --tiny --batches 2 --steps 1 "
                                         "--warmup 1 2>/dev/null");
    INFO(run.output);
    REQUIRE(run.status == 0);
    std::vector<nlohmann::json> lines;
    std::istringstream stream(run.output);
    for (std::string text; std::getline(stream, text);)
        if (!text.empty() && text[0] == '{') lines.push_back(nlohmann::json::parse(text));
    REQUIRE(lines.size() == 4);  // lora and full, eager and compiled
    const nlohmann::json clora = json_line(run_train_step(std::string("--mode lora") + TINY));
    for (const nlohmann::json& line : lines) {
        INFO(line.dump());
        CHECK(line.at("tokens_per_second").get<double>() > 0);
        CHECK(line.at("parameters") == clora.at("parameters"));  // the same GPT-2 shape on both sides
        const bool lora = line.at("mode") == "lora";
        CHECK(line.at("trained_parameters") == (lora ? clora.at("trained_parameters") : clora.at("parameters")));
        CHECK(line.at("first_loss").get<double>() > 4.0);  // about ln 256 at random weights
    }
}

TEST_CASE("bench: train_step --mode gemm reports itself skipped without a GPU; bad flags fail with one line") {
    const nlohmann::json gemm = json_line(run_train_step("--mode gemm --device cpu"));
    CHECK(gemm.at("mode") == "gemm");
    CHECK_THAT(gemm.at("skipped").get<std::string>(), Catch::Contains("no GPU"));

    for (const char* bad : {"--mode sideways --device cpu", "--batch 0 --device cpu", "--steps", "--bogus 1",
                            "--bf16-base maybe --device cpu"}) {
        const Run run = run_train_step(bad);
        INFO(bad << ": " << run.output);
        CHECK(run.status == 1);
        CHECK_THAT(run.output, Catch::Contains("error"));
    }
}

GPU_TEST_CASE("cuda kernels: the device memory counters follow every allocation and free; the peak resets to current") {
    const cuda::DeviceMemoryUse before = cuda::device_memory_use();
    void* a = cuda::device_allocate(3 << 20);
    void* b = cuda::device_allocate(5 << 20);
    CHECK(cuda::device_memory_use().current == before.current + (8 << 20));
    CHECK(cuda::device_memory_use().peak >= before.current + (8 << 20));
    cuda::device_free(b);
    CHECK(cuda::device_memory_use().current == before.current + (3 << 20));
    CHECK(cuda::device_memory_use().peak >= before.current + (8 << 20));  // the peak stays
    cuda::reset_device_memory_peak();
    CHECK(cuda::device_memory_use().peak == cuda::device_memory_use().current);
    cuda::device_free(a);
    CHECK(cuda::device_memory_use().current == before.current);
    CHECK(cuda::device_memory_used() > 0);
}

GPU_TEST_CASE("cuda kernels: the cuBLAS peak is positive, bf16 tensor cores beat plain fp32") {
    const double bf16 = cuda::gemm_tflops(cuda::GemmPrecision::bf16, 2048, 5);
    const double tf32 = cuda::gemm_tflops(cuda::GemmPrecision::tf32, 2048, 5);
    const double fp32 = cuda::gemm_tflops(cuda::GemmPrecision::fp32, 2048, 5);
    INFO("bf16 " << bf16 << " tf32 " << tf32 << " fp32 " << fp32 << " TFLOP/s");
    CHECK(fp32 > 0.1);
    CHECK(bf16 > fp32);
    CHECK(tf32 > 0.1);
}

GPU_TEST_CASE("cuda model: train_step on the GPU counts at least the weights and their AdamW state as peak memory") {
    const char* shape = " --device cuda --model-config 2:64:2:256:64 --batch 2 --seq 32 --steps 2 --warmup 1";
    const nlohmann::json full = json_line(run_train_step(std::string("--mode full") + shape));
    INFO(full.dump());
    const double weights = 4.0 * full.at("parameters").get<double>();
    // parameters, gradients and the two AdamW moments, in fp32 at the least
    CHECK(full.at("peak_bytes").get<double>() >= 4 * weights);
    CHECK(full.at("device_used_bytes").get<double>() >= full.at("peak_bytes").get<double>());
    const nlohmann::json lora = json_line(run_train_step(std::string("--mode lora") + shape));
    CHECK(lora.at("peak_bytes").get<double>() >= weights);
    CHECK(lora.at("peak_bytes").get<double>() < full.at("peak_bytes").get<double>());  // no AdamW state of the base
    for (const nlohmann::json* line : {&full, &lora})  // the planned activations are part of the measured peak
        CHECK(line->at("peak_bytes").get<double>() >= line->at("activation_bytes").get<double>() + weights);
    const nlohmann::json gemm = json_line(run_train_step("--mode gemm --device cuda --gemm-n 1024 --gemm-iterations 3"));
    CHECK(gemm.at("bf16_tflops").get<double>() > 0);
}
