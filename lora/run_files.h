// The files of a `train cl` run (lora/continual.h): run.json's description, each method's folder <out>/<method>/
// (adapters_task<NN>.bin at every task boundary, with what a resume restores; metrics.jsonl's task records;
// predictions.jsonl; results.json) and <out>/comparison.json. Rank 0 alone writes them.
#pragma once
#include <string>
#include <vector>

#include "lora/adapter_file.h"
#include "lora/continual.h"
#include "lora/continual_eval.h"
#include "lora/method.h"
#include "model/device.h"
#include "model/precision.h"
#include "model/run_directory.h"

// run.json's options: every flag of `train cl` that sets what the run computes, and those that may change when it
// resumes: where and how fast it runs, which methods this session runs (each has its own folder) and how far.
RunDescription describe_run(const ContinualOptions& options, Device device, MatmulPrecision precision);

// Each evaluation mode's rows a[j][i] of one method's run so far: a rank score is NaN for an open task (no labels),
// or for a task boundary restored from an adapter file without ranking rows.
struct AccuracyRows {
    std::vector<std::vector<double>> generate, rank;
};

// <dir>/adapters_task<NN>.bin
std::string adapter_path(const std::string& dir, int tasks_completed);
// The latest task boundary saved in dir, of at most `tasks` (0: none).
int latest_adapter_task(const std::string& dir, int tasks);
// Fails unless the file's adapters were written for this model and LoRA configuration.
void check_adapters_fit(const AdapterFile& file, const std::string& path, const GPT2Config& config,
                        const LoraConfig& lora);
// Each mode's rows, for a resume: accuracy/generate/<j> and, where every score is known (a run of closed-label
// tasks), accuracy/rank/<j>.
void save_accuracy_rows(AdapterFile& file, const AccuracyRows& rows);
// Back from the file of `completed` tasks. Files written before label ranking hold generation's rows as
// accuracy/<j>, and no ranking rows: those are NaN, and an error when the primary mode (eval) is rank.
void load_accuracy_rows(const AdapterFile& file, const std::string& path, int completed, const std::string& eval,
                        AccuracyRows& rows);

// On a resume from `completed` tasks: the records of the tasks the adapters hold, and nothing after them (a kill
// may have left more); the finished tasks' times from their records (the adapter files hold only what they
// compute) into seconds_per_task.
void keep_task_records(const std::string& dir, int completed, std::vector<double>& seconds_per_task);
// predictions.jsonl's lines of task `task`'s answers after task `after_task` (1-based).
std::string prediction_lines(const EncodedTask& task, int after_task, const TaskAnswers& answers,
                             const std::vector<std::string>& label_texts);
// Task t's (0-based) record in metrics.jsonl (its accuracy row in both modes, its time, the diagnostics), then the
// predictions' lines.
void append_task_records(const std::string& dir, int t, const std::string& task_name, const MethodResult& result,
                         const AccuracyRows& rows, bool any_closed, const Diagnostics& diagnostics,
                         const std::string& predictions);

// <dir>/results.json: the primary mode's matrix and metrics at the top level, every mode's in "modes".
void write_results(const std::string& dir, const MethodResult& result);
// <out_dir>/comparison.json: every method's metrics.
void write_comparison(const std::string& out_dir, const std::vector<MethodResult>& results);
