// Progress and the training records: the live line's text and ETA, the line drawn only on a terminal (forced here
// with CLORA_PROGRESS), the log lines with their totals, train cl's per-step records in metrics.jsonl, and
// pretrain's closing summary.
#include <cmath>

#include "data/file_io.h"
#include "model/progress.h"
#include "test/json_files.h"
#include "test/run_command.h"
#include "test/test_support.h"

namespace {
Run run_train(const std::string& arguments) { return run_command(train_binary() + " " + arguments); }
}  // namespace

TEST_CASE("progress: durations read as a person reads them") {
    CHECK(format_duration(0) == "0s");
    CHECK(format_duration(42.4) == "42s");
    CHECK(format_duration(312) == "5m12s");
    CHECK(format_duration(3599.6) == "1h00m");
    CHECK(format_duration(7380) == "2h03m");
    CHECK(format_duration(-1) == "?");
    CHECK(format_duration(std::nan("")) == "?");
}

TEST_CASE("progress: the line gives the percentage and an ETA from the mean pace so far") {
    // 25 of 100 steps in 10 s: 75 left at 0.4 s each
    CHECK(progress_text("pretrain", 25, 100, "loss 3.2", 10) == "pretrain | loss 3.2 | 25% | ETA 30s");
    CHECK(progress_text("eval", 0, 4, "", 0) == "eval | 0%");            // no pace yet, no ETA
    CHECK(progress_text("eval", 4, 4, "done", 9) == "eval | done | 100%");  // finished: nothing left
}

TEST_CASE("progress: train cl draws a live line on a terminal, logs totals, and records each logged step") {
    const std::string dir = make_temp_dir("progress_cl");
    const std::string flags = "cl --device cpu --method seqlora --synthetic-tasks 2 --epochs 2 --log-every 5";
    Run live = run_command("CLORA_PROGRESS=1 " + train_binary() + " " + flags + " --out " + dir + "/live");
    INFO(live.output);
    REQUIRE(live.status == 0);
    CHECK_THAT(live.output, Catch::Contains("\r") && Catch::Contains("ETA") && Catch::Contains("tok/s"));
    CHECK_THAT(live.output, Catch::Contains("seqlora evaluation after task 2/2"));
    Run logged = run_train(flags + " --out " + dir + "/logged");  // a pipe: no live line
    REQUIRE(logged.status == 0);
    CHECK_THAT(logged.output, !Catch::Contains("\r") && !Catch::Contains("ETA"));
    CHECK_THAT(logged.output, Catch::Contains("seqlora task 1/2 (sub1) epoch 1/2 step 5/"));

    // the records: each task's logged steps (every 5th and the last), then the task's own record
    const std::vector<nlohmann::json> records = read_jsonl(dir + "/logged/seqlora/metrics.jsonl");
    int boundaries = 0, last_step = 0;
    for (const nlohmann::json& r : records) {
        if (r.contains("accuracy")) {
            boundaries++;
            CHECK(last_step > 0);  // the task's steps came first
            last_step = 0;
            continue;
        }
        CHECK(r.at("task") == boundaries + 1);
        CHECK(r.at("step").get<int>() > last_step);
        last_step = r.at("step");
        CHECK(std::isfinite(r.at("loss").get<double>()));
        CHECK(r.at("method_loss") == 0.0);  // SeqLoRA adds no term
    }
    CHECK(boundaries == 2);
}

TEST_CASE("progress: pretrain logs every --log-every steps and the last, then a summary") {
    const std::string dir = make_temp_dir("progress_pretrain");
    Run run = run_train("pretrain --device cpu --steps 5 --log-every 2 --val-every 5 --out " + dir);
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK_THAT(run.output, Catch::Contains("step     2/5 | loss") && Catch::Contains("step     5/5 | loss"));
    CHECK_THAT(run.output, !Catch::Contains("step     3/5 | loss"));
    CHECK_THAT(run.output, Catch::Contains("pretrain: done: steps 1-5 in"));
    CHECK_THAT(run.output, Catch::Contains("train loss") && Catch::Contains("val loss"));
    CHECK(read_jsonl(dir + "/metrics.jsonl").size() == 6);  // every step is recorded, logged or not, and 1 val
}

TEST_CASE("progress: dev/plot_cl.py draws a run's accuracy matrices and loss curves from its files") {
    if (run_command("python3 --version").status != 0) SKIP_TEST("python3 is not installed");
    const std::string dir = make_temp_dir("progress_plot");
    REQUIRE(run_train("cl --device cpu --method seqlora,replay --synthetic-tasks 2 --epochs 1 --log-every 4 --out " +
                      dir).status == 0);
    Run plot = run_command("python3 dev/plot_cl.py " + dir);
    INFO(plot.output);
    REQUIRE(plot.status == 0);
    for (const char* file : {"/plots/accuracy.svg", "/plots/loss.svg"}) {
        const std::vector<uint8_t> bytes = read_file_bytes(dir + file);
        const std::string svg(bytes.begin(), bytes.end());
        CHECK_THAT(svg, Catch::StartsWith("<svg") && Catch::Contains("seqlora") && Catch::Contains("replay"));
    }
    CHECK(run_command("python3 dev/plot_cl.py " + dir + "/seqlora").status != 0);  // not a run folder
}
