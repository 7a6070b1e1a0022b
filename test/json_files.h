// For the tests that read what a run wrote: a JSON file, and a JSON-lines file (one object per line).
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/test_support.h"

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::ifstream file(path);
    REQUIRE(file);
    std::vector<nlohmann::json> lines;
    std::string line;
    while (std::getline(file, line))
        if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

inline nlohmann::json read_json(const std::string& path) {
    std::ifstream file(path);
    REQUIRE(file);
    return nlohmann::json::parse(file);
}
