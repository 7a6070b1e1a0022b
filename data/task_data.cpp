// Reading continual-learning task directories (LLM-CL-Benchmark {"prompt","answer"} files and O-LoRA
// {"label","sentence"} files + labels.json + instruction_config.json) and resolving task orders; see task_data.h.
#include "data/task_data.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/json_file.h"
#include "data/utf8.h"

namespace filesystem = std::filesystem;
using nlohmann::json;

namespace {

const char* const unlabelled_answer = "-";

// The path made absolute and normalized, without a trailing separator, so that filename() and parent_path()
// give the last directory and its parent.
filesystem::path normalized_directory(const std::string& directory) {
    filesystem::path path = filesystem::absolute(filesystem::path(directory)).lexically_normal();
    if (path.filename().empty() && path.has_parent_path() && path != path.root_path()) path = path.parent_path();
    return path;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
    std::string joined;
    for (size_t i = 0; i < items.size(); i++) joined += (i ? separator : "") + items[i];
    return joined;
}

json parse_json_list(const std::string& path, const std::string& what) {
    json value = parse_json_file(path);
    if (!value.is_array()) fail(path + ": expected a JSON list of " + what + ", found " + describe_json_type(value));
    return value;
}

std::string record_place(const std::string& path, size_t index) { return path + ": record " + std::to_string(index); }

// The string member `key` of record `index`, failing with the file, the record and the problem.
const std::string& string_member(const json& record, const char* key, const std::string& path, size_t index) {
    auto member = record.find(key);
    if (member == record.end()) fail(record_place(path, index) + ": missing \"" + key + "\"");
    if (!member->is_string())
        fail(record_place(path, index) + ": \"" + key + "\" is " + describe_json_type(*member) + ", expected a string");
    return member->get_ref<const std::string&>();
}

// labels.json: a non-empty list of distinct strings.
std::vector<std::string> read_labels(const std::string& path) {
    json list = parse_json_list(path, "label strings");
    if (list.empty()) fail(path + ": the label list is empty");
    std::vector<std::string> labels;
    for (size_t i = 0; i < list.size(); i++) {
        if (!list[i].is_string())
            fail(path + ": label " + std::to_string(i) + " is " + describe_json_type(list[i]) + ", expected a string");
        std::string label = list[i].get<std::string>();
        if (std::find(labels.begin(), labels.end(), label) != labels.end())
            fail(path + ": label " + std::to_string(i) + " (\"" + printable(label) + "\") appears twice");
        labels.push_back(label);
    }
    return labels;
}

// How O-LoRA-format records become prompts: everything before the sentence, and whether to cut its trailing
// newlines. For the prompt_answer format the prompt is taken as it is.
struct PromptRecipe {
    std::string before_sentence;  // O-LoRA format: what comes before the sentence (prefix, instruction, options)
    std::string before_prompt;    // LLM-CL-Benchmark format: what comes before the whole prompt (the prefix)
    bool strip_sentence_trailing_newlines = false;
};

struct SplitResult {
    std::vector<TaskExample> examples;
    size_t skipped = 0;
};

SplitResult read_records(const json& list, const std::string& path, TaskFormat format, const PromptRecipe& recipe,
                         const std::vector<std::string>& labels, const std::string& labels_path,
                         const TaskLoadOptions& options, size_t limit, size_t& index);

// Turns the records of one split (already parsed from `path`) into examples; a JSON exception on the way fails
// naming the file and the record.
SplitResult read_split(const json& list, const std::string& path, TaskFormat format, const PromptRecipe& recipe,
                       const std::vector<std::string>& labels, const std::string& labels_path,
                       const TaskLoadOptions& options, size_t limit) {
    size_t index = 0;
    try {
        return read_records(list, path, format, recipe, labels, labels_path, options, limit, index);
    } catch (const json::exception& error) {
        fail(record_place(path, index) + ": " + printable(error.what()));
    }
}

SplitResult read_records(const json& list, const std::string& path, TaskFormat format, const PromptRecipe& recipe,
                       const std::vector<std::string>& labels, const std::string& labels_path,
                         const TaskLoadOptions& options, size_t limit, size_t& index) {
    const char* answer_key = format == TaskFormat::olora ? "label" : "answer";
    SplitResult result;
    for (index = 0; index < list.size(); index++) {
        const json& record = list[index];
        if (!record.is_object())
            fail(record_place(path, index) + ": is " + describe_json_type(record) + ", expected an object with " +
                 (format == TaskFormat::olora ? "\"label\" and \"sentence\"" : "\"prompt\" and \"answer\""));
        TaskExample example;
        if (format == TaskFormat::olora) {
            example.answer = string_member(record, "label", path, index);
            std::string sentence = string_member(record, "sentence", path, index);
            if (recipe.strip_sentence_trailing_newlines)
                while (!sentence.empty() && sentence.back() == '\n') sentence.pop_back();
            example.prompt = recipe.before_sentence + sentence + "\nAnswer:";
        } else {
            example.prompt = recipe.before_prompt + string_member(record, "prompt", path, index);
            example.answer = string_member(record, "answer", path, index);
        }
        bool unlabelled = example.answer == unlabelled_answer;
        if (unlabelled && options.skip_unlabelled) {
            result.skipped++;
            continue;
        }
        if (!unlabelled && !labels.empty() && std::find(labels.begin(), labels.end(), example.answer) == labels.end())
            fail(record_place(path, index) + ": \"" + answer_key + "\" \"" + printable(example.answer) +
                 "\" is not one of the labels in " + labels_path + " (" + printable(join(labels, ", ")) + ")");
        result.examples.push_back(std::move(example));
    }
    if (limit > 0 && result.examples.size() > limit) result.examples.resize(limit);
    return result;
}

// Which format train.json is in, from its first record; a list that is not one, an empty list or a first
// record of neither shape is an error.
TaskFormat detect_format(const json& list, const std::string& train_path) {
    if (list.empty()) fail(train_path + ": empty train set (the list has no records)");
    const json& first = list[0];
    if (!first.is_object())
        fail(record_place(train_path, 0) + ": is " + describe_json_type(first) +
             ", expected an object with \"prompt\" and \"answer\" or \"label\" and \"sentence\"");
    if (first.contains("prompt") || first.contains("answer")) return TaskFormat::prompt_answer;
    if (first.contains("label") || first.contains("sentence")) return TaskFormat::olora;
    fail(record_place(train_path, 0) +
         ": has neither \"prompt\"/\"answer\" (LLM-CL-Benchmark format) nor \"label\"/\"sentence\" (O-LoRA format)");
}

std::string find_instruction_config(const filesystem::path& task_directory) {
    for (filesystem::path ancestor = task_directory.parent_path();; ancestor = ancestor.parent_path()) {
        filesystem::path candidate = ancestor / "configs" / "instruction_config.json";
        if (file_exists(candidate.string())) return candidate.string();
        if (ancestor == ancestor.parent_path()) break;
    }
    fail(task_directory.string() + ": O-LoRA format task, but no configs/instruction_config.json in any directory " +
         "above it (expected .../olora/configs/instruction_config.json); pass the config path explicitly");
}

// The instruction for one task type: the first "zero-shot" entry of config[type], as O-LoRA's default "single"
// instruction strategy picks it. Returns false when the config has no entry for the type.
bool read_instruction(const std::string& config_path, const std::string& type, std::string& instruction) {
    json config = parse_json_file(config_path);
    if (!config.is_object())
        fail(config_path + ": expected a JSON object mapping task types to instruction lists, found " +
             describe_json_type(config));
    auto entry = config.find(type);
    if (entry == config.end()) {
        if (type == "COPA") return false;
        std::vector<std::string> types;
        for (auto& item : config.items()) types.push_back(item.key());
        fail(config_path + ": no instruction for task type \"" + type + "\" (the parent directory's name); types " +
             "there: " + join(types, ", "));
    }
    if (!entry->is_array())
        fail(config_path + ": \"" + type + "\" is " + describe_json_type(*entry) + ", expected a list of instructions");
    for (size_t i = 0; i < entry->size(); i++) {
        const json& item = (*entry)[i];
        std::string place = config_path + ": \"" + type + "\" entry " + std::to_string(i);
        if (!item.is_object()) fail(place + ": is " + describe_json_type(item) + ", expected an object");
        auto kind = item.find("instruction_type");
        auto text = item.find("instruction");
        if (kind == item.end() || !kind->is_string()) fail(place + ": missing string \"instruction_type\"");
        if (text == item.end() || !text->is_string()) fail(place + ": missing string \"instruction\"");
        if (kind->get<std::string>() == "zero-shot") {
            instruction = text->get<std::string>();
            return true;
        }
    }
    fail(config_path + ": \"" + type + "\" has no \"zero-shot\" instruction");
}

// The names go into the metrics and predictions files as JSON strings, which must be UTF-8.
void expect_utf8_name(const std::string& task_dir, const std::string& name, const char* what) {
    if (!is_valid_utf8(name))
        fail(printable(task_dir) + ": " + what + " name is not valid UTF-8 ('" + printable(name) + "')");
}

Task load_task_files(const std::string& task_dir, const TaskLoadOptions& options) {
    if (!is_directory(task_dir)) fail(printable(task_dir) + ": no such task directory");
    filesystem::path directory = normalized_directory(task_dir);
    std::string train_path = task_dir + "/train.json", test_path = task_dir + "/test.json";
    std::string labels_path = task_dir + "/labels.json";

    Task task;
    if (!file_exists(train_path) && file_exists(task_dir + "/eval.json")) {  // TRACE's MeetingBank
        task.train_file = "eval.json";
        train_path = task_dir + "/eval.json";
    }
    task.name = directory.filename().string();
    expect_utf8_name(task_dir, task.name, "task directory");
    task.directory = task_dir;
    json train_records = parse_json_list(train_path, "records");
    task.format = detect_format(train_records, train_path);
    json test_records = parse_json_list(test_path, "records");

    PromptRecipe recipe;
    if (task.format == TaskFormat::olora) {
        task.type = directory.parent_path().filename().string();
        expect_utf8_name(task_dir, task.type, "task type (parent directory)");
        if (!file_exists(labels_path)) fail(labels_path + ": missing file (O-LoRA format tasks need their labels)");
        task.labels = read_labels(labels_path);
        std::string config_path =
            options.instruction_config.empty() ? find_instruction_config(directory) : options.instruction_config;
        std::string instruction;
        if (options.prefix_task_and_dataset)
            recipe.before_sentence = "Task:" + task.type + "\nDataset:" + task.name + "\n";
        if (read_instruction(config_path, task.type, instruction))
            recipe.before_sentence += instruction + "Option: " + join(task.labels, ", ") + " \n";
        recipe.strip_sentence_trailing_newlines = options.strip_sentence_trailing_newlines;
    } else {
        if (file_exists(labels_path)) task.labels = read_labels(labels_path);
        if (options.prefix_task_and_dataset) {
            task.type = olora_task_type(task.name);
            if (task.type.empty())
                fail(printable(task_dir) + ": the task prefix (\"Task:<TYPE>\\nDataset:<name>\\n\") needs O-LoRA's "
                     "category of the task, and O-LoRA has no task \"" + printable(task.name) + "\"");
            recipe.before_prompt = "Task:" + task.type + "\nDataset:" + task.name + "\n";
        }
    }

    SplitResult train = read_split(train_records, train_path, task.format, recipe, task.labels, labels_path, options,
                                   options.max_train);
    if (train.examples.empty())
        fail(train_path + ": empty train set (all " + std::to_string(train.skipped) + " records are unlabelled \"-\")");
    SplitResult test =
        read_split(test_records, test_path, task.format, recipe, task.labels, labels_path, options, options.max_test);
    task.train = std::move(train.examples);
    task.test = std::move(test.examples);
    task.skipped_train = train.skipped;
    task.skipped_test = test.skipped;
    return task;
}

}  // namespace

// Every failure is an Error naming the task, with the bytes of paths and file text that would not print escaped.
Task load_task(const std::string& task_dir, const TaskLoadOptions& options) {
    try {
        return load_task_files(task_dir, options);
    } catch (const json::exception& error) {  // any the readers did not place more precisely
        fail(printable(task_dir) + ": " + printable(error.what()));
    } catch (const Error& error) {
        fail(printable(error.what(), std::string::npos));
    }
}

std::string olora_task_type(const std::string& name) {
    for (const char* topic : {"agnews", "dbpedia", "yahoo"})
        if (name == topic) return "TC";
    for (const char* sentiment : {"amazon", "yelp", "IMDB", "SST-2"})
        if (name == sentiment) return "SC";
    for (const char* inference : {"MNLI", "CB", "RTE"})
        if (name == inference) return "NLI";
    for (const char* own : {"QQP", "BoolQA", "MultiRC", "WiC", "COPA"})
        if (name == own) return name;
    return "";
}

std::string describe_task(const Task& task) {
    std::string source = task.format == TaskFormat::olora ? "O-LoRA " + task.type : "LLM-CL-Benchmark";
    std::string line = task.name + " (" + source + "): " + std::to_string(task.train.size()) + " train, " +
                       std::to_string(task.test.size()) + " test, " + std::to_string(task.labels.size()) + " labels";
    if (task.train_file != "train.json") line += ", trained on " + task.train_file + " (it has no train.json)";
    if (task.skipped_train > 0) line += ", skipped " + std::to_string(task.skipped_train) + " unlabelled train rows";
    if (task.skipped_test > 0) line += ", skipped " + std::to_string(task.skipped_test) + " unlabelled test rows";
    return line;
}

std::string default_benchmark_root() { return "../shared/data/cl_benchmark/LLM-CL-Benchmark_500"; }

namespace {

std::string trim(const std::string& text) {
    size_t begin = text.find_first_not_of(" \t\r\n"), end = text.find_last_not_of(" \t\r\n");
    return begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
}

std::vector<std::string> sorted_subdirectories(const std::string& directory) {
    std::vector<std::string> names;
    std::error_code error;
    for (auto& entry : filesystem::directory_iterator(directory, error))
        if (entry.is_directory(error)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// The tasks under a benchmark root, for error messages: "<name>" for <root>/<name>/ holding a train.json or
// test.json, "<TYPE>/<name>" one level deeper (O-LoRA's layout).
std::vector<std::string> tasks_under(const std::string& root) {
    std::vector<std::string> tasks;
    for (const std::string& name : sorted_subdirectories(root)) {
        std::string directory = root + "/" + name;
        if (file_exists(directory + "/train.json") || file_exists(directory + "/test.json")) {
            tasks.push_back(name);
            continue;
        }
        for (const std::string& inner : sorted_subdirectories(directory)) tasks.push_back(name + "/" + inner);
    }
    return tasks;
}

std::string resolve_task(const std::string& root, const std::string& item) {
    if (item.find('/') != std::string::npos) {
        if (!is_directory(item)) fail(item + ": no such task directory");
        return item;
    }
    if (!is_directory(root)) fail(root + ": no such benchmark directory (looking for task \"" + item + "\")");
    if (is_directory(root + "/" + item)) return root + "/" + item;
    for (const std::string& type : sorted_subdirectories(root))
        if (is_directory(root + "/" + type + "/" + item)) return root + "/" + type + "/" + item;
    fail("task \"" + item + "\" not found under " + root + "; tasks there: " + join(tasks_under(root), ", "));
}

std::string find_task_orders_file(const std::string& root) {
    filesystem::path start = normalized_directory(root);
    for (filesystem::path ancestor = start.parent_path();; ancestor = ancestor.parent_path()) {
        filesystem::path candidate = ancestor / "task_orders.json";
        if (file_exists(candidate.string())) return candidate.string();
        if (ancestor == ancestor.parent_path()) break;
    }
    fail(root + ": no task_orders.json beside it or in a directory above it");
}

std::vector<std::string> order_task_names(const std::string& root, const std::string& number) {
    std::string path = find_task_orders_file(root);
    json orders = parse_json_file(path);
    if (!orders.is_object()) fail(path + ": expected a JSON object of benchmarks, found " + describe_json_type(orders));
    std::string key = "order_" + number;
    std::vector<std::string> available;
    for (auto& benchmark : orders.items()) {
        if (!benchmark.value().is_object()) continue;  // "_source", "notes"
        for (auto& order : benchmark.value().items()) {
            if (order.key() != key) {
                if (order.key().rfind("order_", 0) == 0) available.push_back(order.key().substr(6));
                continue;
            }
            if (!order.value().is_array())
                fail(path + ": \"" + benchmark.key() + "\"." + key + " is " + describe_json_type(order.value()) +
                     ", expected a list of task names");
            std::vector<std::string> names;
            for (size_t i = 0; i < order.value().size(); i++) {
                const json& name = order.value()[i];
                if (!name.is_string())
                    fail(path + ": \"" + benchmark.key() + "\"." + key + " item " + std::to_string(i) + " is " +
                         describe_json_type(name) + ", expected a task name");
                names.push_back(name.get<std::string>());
            }
            if (names.empty()) fail(path + ": \"" + benchmark.key() + "\"." + key + " is empty");
            return names;
        }
    }
    std::sort(available.begin(), available.end());
    fail("unknown task order \"" + number + "\": " + path + " has orders " + join(available, ", "));
}

}  // namespace

std::vector<std::string> task_order(const std::string& benchmark_root, const std::string& spec) {
    std::string root = benchmark_root.empty() ? default_benchmark_root() : benchmark_root;
    std::string trimmed = trim(spec);
    if (trimmed.empty())
        fail("empty task order: give an order number (1-6), trace, or a comma-separated list of tasks");

    std::vector<std::string> items;
    if (trimmed == "trace") {
        // TRACE's order (BeyonderXX/TRACE: its scripts' --dataset_name); no task_orders.json lists it
        items = {"C-STANCE", "FOMC", "MeetingBank", "Py150", "ScienceQA", "NumGLUE-cm", "NumGLUE-ds", "20Minuten"};
    } else if (std::all_of(trimmed.begin(), trimmed.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        items = order_task_names(root, trimmed);
    } else {
        size_t begin = 0;
        while (true) {
            size_t comma = trimmed.find(',', begin);
            size_t length = comma == std::string::npos ? std::string::npos : comma - begin;
            std::string item = trim(trimmed.substr(begin, length));
            if (item.empty()) fail("task order \"" + spec + "\": empty task name between commas");
            items.push_back(item);
            if (comma == std::string::npos) break;
            begin = comma + 1;
        }
    }
    std::vector<std::string> directories;
    for (const std::string& item : items) directories.push_back(resolve_task(root, item));
    return directories;
}
