// Continual-learning task files: one task is a directory with train.json and test.json, read in either of two
// formats and turned into (prompt, answer) pairs; a task order is a list of such directories.
//
// Format 1, LLM-CL-Benchmark (TreeLoRA's down-sampled release): train.json / test.json are JSON lists of
// {"prompt": str, "answer": str}; the prompt already holds the instruction, the "Option:" line and the text, and
// ends in "\nAnswer:". labels.json (a list of label strings) is optional.
//
// Format 2, O-LoRA (CL_Benchmark/<TYPE>/<task>/): train.json / test.json are JSON lists of
// {"label": str, "sentence": str}, labels.json is required, and the prompt is built as O-LoRA's
// src/uie_dataset_lora.py + src/uie_collator.py build it:
//     [ "Task:<TYPE>\nDataset:<task>\n" ]                      (only with prefix_task_and_dataset)
//     + instruction + "Option: " + ", ".join(labels) + " \n"    (omitted for COPA, see below)
//     + sentence + "\nAnswer:"
// and the answer is the label string. TYPE is the name of the task directory's parent (TC, SC, NLI, QQP, BoolQA,
// MultiRC, WiC, COPA). The instruction comes from instruction_config.json, a JSON object mapping each TYPE to a
// list of {"instruction_type": "zero-shot" | "few-shot", "instruction": str}; like O-LoRA's default ("single"
// strategy, no few-shot examples) we take the first "zero-shot" entry. The config has no COPA entry: O-LoRA's
// load_COPA_dataset uses the bare template sentence + "\nAnswer:" (the sentence already says "Choose one between
// A and B" and lists both choices), and so do we for a COPA type without an entry; any other type missing from
// the config is an error. The config is options.instruction_config, or else the first
// <ancestor>/configs/instruction_config.json above the task directory (.../olora/configs/instruction_config.json).
//
// Both formats: rows whose answer (label) is "-" are unlabelled (131 in O-LoRA's MNLI test, 2 in the
// LLM-CL-Benchmark MNLI test) and are skipped and counted unless options.skip_unlabelled is false (then they are
// kept with answer "-"). When the task has labels, every other answer must be one of them. Every failure is an Error
// naming the file, the record index (0-based, as in the JSON list) and the problem.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

struct TaskExample {
    std::string prompt, answer;
};

enum class TaskFormat { prompt_answer, olora };

struct Task {
    std::string name;  // the task directory's name, e.g. "dbpedia"
    // the split the training examples come from: "train.json", or "eval.json" for a task that has no train.json
    // (TRACE's MeetingBank), which then trains on its validation split
    std::string train_file = "train.json";
    std::vector<TaskExample> train, test;
    std::vector<std::string> labels;  // empty if the task has no labels.json
    TaskFormat format = TaskFormat::prompt_answer;
    std::string type;       // O-LoRA task type (the parent directory name); empty for prompt_answer
    std::string directory;  // as given to load_task
    size_t skipped_train = 0, skipped_test = 0;  // unlabelled ("-") rows left out of each split
};

struct TaskLoadOptions {
    size_t max_train = 0;         // keep the first N training examples (after skipping unlabelled rows); 0 = all
    size_t max_test = 0;          // the same for the test split
    bool skip_unlabelled = true;  // leave out rows whose answer / label is "-"
    // Start every prompt with "Task:<TYPE>\nDataset:<name>\n", as O-LoRA's code does with --add_task_name and
    // --add_dataset_name (its scripts turn both on). TYPE: the O-LoRA format's parent directory; for the
    // LLM-CL-Benchmark format, olora_task_type(name) (an error for a task O-LoRA does not have).
    bool prefix_task_and_dataset = false;
    // O-LoRA only: cut trailing newlines off each sentence. O-LoRA's amazon, yelp, agnews and dbpedia
    // sentences end in "\n", so their prompts end in "\n\nAnswer:" upstream, while the LLM-CL-Benchmark release
    // built from them ends in "\nAnswer:"; this option reproduces the latter. Off by default (upstream prompts).
    bool strip_sentence_trailing_newlines = false;
    std::string instruction_config;  // O-LoRA only: path of instruction_config.json; "" = search above the task
};

// Reads <task_dir>/train.json, test.json and labels.json, detecting the format from the first training record.
Task load_task(const std::string& task_dir, const TaskLoadOptions& options = TaskLoadOptions());

// O-LoRA's category of one of its 16 tasks (its CL_Benchmark/<TYPE>/<name> layout): "TC" for agnews, dbpedia,
// yahoo; "SC" for amazon, yelp, IMDB, SST-2; "NLI" for MNLI, CB, RTE; the task's own name for QQP, BoolQA,
// MultiRC, WiC, COPA; "" for any other name.
std::string olora_task_type(const std::string& name);

// One line for logs, e.g. "MNLI (O-LoRA NLI): 3000 train, 7469 test, 3 labels, skipped 131 unlabelled test rows".
std::string describe_task(const Task& task);

// Where the project looks for the benchmark by default, relative to the checkout.
std::string default_benchmark_root();  // "../shared/data/cl_benchmark/LLM-CL-Benchmark_500"

// The task directories of a task order. spec is "trace" (TRACE's 8 tasks in its paper's order: C-STANCE, FOMC,
// MeetingBank, Py150, ScienceQA, NumGLUE-cm, NumGLUE-ds, 20Minuten), an order number "1".."6", looked up in the first
// task_orders.json found in benchmark_root's parent or an ancestor above it (a JSON object whose object-valued
// members map "order_<N>" to a list of task names), or a comma-separated list of task names and directories.
// An item holding a '/' is a directory used as given; a name is found at <benchmark_root>/<name> or, for O-LoRA's
// layout, <benchmark_root>/<TYPE>/<name>. An empty benchmark_root means default_benchmark_root(). Unknown orders
// and missing task directories are errors that list what exists.
std::vector<std::string> task_order(const std::string& benchmark_root, const std::string& spec);
