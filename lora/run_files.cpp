// The files of a `train cl` run (lora/run_files.h).
#include "lora/run_files.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/record_files.h"
#include "lora/continual_setup.h"
#include "model/cpu/threads.h"

using nlohmann::json;

namespace {

// A method option's value as run.json records it: a number as its shortest decimal, an on/off flag as a boolean.
json recorded_value(const MethodOption& option, const MethodOptions& m) {
    switch (option.kind) {
        case MethodOption::Kind::real: return shortest_decimal(m.*option.real);
        case MethodOption::Kind::count: return m.*option.count;
        case MethodOption::Kind::choice: return m.*option.choice;
        case MethodOption::Kind::on_off: return m.*option.on_off;
    }
    return nullptr;
}

// AA, BWT, FT and the diagonal mean as JSON (results.json and comparison.json, per mode).
json metrics_json(const ContinualMetrics& m) {
    return {{"average_accuracy", m.average_accuracy},
            {"backward_transfer", m.backward_transfer},
            {"forgetting", m.forgetting},
            {"diagonal_mean", m.diagonal_mean}};
}

void write_json(const std::string& path, const json& value) {
    AtomicFileWriter writer(path);
    std::string text = value.dump(2) + "\n";
    writer.write(text.data(), text.size());
    writer.commit();
}

// What results.json and comparison.json both say of a method: the primary mode's metrics at the top level (as
// before label ranking), every mode's in "modes".
json method_summary(const MethodResult& result) {
    json summary = metrics_json(result.metrics);
    summary["method"] = result.method;
    summary["eval"] = result.eval;
    summary["seconds_per_task"] = result.seconds_per_task;
    for (const auto& [name, mode] : result.modes) summary["modes"][name] = metrics_json(mode.metrics);
    return summary;
}

}  // namespace

RunDescription describe_run(const ContinualOptions& o, Device device, MatmulPrecision precision) {
    std::string methods;
    for (const std::string& name : o.methods) methods += (methods.empty() ? "" : ",") + name;
    RunDescription run;
    run.command = "cl";
    run.options = {{"method", methods}, {"order", o.order}, {"benchmark", o.benchmark_root},
                   {"tokenizer", o.tokenizer_dir}, {"max-train", o.max_train}, {"max-test", o.max_test},
                   {"synthetic-tasks", o.synthetic_tasks}, {"synthetic-disjoint", o.synthetic_disjoint_inputs},
                   {"base", o.base_checkpoint}, {"base-config", o.base_config}, {"device", device_name(device)},
                   {"precision", precision_name(precision)}, {"threads", cpu::cpu_threads()},
                   {"lora-modules", lora_modules_string(o.lora.modules)}, {"lora-rank", o.lora.rank},
                   {"lora-alpha", shortest_decimal(o.lora.alpha)}, {"lora-dropout", shortest_decimal(o.lora.dropout)},
                   {"epochs", o.epochs}, {"batch-size", o.batch_size}, {"max-seq-len", o.max_seq_len},
                   {"lr", shortest_decimal(o.optimizer.learning_rate)},
                   {"weight-decay", shortest_decimal(o.optimizer.weight_decay)},
                   {"grad-clip", shortest_decimal(o.optimizer.grad_clip)}, {"replay-size", o.replay_size},
                   {"eval", o.eval}, {"eval-all", o.eval_all}, {"max-new-tokens", o.max_new_tokens},
                   {"eval-batch-size", o.eval_batch_size}, {"stop-after", o.stop_after}, {"seed", o.seed},
                   {"log-every", o.log_every}};
    for (const MethodOption* option : method_options()) run.options[option->flag] = recorded_value(*option, o.method);
    // recorded only when on: a run without the prefix records what the runs made before --task-prefix existed
    if (task_prefix_on(o)) run.options["task-prefix"] = "on";
    run.may_change = {"method", "device", "precision", "threads", "stop-after", "log-every"};
    run.outputs = {"comparison.json"};
    for (const std::string& name : known_methods())
        for (const char* file : {"/adapters_task*.bin", "/metrics.jsonl", "/predictions.jsonl", "/results.json"})
            run.outputs.push_back(name + file);
    run.device = device_name(device);
    run.precision = precision_name(precision);
    return run;
}

std::string adapter_path(const std::string& dir, int tasks_completed) {
    char name[64];
    std::snprintf(name, sizeof(name), "/adapters_task%02d.bin", tasks_completed);
    return dir + name;
}

int latest_adapter_task(const std::string& dir, int tasks) {
    for (int k = tasks; k >= 1; k--)
        if (file_exists(adapter_path(dir, k))) return k;
    return 0;
}

void check_adapters_fit(const AdapterFile& file, const std::string& path, const GPT2Config& config,
                        const LoraConfig& lora) {
    if (file.num_layers != config.num_layers || file.channels != config.channels || file.config.rank != lora.rank ||
        file.config.modules != lora.modules || file.config.alpha != lora.alpha)
        fail(path + ": these adapters were written for another model or LoRA configuration (layers " +
             std::to_string(file.num_layers) + ", channels " + std::to_string(file.channels) + ", rank " +
             std::to_string(file.config.rank) + ", modules " + lora_modules_string(file.config.modules) + ")");
}

void save_accuracy_rows(AdapterFile& file, const AccuracyRows& rows) {
    for (size_t j = 0; j < rows.generate.size(); j++) {
        file.set("accuracy/generate/" + std::to_string(j),
                 std::vector<float>(rows.generate[j].begin(), rows.generate[j].end()));
        const std::vector<double>& rank = rows.rank[j];
        if (std::all_of(rank.begin(), rank.end(), [](double a) { return std::isfinite(a); }))
            file.set("accuracy/rank/" + std::to_string(j), std::vector<float>(rank.begin(), rank.end()));
    }
}

void load_accuracy_rows(const AdapterFile& file, const std::string& path, int completed, const std::string& eval,
                        AccuracyRows& rows) {
    for (int j = 0; j < completed; j++) {
        const std::string generate = "accuracy/generate/" + std::to_string(j);
        const std::string rank = "accuracy/rank/" + std::to_string(j);
        const std::vector<float>& row = file.tensor(file.has(generate) ? generate : "accuracy/" + std::to_string(j));
        rows.generate.emplace_back(row.begin(), row.end());
        if (file.has(rank)) {
            const std::vector<float>& ranked = file.tensor(rank);
            rows.rank.emplace_back(ranked.begin(), ranked.end());
        } else {
            if (eval == "rank")
                fail(path + ": holds no label-ranking scores of task " + std::to_string(j + 1) + "'s evaluation " +
                     "(written before `train cl` ranked labels), so this run's rank evaluation cannot resume");
            rows.rank.emplace_back(row.size(), std::nan(""));
        }
    }
}

void keep_task_records(const std::string& dir, int completed, std::vector<double>& seconds_per_task) {
    keep_records(dir + "/metrics.jsonl", [&](const json& line) { return line.value("task", 0) <= completed; });
    keep_records(dir + "/predictions.jsonl", [&](const json& line) { return line.value("after_task", 0) <= completed; });
    for (const json& line : read_records(dir + "/metrics.jsonl")) {
        const int task = line.value("task", 0);
        if (task >= 1 && task <= completed && line.contains("accuracy"))  // a task's record, not a step's
            seconds_per_task[size_t(task - 1)] = line.value("seconds", 0.0);
    }
}

std::string prediction_lines(const EncodedTask& task, int after_task, const TaskAnswers& answers,
                             const std::vector<std::string>& label_texts) {
    std::string lines;
    for (size_t k = 0; k < answers.answers.size(); k++) {
        const size_t example = answers.examples[k];
        const std::string& expected = task.test_answers[example];
        json line = {{"after_task", after_task},
                     {"task", task.name},
                     {"example", example},
                     {"answer", answers.answers[k]},
                     {"expected", expected},
                     {"correct", exact_match(answers.answers[k], expected)}};
        if (task.metric != TaskMetric::exact_match) line["score"] = answers.scores[k];
        if (!answers.ranked.empty()) {
            const std::string& label = label_texts[answers.ranked[example]];
            line["ranked"] = label;
            line["rank_correct"] = exact_match(label, expected);
        }
        // a decoded answer may end inside a multi-byte character, a task name be any bytes: replaced
        lines += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    return lines;
}

void append_task_records(const std::string& dir, int t, const std::string& task_name, const MethodResult& result,
                         const AccuracyRows& rows, bool any_closed, const Diagnostics& diagnostics,
                         const std::string& predictions) {
    json line = {{"task", t + 1},
                 {"name", task_name},
                 {"accuracy", result.accuracy.back()},
                 {"eval", result.eval},
                 {"seconds", result.seconds_per_task.back()}};
    // both modes' rows (a rank score of an open task is NaN, written null); their evaluation times are printed
    // only (a record's times are its top-level "seconds", which the checks of resumed runs mask)
    line["modes"]["generate"] = {{"accuracy", rows.generate.back()}};
    if (any_closed) line["modes"]["rank"] = {{"accuracy", rows.rank.back()}};
    for (const auto& [key, value] : diagnostics) line["diagnostics"][key] = value;
    append_records(dir + "/metrics.jsonl", line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    append_records(dir + "/predictions.jsonl", predictions);
}

void write_results(const std::string& dir, const MethodResult& result) {
    // the summary, the tasks and their metrics, and every mode's accuracy matrix
    json results = method_summary(result);
    results["tasks"] = result.task_names;
    results["task_metrics"] = result.task_metrics;
    results["accuracy"] = result.accuracy;
    for (const auto& [name, mode] : result.modes) results["modes"][name]["accuracy"] = mode.accuracy;
    write_json(dir + "/results.json", results);
}

void write_comparison(const std::string& out_dir, const std::vector<MethodResult>& results) {
    json comparison = json::array();
    for (const MethodResult& result : results) comparison.push_back(method_summary(result));
    write_json(out_dir + "/comparison.json", comparison);
}
