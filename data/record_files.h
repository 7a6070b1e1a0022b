// The line records of a run (metrics.jsonl, predictions.jsonl): appended with every write checked, and cut back
// on resume to the lines of the work its checkpoint holds, so that a run killed at any moment (or stopped by a
// full disk) and resumed ends with exactly the lines an uninterrupted run writes: none cut, lost or twice.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// Appends whole lines to path (created if missing); fails naming the path when a write fails (a full disk).
void append_records(const std::string& path, const std::string& lines);

// Rewrites path, atomically, with only its complete JSON lines for which keep(line) holds: a line cut by a kill
// or a full disk, or one that does not parse, is dropped. A missing file stays missing.
void keep_records(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep);

// The complete JSON lines of path (none when it is missing).
std::vector<nlohmann::json> read_records(const std::string& path);
