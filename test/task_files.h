// The task-file tests' fixtures (test_task_data.cpp, test_task_orders.cpp): task files written from text, an
// O-LoRA task with its instruction config, and the shared LLM-CL-Benchmark_500 folder when ../shared/data has it.
#pragma once
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "test/test_support.h"

inline void write_text(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    FILE* file = std::fopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(std::fwrite(text.data(), 1, text.size(), file) == text.size());
    std::fclose(file);
}

// An instruction config shaped like O-LoRA's: TC lists a few-shot entry first, so the zero-shot one must be chosen.
inline const char* const instruction_config_text = R"({
  "TC": [
    {"instruction_type": "few-shot", "instruction": "Not this one.\n"},
    {"instruction_type": "zero-shot",
     "instruction": "What is the topic of the following paragraph? Choose one from the option.\n"}
  ],
  "NLI": [
    {"instruction_type": "zero-shot", "instruction": "What is the logical relationship? Choose one from the option.\n"}
  ]
})";

// <dir>/olora/configs/instruction_config.json and one O-LoRA task at <dir>/olora/CL_Benchmark/<type>/<name>.
inline std::string write_olora_task(const std::string& dir, const std::string& type, const std::string& name,
                             const std::string& labels, const std::string& train, const std::string& test) {
    write_text(dir + "/olora/configs/instruction_config.json", instruction_config_text);
    std::string task_dir = dir + "/olora/CL_Benchmark/" + type + "/" + name;
    write_text(task_dir + "/labels.json", labels);
    write_text(task_dir + "/train.json", train);
    write_text(task_dir + "/test.json", test);
    return task_dir;
}

inline std::vector<std::string> sorted_unique(std::vector<std::string> items) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    return items;
}

inline std::string benchmark_500_dir() {
    std::string data = shared_data_dir();
    return data.empty() ? "" : data + "/cl_benchmark/LLM-CL-Benchmark_500";
}
