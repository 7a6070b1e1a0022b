// The source tree's layers point one way (README.md, "Architecture"):
//     data/  <-  model/  <-  lora/  <-  train.cu, dev/, test/
// A file may include headers of its own layer and of the layers below it, never of a layer above. This test reads
// every #include "..." of the tree (run from the repository root, as make test runs it) and names each that goes up.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// A path's layer: 0 data/, 1 model/, 2 lora/, 3 everything that uses the library (train.cu, dev/, test/); -1 for
// an include outside the tree's folders (a generated header found on -I, say).
int layer_of(const std::string& path) {
    const std::vector<std::string> layers = {"data/", "model/", "lora/"};
    for (size_t i = 0; i < layers.size(); ++i)
        if (path.rfind(layers[i], 0) == 0) return int(i);
    if (path == "train.cu" || path.rfind("dev/", 0) == 0 || path.rfind("test/", 0) == 0) return 3;
    return -1;
}

// The quoted includes of one file.
std::vector<std::string> quoted_includes(const fs::path& file) {
    static const std::regex include_line(R"(^\s*#\s*include\s*"([^"]+)\")");
    std::vector<std::string> includes;
    std::ifstream in(file);
    std::string line;
    std::smatch match;
    while (std::getline(in, line))
        if (std::regex_search(line, match, include_line)) includes.push_back(match[1]);
    return includes;
}

// "file:  includes header" for every include of a source under `root` that points into a higher layer.
std::vector<std::string> upward_includes(const fs::path& root) {
    std::vector<std::string> found;
    const std::vector<std::string> extensions = {".h", ".cpp", ".cu", ".cuh"};
    for (const auto& folder : {"data", "model", "lora"}) {
        for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
            if (!entry.is_regular_file()) continue;
            const std::string extension = entry.path().extension().string();
            if (std::find(extensions.begin(), extensions.end(), extension) == extensions.end()) continue;
            const std::string file = fs::relative(entry.path(), root).generic_string();
            for (const std::string& header : quoted_includes(entry.path()))
                if (layer_of(header) > layer_of(file)) found.push_back(file + " includes " + header);
        }
    }
    return found;
}

}  // namespace

TEST_CASE("layout: the layers data <- model <- lora hold no include that goes up", "[layout]") {
    REQUIRE(fs::is_directory("model"));  // run from the repository root
    const std::vector<std::string> upward = upward_includes(fs::current_path());
    for (const std::string& include : upward) UNSCOPED_INFO(include);
    CHECK(upward.empty());
}

TEST_CASE("layout: the include check sees an include that goes up", "[layout]") {
    // a throwaway tree: data/ includes a model/ header (up), model/ includes a data/ header (down, allowed)
    const fs::path root = fs::temp_directory_path() / ("clora_layout_" + std::to_string(::getpid()));
    fs::remove_all(root);
    for (const auto& folder : {"data", "model", "lora"}) fs::create_directories(root / folder);
    std::ofstream(root / "data" / "reader.h") << "#pragma once\n#include \"model/gpt2.h\"\n#include <vector>\n";
    std::ofstream(root / "model" / "gpt2.h") << "#pragma once\n  #  include \"data/reader.h\"\n";
    std::ofstream(root / "lora" / "method.h") << "#include \"lora/other.h\"\n#include \"model/gpt2.h\"\n";
    const std::vector<std::string> upward = upward_includes(root);
    fs::remove_all(root);
    REQUIRE(upward.size() == 1);
    CHECK(upward[0] == "data/reader.h includes model/gpt2.h");
}
