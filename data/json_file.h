// Reading a JSON file with errors that name it (nlohmann::json, Debian's nlohmann-json3-dev).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

// The parsed file. Every JSON exception (a syntax error, invalid UTF-8, a number out of range such as 1e999999)
// becomes an Error naming the file; a missing file fails as "<path>: missing file".
nlohmann::json parse_json_file(const std::string& path);

// "a string", "a number", "an object", ...: how a JSON value is named in error messages.
std::string describe_json_type(const nlohmann::json& value);
