// The continual-learning loop (lora/continual.h) end to end on the built-in synthetic benchmark, CPU backend:
// SeqLoRA forgets, MTL and Replay do not; the saved answers give the accuracy matrix; a run stopped at a task
// boundary and resumed ends where an uninterrupted one does.
#include <algorithm>
#include <map>

#include "lora/continual.h"
#include "lora/metrics.h"
#include "test/cl_test_support.h"
#include "test/json_files.h"
#include "test/test_support.h"

TEST_CASE("cl: on the synthetic benchmark SeqLoRA forgets the first task; MTL and Replay keep it") {
    const ContinualOptions options = synthetic_options("cl_forgetting", {"seqlora", "replay", "mtl"});
    std::vector<MethodResult> results = run_continual(options);
    REQUIRE(results.size() == 3);
    for (const MethodResult& r : results) {
        INFO(r.method);
        REQUIRE(r.accuracy.size() == 2);
        REQUIRE(r.accuracy[1].size() == 2);
        CHECK(r.accuracy[0][0] >= 90);  // every method learns task 1 ...
        CHECK(r.accuracy[1][1] >= 90);  // ... and task 2
    }
    const MethodResult &seq = results[0], &replay = results[1], &mtl = results[2];
    CHECK(seq.accuracy[1][0] <= 30);  // task 1 after training task 2: forgotten
    CHECK(seq.metrics.backward_transfer <= -60);
    CHECK(replay.accuracy[1][0] >= 90);
    CHECK(mtl.accuracy[1][0] >= 90);
    CHECK(mtl.metrics.backward_transfer > seq.metrics.backward_transfer + 60);
    for (const MethodResult& r : results) {
        CHECK(file_exists(options.out_dir + "/" + r.method + "/adapters_task02.bin"));
        CHECK(file_exists(options.out_dir + "/" + r.method + "/results.json"));
    }
}

TEST_CASE("cl: predictions.jsonl holds every generated answer, and they give the accuracy matrix") {
    const ContinualOptions options = synthetic_options("cl_predictions", {"seqlora"});
    const MethodResult result = run_continual(options)[0];
    const std::vector<nlohmann::json> lines = read_jsonl(options.out_dir + "/seqlora/predictions.jsonl");
    // (after task j, on task i) -> [correct, answered]
    std::map<std::pair<int, std::string>, std::pair<int, int>> counts;
    for (const nlohmann::json& p : lines) {
        const std::string answer = p["answer"], expected = p["expected"];
        CHECK(p["correct"].get<bool>() == exact_match(answer, expected));
        auto& [correct, answered] = counts[{p["after_task"].get<int>(), p["task"].get<std::string>()}];
        correct += p["correct"].get<bool>();
        answered++;
    }
    REQUIRE(result.accuracy.size() == 2);
    REQUIRE(counts.size() == 3);  // after task 1: task 1; after task 2: tasks 1 and 2
    for (size_t j = 0; j < result.accuracy.size(); j++)
        for (size_t i = 0; i < result.accuracy[j].size(); i++) {
            INFO("after task " << j + 1 << ", on " << result.task_names[i]);
            const auto [correct, answered] = counts.at({int(j) + 1, result.task_names[i]});
            CHECK(answered > 0);
            CHECK(100.0 * correct / answered == Approx(result.accuracy[j][i]));
        }
}

TEST_CASE("cl: a run stopped after task 1 and resumed ends bit-identical to an uninterrupted run") {
    for (const char* method : {"inclora", "replay"}) {
        INFO(method);
        ContinualOptions whole = synthetic_options(std::string("cl_whole_") + method, {method});
        whole.epochs = 2;
        MethodResult uninterrupted = run_continual(whole)[0];

        ContinualOptions staged = whole;
        staged.out_dir = make_temp_dir(std::string("cl_staged_") + method);
        staged.stop_after = 1;
        MethodResult first = run_continual(staged)[0];
        CHECK(first.accuracy.size() == 1);
        staged.stop_after = 0;
        staged.start = StartMode::resume;
        MethodResult resumed = run_continual(staged)[0];
        CHECK(resumed.accuracy == uninterrupted.accuracy);
        CHECK(resumed.final_adapters == uninterrupted.final_adapters);
        CHECK(read_jsonl(staged.out_dir + "/" + method + "/predictions.jsonl") ==
              read_jsonl(whole.out_dir + "/" + method + "/predictions.jsonl"));
    }
}

TEST_CASE("cl: bad options fail with a clear message before any training") {
    ContinualOptions o = synthetic_options("cl_bad", {"seqlora"});
    o.order = "1";
    CHECK_THROWS_WITH(run_continual(o), Catch::Contains("need a base model"));
    o.base_checkpoint = "test/fixtures/gpt2_tiny.bin";
    o.benchmark_root = "/nonexistent/benchmark";
    CHECK_THROWS_WITH(run_continual(o), Catch::Contains("/nonexistent/benchmark"));
    CHECK_THROWS_WITH(parse_methods("seqlora,magic"), Catch::Contains("unknown method 'magic'"));
    ContinualOptions no_epochs = synthetic_options("cl_bad", {"seqlora"});
    no_epochs.epochs = 0;
    CHECK_THROWS_WITH(run_continual(no_epochs), Catch::Contains("epochs"));
}

TEST_CASE("cl: with disjoint inputs O-LoRA, N-LoRA and AM-LoRA forget less than SeqLoRA, IncLoRA no more (3 seeds)") {
    // The tasks' inputs are spelt with different characters (data/synthetic_tasks.h), so branches kept apart by
    // input can keep an old task; on the shared-input default only methods that read the task word can.
    // One seed decides too little at this scale: AA moves by several points from seed to seed and with the rounding
    // of the build, so the claims are about the mean over three seeds. Measured (AA, mean of seeds 1337, 2, 3, 4):
    // SeqLoRA 29.0, IncLoRA 30.6, O-LoRA 36.0, N-LoRA 48.2, AM-LoRA 33.5 (AVX-512 build); SeqLoRA 29.1, IncLoRA 32.0,
    // O-LoRA 39.2, N-LoRA 47.3, AM-LoRA 33.7 (the x86-64-v3 build before the CPU threads). IncLoRA's new branch is
    // kept from nothing, so it forgets about as much as SeqLoRA: it is held to no more forgetting, the others to
    // 3 points less.
    const std::vector<std::string> methods = {"seqlora", "inclora", "olora", "nlora", "amlora"};
    std::vector<double> aa(methods.size(), 0), bwt(methods.size(), 0), diagonal(methods.size(), 100);
    for (uint64_t seed : {1337, 2, 3}) {
        ContinualOptions options = synthetic_options("cl_disjoint", methods);
        options.synthetic_disjoint_inputs = true;
        options.synthetic_tasks = 4;  // two tasks leave too little to forget to order the methods
        options.seed = seed;
        const std::vector<MethodResult> results = run_continual(options);
        REQUIRE(results.size() == methods.size());
        for (size_t m = 0; m < methods.size(); m++) {
            INFO(methods[m] << " seed " << seed << ": AA " << results[m].metrics.average_accuracy << ", BWT "
                            << results[m].metrics.backward_transfer);
            CHECK(results[m].method == methods[m]);
            aa[m] += results[m].metrics.average_accuracy / 3;
            bwt[m] += results[m].metrics.backward_transfer / 3;
            diagonal[m] = std::min(diagonal[m], results[m].metrics.diagonal_mean);
        }
    }
    for (size_t m = 0; m < methods.size(); m++) {
        INFO(methods[m] << ": mean AA " << aa[m] << ", mean BWT " << bwt[m] << "; SeqLoRA: mean AA " << aa[0]
                        << ", mean BWT " << bwt[0]);
        CHECK(diagonal[m] >= 85);  // learns each task, every seed
        if (methods[m] == "seqlora") continue;
        const double margin = methods[m] == "inclora" ? 0 : 3;
        CHECK(bwt[m] >= bwt[0] + margin);  // forgets less
        CHECK(aa[m] >= aa[0] + margin);    // and ends better
    }
}
