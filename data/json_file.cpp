// Reading a JSON file with errors that name it; see json_file.h.
#include "data/json_file.h"

#include "data/file_io.h"
#include "data/utf8.h"

std::string describe_json_type(const nlohmann::json& value) {
    std::string name = value.type_name();
    return (name == "array" || name == "object" ? "an " : "a ") + name;
}

nlohmann::json parse_json_file(const std::string& path) {
    if (!file_exists(path)) fail(printable(path) + ": missing file");
    std::vector<uint8_t> bytes = read_file_bytes(path);
    try {
        return nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& error) {
        fail(printable(path) + ": malformed JSON: " + printable(error.what()));
    }
}
