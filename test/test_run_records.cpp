// A run's folder and records (model/run_directory.h, data/record_files.h): one run at a time, identified in
// run.json, resumed only as the same run, and its line records cut back to its checkpoint on resume, so a run
// interrupted anywhere ends with exactly the lines of an uninterrupted one.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/record_files.h"
#include "data/synthetic_tokens.h"
#include "data/token_shard.h"
#include "model/checkpoint.h"
#include "model/pretrain.h"
#include "model/run_directory.h"
#include "test/cl_test_support.h"
#include "test/test_support.h"

using nlohmann::json;

namespace {

std::string read_text(const std::string& path) {
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    return std::string(bytes.begin(), bytes.end());
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The records of a run with the wall times masked: the one field two identical runs may write differently.
std::string without_times(const std::string& path) {
    std::string out;
    std::istringstream lines(read_text(path));
    for (std::string line; std::getline(lines, line);) {
        json record = json::parse(line);
        for (const char* key : {"ms", "seconds"})
            if (record.contains(key)) record[key] = 0;
        out += record.dump() + "\n";
    }
    return out;
}

RunDescription description(int lr_thousandths) {
    RunDescription d;
    d.command = "pretrain";
    d.options = {{"lr", lr_thousandths}, {"threads", 1}};
    d.may_change = {"threads"};
    d.outputs = {"model_*.bin"};
    d.device = "cpu";
    d.precision = "fp32";
    return d;
}

PretrainOptions tiny_pretrain(const std::string& dir) {
    std::vector<uint16_t> tokens = synthetic_token_stream(8000, 64, 5);
    write_token_shard(dir + "/train_000.bin", std::vector<uint16_t>(tokens.begin(), tokens.begin() + 7000));
    write_token_shard(dir + "/val_000.bin", std::vector<uint16_t>(tokens.begin() + 7000, tokens.end()));
    PretrainOptions o;
    o.train_pattern = dir + "/train_*.bin";
    o.val_pattern = dir + "/val_*.bin";
    o.model_config = "2:32:4:64:32";
    o.out_dir = dir + "/out";
    o.device = "cpu";
    o.batch_size = 2, o.seq_len = 16;
    o.steps = 8, o.checkpoint_every = 3, o.val_every = 2, o.val_batches = 1;
    o.quiet = true;
    return o;
}

}  // namespace

TEST_CASE("records: appends are checked, and a resume keeps only the complete lines it asks for") {
    const std::string dir = make_temp_dir("records");
    const std::string path = dir + "/metrics.jsonl";
    append_records(path, "{\"step\": 1}\n{\"step\": 2}\n");
    append_records(path, "{\"step\": 3}\n");
    write_text(path, read_text(path) + "{\"step\": 4, \"lo");  // a kill mid-line
    keep_records(path, [](const json& line) { return line.value("step", 0) <= 2; });
    CHECK(read_text(path) == "{\"step\": 1}\n{\"step\": 2}\n");
    keep_records(path, [](const json&) { return true; });
    CHECK(read_text(path) == "{\"step\": 1}\n{\"step\": 2}\n");
    keep_records(dir + "/absent.jsonl", [](const json&) { return true; });
    CHECK_FALSE(file_exists(dir + "/absent.jsonl"));
    // a full disk: /dev/full takes no byte
    if (file_exists("/dev/full"))
        CHECK_THROWS_WITH(append_records("/dev/full", "{}\n"), Catch::Contains("/dev/full: cannot write"));
}

TEST_CASE("run folder: identified, locked, never mixed with another run") {
    const std::string dir = make_temp_dir("run_folder") + "/out";
    uint64_t first_id = 0;
    {
        RunDirectory run(dir, description(1), StartMode::fresh, false);
        first_id = run.run_id();
        CHECK(first_id != 0);
        CHECK_FALSE(run.resuming());
        const json record = json::parse(read_text(dir + "/run.json"));
        CHECK(record["status"] == "running");
        CHECK(record["options"]["lr"] == 1);
        CHECK(record["commit"] == clora_commit());
        CHECK(record["sessions"].size() == 1);
        // a second run into the same folder while this one holds it
        CHECK_THROWS_WITH(RunDirectory(dir, description(1), StartMode::resume, false),
                          Catch::Contains("another run is writing this folder"));
        write_text(dir + "/model_00000001.bin", "x");
        write_text(dir + "/model_00000002.bin.tmp.12345", "half a file");  // a killed atomic write
        run.finish("finished");
    }
    CHECK(json::parse(read_text(dir + "/run.json"))["status"] == "finished");

    // a fresh start into a folder that holds a run is refused, a resume with another meaning too
    CHECK_THROWS_WITH(RunDirectory(dir, description(1), StartMode::fresh, false),
                      Catch::Contains("holds another run") && Catch::Contains("--overwrite"));
    CHECK_THROWS_WITH(RunDirectory(dir, description(2), StartMode::resume, false),
                      Catch::Contains("--lr 2 (the run has --lr 1)") && Catch::Contains("may change only: --threads"));
    {
        RunDescription more_threads = description(1);
        more_threads.options["threads"] = 2;
        RunDirectory run(dir, more_threads, StartMode::resume_or_fresh, false);
        CHECK(run.resuming());
        CHECK(run.run_id() == first_id);
        CHECK_FALSE(file_exists(dir + "/model_00000002.bin.tmp.12345"));  // a killed run's temporary files go
        CHECK(file_exists(dir + "/model_00000001.bin"));
        CHECK(json::parse(read_text(dir + "/run.json"))["sessions"].size() == 2);
    }
    {  // --overwrite: that run's files go, a new run begins
        RunDirectory run(dir, description(2), StartMode::fresh, true);
        CHECK(run.run_id() != first_id);
        CHECK_FALSE(file_exists(dir + "/model_00000001.bin"));
        run.finish("failed: on purpose");  // it wrote nothing: the folder holds no run
    }
    CHECK_FALSE(file_exists(dir + "/run.json"));
    CHECK_THROWS_WITH(RunDirectory(dir, description(1), StartMode::resume, false),
                      Catch::Contains("holds no run to resume"));
    RunDirectory fresh(dir, description(1), StartMode::resume_or_fresh, false);
    CHECK_FALSE(fresh.resuming());
}

TEST_CASE("pretrain: a run cut anywhere and resumed writes exactly the records of an uninterrupted run") {
    const std::string dir = make_temp_dir("pretrain_records");
    PretrainOptions o = tiny_pretrain(dir);
    PretrainOptions whole = o;
    whole.out_dir = dir + "/whole";
    run_pretrain(whole);
    run_pretrain(o);
    // as a kill while step 8's checkpoint was written leaves it: step 6's checkpoint is the latest, the lines of
    // steps 7 and 8 are there, and the last one is cut
    std::remove(checkpoint_path(o.out_dir, 8).c_str());
    std::remove(training_state_path(o.out_dir, 8).c_str());
    const std::string metrics = o.out_dir + "/metrics.jsonl";
    const std::string text = read_text(metrics);
    write_text(metrics, text.substr(0, text.size() - 9));
    REQUIRE(latest_checkpoint_step(o.out_dir) == 6);
    o.start = StartMode::resume;
    PretrainResult resumed = run_pretrain(o);
    CHECK(resumed.first_step == 7);
    CHECK(without_times(metrics) == without_times(whole.out_dir + "/metrics.jsonl"));
    CHECK(read_checkpoint(checkpoint_path(o.out_dir, 8)).parameters ==
          read_checkpoint(checkpoint_path(whole.out_dir, 8)).parameters);
}

TEST_CASE("pretrain: a model and a state of two runs are never resumed as a pair") {
    const std::string dir = make_temp_dir("pretrain_pair");
    PretrainOptions a = tiny_pretrain(dir), b = tiny_pretrain(dir);
    a.steps = b.steps = 3;
    b.out_dir = dir + "/other";
    run_pretrain(a);
    run_pretrain(b);
    // the same options, so the two state files differ only in their run
    write_text(training_state_path(a.out_dir, 3), read_text(training_state_path(b.out_dir, 3)));
    a.steps = 4;
    a.start = StartMode::resume;
    CHECK_THROWS_WITH(run_pretrain(a), Catch::Contains("is not this run's checkpoint of step 3"));
}

TEST_CASE("pretrain: a non-finite loss stops the run and keeps the last good checkpoint") {
    const std::string dir = make_temp_dir("pretrain_nan");
    PretrainOptions o = tiny_pretrain(dir);
    o.schedule.max_lr = 1e30f;  // finite, and the first update leaves weights whose loss is not
    o.schedule.kind = "constant";
    o.checkpoint_every = 1;
    CHECK_THROWS_WITH(run_pretrain(o), Catch::Contains("not finite") && Catch::Contains("stopped without a checkpoint"));
    const int latest = latest_checkpoint_step(o.out_dir);
    CHECK(latest < o.steps);
    const json record = json::parse(read_text(o.out_dir + "/run.json"));
    CHECK(record["status"].get<std::string>().rfind("failed: pretrain: step", 0) == 0);
}

TEST_CASE("cl: a kill between a task's records and its adapters loses and repeats nothing") {
    ContinualOptions o = synthetic_options("cl_records", {"seqlora"});
    o.epochs = 1;
    ContinualOptions whole = o;
    whole.out_dir = make_temp_dir("cl_records_whole");
    run_continual(whole);
    run_continual(o);
    // task 2's records were written, its adapters were not; and a cut line at the end
    std::remove((o.out_dir + "/seqlora/adapters_task02.bin").c_str());
    const std::string predictions = o.out_dir + "/seqlora/predictions.jsonl";
    write_text(predictions, read_text(predictions) + "{\"after_task\": 2, \"ta");
    o.start = StartMode::resume;
    const MethodResult resumed = run_continual(o)[0];
    CHECK(read_text(predictions) == read_text(whole.out_dir + "/seqlora/predictions.jsonl"));
    CHECK(without_times(o.out_dir + "/seqlora/metrics.jsonl") ==
          without_times(whole.out_dir + "/seqlora/metrics.jsonl"));
    CHECK(resumed.seconds_per_task[0] > 0);  // task 1's time, read back from its record
}
