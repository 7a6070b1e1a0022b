// The continual-learning loop (lora/continual.h) end to end on the built-in synthetic benchmark, CPU backend:
// SeqLoRA forgets, MTL and Replay do not; the saved answers give the accuracy matrix; a run stopped at a task
// boundary and resumed ends where an uninterrupted one does.
#include <algorithm>
#include <array>
#include <map>

#include "lora/adapter_file.h"
#include "lora/continual.h"
#include "lora/methods/mtl.h"
#include "lora/metrics.h"
#include "model/backend_cpu.h"
#include "model/initialisation.h"
#include "test/cl_test_support.h"
#include "test/json_files.h"
#include "test/test_support.h"

TEST_CASE("cl: on the synthetic benchmark SeqLoRA forgets the first task; Replay keeps it") {
    // (MTL: the test "cl: MTL starts every task ..." below, at its own learning rate)
    const ContinualOptions options = synthetic_options("cl_forgetting", {"seqlora", "replay"});
    std::vector<MethodResult> results = run_continual(options);
    REQUIRE(results.size() == 2);
    for (const MethodResult& r : results) {
        INFO(r.method);
        REQUIRE(r.accuracy.size() == 2);
        REQUIRE(r.accuracy[1].size() == 2);
        CHECK(r.accuracy[0][0] >= 90);  // every method learns task 1 ...
        CHECK(r.accuracy[1][1] >= 90);  // ... and task 2
    }
    const MethodResult &seq = results[0], &replay = results[1];
    CHECK(seq.accuracy[1][0] <= 30);  // task 1 after training task 2: forgotten
    CHECK(seq.metrics.backward_transfer <= -60);
    CHECK(replay.accuracy[1][0] >= 90);
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

namespace {

// The synthetic benchmark cut to 24 training examples per task: at most 24 distinct answers, so every task is
// closed-label (data/cl_batches.h closed_label_set) and `train cl` ranks labels too; 12 test prompts.
ContinualOptions closed_label_options(const std::string& name) {
    ContinualOptions o = synthetic_options(name, {"seqlora"});
    o.max_train = 24;
    o.max_test = 12;
    o.epochs = 2;
    o.eval_batch_size = 5;  // the ranking's (prompt, label) rows and the prompts in several batches
    return o;
}

// results.json without its wall times.
nlohmann::json results_without_seconds(const std::string& path) {
    nlohmann::json results = read_json(path);
    results.erase("seconds_per_task");
    return results;
}

}  // namespace

TEST_CASE("cl: on closed-label tasks both evaluation modes are written, and a resumed run reproduces them", "[rank]") {
    const ContinualOptions whole = closed_label_options("cl_rank_whole");
    const MethodResult result = run_continual(whole)[0];
    CHECK(result.eval == "rank");  // auto: every task is closed-label
    REQUIRE(result.modes.size() == 2);
    const EvaluationResult &rank = result.modes.at("rank"), &generate = result.modes.at("generate");
    CHECK(result.accuracy == rank.accuracy);
    CHECK(result.metrics.average_accuracy == rank.metrics.average_accuracy);
    REQUIRE(rank.accuracy.size() == 2);
    REQUIRE(generate.accuracy.size() == 2);

    const std::string dir = whole.out_dir + "/seqlora";
    const nlohmann::json results = read_json(dir + "/results.json");
    CHECK(results["eval"] == "rank");
    CHECK(results["accuracy"] == results["modes"]["rank"]["accuracy"]);
    CHECK(results["modes"]["rank"]["accuracy"].get<std::vector<std::vector<double>>>() == rank.accuracy);
    CHECK(results["modes"]["generate"]["accuracy"].get<std::vector<std::vector<double>>>() == generate.accuracy);
    for (const char* key : {"average_accuracy", "backward_transfer", "forgetting", "diagonal_mean"}) {
        INFO(key);
        CHECK(results[key] == results["modes"]["rank"][key]);
        CHECK(results["modes"]["generate"].contains(key));
    }
    const nlohmann::json comparison = read_json(whole.out_dir + "/comparison.json");
    REQUIRE(comparison.size() == 1);
    CHECK(comparison[0]["eval"] == "rank");
    CHECK(comparison[0]["average_accuracy"] == results["average_accuracy"]);
    CHECK(comparison[0]["modes"]["generate"]["average_accuracy"] == results["modes"]["generate"]["average_accuracy"]);
    CHECK(comparison[0]["modes"]["rank"]["forgetting"] == results["modes"]["rank"]["forgetting"]);

    // every test answer's ranked label and greedy answer, each giving its matrix
    std::map<std::pair<int, std::string>, std::array<int, 3>> counts;  // -> rank correct, generate correct, answered
    for (const nlohmann::json& p : read_jsonl(dir + "/predictions.jsonl")) {
        REQUIRE(p.contains("ranked"));
        const std::string ranked = p["ranked"], expected = p["expected"];
        CHECK(p["rank_correct"].get<bool>() == exact_match(ranked, expected));
        auto& c = counts[{p["after_task"].get<int>(), p["task"].get<std::string>()}];
        c[0] += p["rank_correct"].get<bool>();
        c[1] += p["correct"].get<bool>();
        c[2]++;
    }
    REQUIRE(counts.size() == 3);
    for (size_t j = 0; j < 2; j++)
        for (size_t i = 0; i <= j; i++) {
            INFO("after task " << j + 1 << ", on " << result.task_names[i]);
            const std::array<int, 3> c = counts.at({int(j) + 1, result.task_names[i]});
            CHECK(c[2] == 12);
            CHECK(100.0 * c[0] / c[2] == Approx(rank.accuracy[j][i]));
            CHECK(100.0 * c[1] / c[2] == Approx(generate.accuracy[j][i]));
        }
    std::vector<nlohmann::json> metrics;  // the tasks' records (the others are training steps')
    for (const nlohmann::json& record : read_jsonl(dir + "/metrics.jsonl"))
        if (record.contains("accuracy")) metrics.push_back(record);
    REQUIRE(metrics.size() == 2);
    for (size_t j = 0; j < 2; j++) {
        CHECK(metrics[j]["eval"] == "rank");
        CHECK(metrics[j]["accuracy"].get<std::vector<double>>() == rank.accuracy[j]);
        CHECK(metrics[j]["modes"]["rank"]["accuracy"].get<std::vector<double>>() == rank.accuracy[j]);
        CHECK(metrics[j]["modes"]["generate"]["accuracy"].get<std::vector<double>>() == generate.accuracy[j]);
    }

    // stopped after task 1 and resumed: the same matrices, files and records
    ContinualOptions staged = whole;
    staged.out_dir = make_temp_dir("cl_rank_staged");
    staged.stop_after = 1;
    run_continual(staged);
    staged.stop_after = 0;
    staged.start = StartMode::resume;
    const MethodResult resumed = run_continual(staged)[0];
    CHECK(resumed.eval == "rank");
    CHECK(resumed.modes.at("rank").accuracy == rank.accuracy);
    CHECK(resumed.modes.at("generate").accuracy == generate.accuracy);
    CHECK(resumed.final_adapters == result.final_adapters);
    CHECK(results_without_seconds(staged.out_dir + "/seqlora/results.json") == results_without_seconds(dir + "/results.json"));
    CHECK(read_jsonl(staged.out_dir + "/seqlora/predictions.jsonl") == read_jsonl(dir + "/predictions.jsonl"));
}

TEST_CASE("cl: --eval picks the primary mode; rank refuses an open task; it may not change on resume", "[rank]") {
    ContinualOptions o = closed_label_options("cl_eval_generate");
    o.eval = "generate";
    o.stop_after = 1;
    const MethodResult generated = run_continual(o)[0];
    CHECK(generated.eval == "generate");
    REQUIRE(generated.modes.count("rank") == 1);  // still computed: every task is closed-label
    CHECK(generated.accuracy == generated.modes.at("generate").accuracy);
    const nlohmann::json results = read_json(o.out_dir + "/seqlora/results.json");
    CHECK(results["eval"] == "generate");
    CHECK(results["accuracy"] == results["modes"]["generate"]["accuracy"]);
    CHECK(results["modes"].contains("rank"));

    ContinualOptions changed = o;
    changed.start = StartMode::resume;
    changed.eval = "rank";
    CHECK_THROWS_WITH(run_continual(changed), Catch::Contains("--eval"));

    ContinualOptions bad = synthetic_options("cl_eval_bad", {"seqlora"});
    bad.eval = "vote";
    CHECK_THROWS_WITH(run_continual(bad), Catch::Contains("--eval must be auto, rank or generate"));
    // the full synthetic tasks answer hundreds of distinct strings: open, so auto generates and rank refuses
    ContinualOptions open = synthetic_options("cl_eval_open", {"seqlora"});
    open.eval = "rank";
    CHECK_THROWS_WITH(run_continual(open), Catch::Contains("task 'sub1' is not a closed-label task"));
    open.eval = "auto";
    open.epochs = 1;
    open.max_test = 8;
    open.stop_after = 1;
    const MethodResult automatic = run_continual(open)[0];
    CHECK(automatic.eval == "generate");
    CHECK(automatic.modes.count("rank") == 0);
    const nlohmann::json open_results = read_json(open.out_dir + "/seqlora/results.json");
    CHECK(open_results["eval"] == "generate");
    CHECK(!open_results["modes"].contains("rank"));
    for (const nlohmann::json& p : read_jsonl(open.out_dir + "/seqlora/predictions.jsonl")) CHECK(!p.contains("ranked"));
}

TEST_CASE("cl: MTL starts every task from the run's initial adapters, so a stage does not depend on the earlier ones") {
    // the hook: task 2 starts from exactly the adapters task 1 started from (SeqLoRA's first branch, same seed),
    // one trainable branch, whatever task 1 trained
    using Cpu = CpuBackend<float>;
    const GPT2Config config = config_from_spec("2:16:2:257:16");
    const std::vector<float> base = gpt2_random_parameters(config, 3);
    GPT2<Cpu> model(config, base.data());
    LoraConfig lora;
    lora.modules = parse_lora_modules("all");
    LoraAdapters<Cpu> adapters(config, lora), seq_adapters(config, lora);
    const std::vector<EncodedTask> tasks(2);
    ContinualContext<Cpu> context{model, adapters, tasks, 0, 1337, nullptr, 0};
    ContinualContext<Cpu> seq_context{model, seq_adapters, tasks, 0, 1337, nullptr, 0};
    Mtl<Cpu> mtl;
    SeqLora<Cpu> seq;
    mtl.task_start(context);
    seq.task_start(seq_context);
    const std::vector<float> initial = adapters.parameters_to_host();
    CHECK(initial == seq_adapters.parameters_to_host());
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 9, -0.5, 0.5));  // "trained"
    lora_reset_optimizer(adapters);
    context.task = 1;
    mtl.task_start(context);
    CHECK(adapters.branches == 1);
    CHECK(adapters.first_trainable == 0);
    CHECK(bit_identical(adapters.parameters_to_host(), initial));

    // end to end: stage 2 of a run whose task-1 adapters were replaced before it resumed ends bit-identical to an
    // uninterrupted run (its row 2 is joint training on tasks 1 and 2 from scratch), and keeps both tasks. At lr
    // 1e-3: joint training from fresh adapters at the synthetic preset's 3e-3 learns the two tasks only to 27% / 21%
    // in the preset's 6 epochs (at 1e-3: 99% / 93%; at 3e-3 and 24 epochs: 89% / 100%). The tasks differ only in the
    // task word, and one adapter must learn to copy and to read that word at once; a stage continuing the previous
    // one had learned the copying on task 1 alone.
    ContinualOptions whole = synthetic_options("cl_mtl_whole", {"mtl"});
    whole.optimizer.learning_rate = 1e-3f;
    const MethodResult uninterrupted = run_continual(whole)[0];
    ContinualOptions staged = whole;
    staged.out_dir = make_temp_dir("cl_mtl_staged");
    staged.stop_after = 1;
    run_continual(staged);
    const std::string path = staged.out_dir + "/mtl/adapters_task01.bin";
    AdapterFile file = read_adapter_file(path);
    const size_t count = file.tensor("lora").size();
    file.set("lora", random_vector<float>(count, 17, -0.5, 0.5));
    write_adapter_file(path, file);
    staged.stop_after = 0;
    staged.start = StartMode::resume;
    const MethodResult resumed = run_continual(staged)[0];
    CHECK(bit_identical(resumed.final_adapters, uninterrupted.final_adapters));
    CHECK(resumed.accuracy[1] == uninterrupted.accuracy[1]);
    INFO("MTL: " << uninterrupted.accuracy[0][0] << " | " << uninterrupted.accuracy[1][0] << " "
                  << uninterrupted.accuracy[1][1]);
    CHECK(uninterrupted.accuracy[0][0] >= 90);  // stage 1: task 1
    CHECK(uninterrupted.accuracy[1][0] >= 85);  // stage 2, joint: task 1 kept ...
    CHECK(uninterrupted.accuracy[1][1] >= 85);  // ... and task 2 learned
    CHECK(uninterrupted.metrics.backward_transfer >= -15);
}
