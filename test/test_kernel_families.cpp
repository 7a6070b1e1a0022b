// The kernel families (issue 25): every kernel family X is found by its name alone, in the layer that owns it
// (model: the base model's kernels, the LoRA linear among them; lora: the continual-learning methods' kernels):
//     <layer>/cuda/X.cu   the GPU half
//     <layer>/cpu/X.h     the CPU reference, which the GPU half is tested against
//     dev/cuda/X.cu       the lab: reference, the versions tried, check and timing (`make lab`)
//     [X]                 the Catch2 tag of the family's tests (CPU and GPU)
// The table below lists the families (dev/README.md shows it with each one's files). The test fails when a family
// lacks a piece, and when a kernel source, a CPU reference or a lab exists that is neither a family's nor listed
// here as infrastructure: a new kernel file comes with its four pieces and a row in the table.
// Run from the repository root, as make test runs it.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct KernelFamily {
    const char* name;
    const char* layer;  // "model" or "lora"
};

const std::vector<KernelFamily> kernel_families = {
    {"encoder", "model"},           // token + position embeddings
    {"layernorm", "model"},         // with the fused residual + layernorm forward
    {"matmul", "model"},            // the linears (cuBLAS), the bf16 products of a frozen base
    {"attention", "model"},         // fused causal attention (online softmax)
    {"kv_attention", "model"},      // one decoding step against a KV cache
    {"gelu", "model"},              // tanh form
    {"residual", "model"},          // and the gradient rescaling (scale)
    {"classifier", "model"},        // softmax + cross-entropy + dlogits in one pass
    {"adamw", "model"},             // the optimizer's update
    {"global_norm", "model"},       // the sum of squares behind gradient clipping
    {"argmax", "model"},            // greedy decoding's choice
    {"dropout", "model"},           // the LoRA input's dropout mask
    {"lora_linear", "model"},       // the multi-branch LoRA linear's adapter path
    {"gate", "lora"},               // GainLoRA's gate
    {"attention_mixture", "lora"},  // AM-LoRA's attention over the branches
    {"consistency", "lora"},        // I-LoRA's consistency loss and EMA
    {"regularizers", "lora"},       // O-LoRA's and N-LoRA's adapter regularisers
};

// Sources in the family folders that are no family's: the GPU runtime's plumbing and the CPU backend's helpers.
// (Headers in the cuda/ folders are not checked: each family's declarations, model/cuda/kernels.h and
// <layer>/cuda/*_kernels.h, and shared helpers such as model/cuda/block_reduce.cuh.)
const std::vector<std::string> infrastructure = {
    "model/cuda/device.cu",     // device queries
    "model/cuda/memory.cu",     // device memory and copies
    "model/cuda/nccl.cu",       // NCCL's gradient all-reduce
    "model/cuda/gemm_peak.cu",  // the cuBLAS peak the benchmarks measure MFU against
    "model/cpu/eigen_views.h",  // Eigen maps of raw arrays, pinned blocking
    "model/cpu/threads.h",      // the CPU kernels' OpenMP threads
    "model/cpu/threads.cpp",
};

std::string lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return text;
}

// The tags of every registered test case, lowercase. Registration is static: the list holds every test file's test
// cases whatever the command line filters (test_main.cpp runs each file in its own process with -#).
std::set<std::string> registered_tags() {
    std::set<std::string> tags;
    for (const Catch::TestCase& test : Catch::getAllTestCasesSorted(*Catch::getCurrentContext().getConfig()))
        for (const std::string& tag : test.getTestCaseInfo().tags) tags.insert(lowercase(tag));
    return tags;
}

// "what is missing" for each piece of the family that the tree under root and the tags lack.
std::vector<std::string> missing_pieces(const fs::path& root, const KernelFamily& family,
                                        const std::set<std::string>& tags) {
    const std::string name = family.name, layer = family.layer;
    std::vector<std::string> missing;
    const std::pair<std::string, const char*> files[] = {{layer + "/cuda/" + name + ".cu", "GPU half"},
                                                         {layer + "/cpu/" + name + ".h", "CPU reference"},
                                                         {"dev/cuda/" + name + ".cu", "lab"}};
    for (const auto& [path, what] : files)
        if (!fs::is_regular_file(root / path)) missing.push_back(name + ": no " + what + " " + path);
    if (!tags.count(lowercase(name))) missing.push_back(name + ": no test case tagged [" + name + "]");
    return missing;
}

// The kernel sources, CPU references and labs under root that are neither a family's nor infrastructure:
// <layer>/cuda/*.cu and <layer>/cpu/*.h, *.cpp must be named after a family of that layer, dev/cuda/*.cu after
// any family.
std::vector<std::string> unlisted_files(const fs::path& root, const std::vector<KernelFamily>& families,
                                        const std::vector<std::string>& infrastructure_files) {
    struct Folder {
        std::string path;
        std::vector<std::string> extensions;
        const char* layer;  // nullptr: any
    };
    const Folder folders[] = {{"model/cuda", {".cu"}, "model"},
                              {"lora/cuda", {".cu"}, "lora"},
                              {"model/cpu", {".h", ".cpp"}, "model"},
                              {"lora/cpu", {".h", ".cpp"}, "lora"},
                              {"dev/cuda", {".cu"}, nullptr}};
    std::vector<std::string> unlisted;
    for (const Folder& folder : folders) {
        if (!fs::is_directory(root / folder.path)) continue;
        for (const auto& entry : fs::directory_iterator(root / folder.path)) {
            const std::string extension = entry.path().extension().string();
            if (!entry.is_regular_file() || std::find(folder.extensions.begin(), folder.extensions.end(),
                                                      extension) == folder.extensions.end())
                continue;
            const std::string path = folder.path + "/" + entry.path().filename().string();
            const std::string stem = entry.path().stem().string();
            const bool family = std::any_of(families.begin(), families.end(), [&](const KernelFamily& f) {
                return stem == f.name && (!folder.layer || std::string(folder.layer) == f.layer);
            });
            const bool listed = std::find(infrastructure_files.begin(), infrastructure_files.end(), path) !=
                                infrastructure_files.end();
            if (!family && !listed) unlisted.push_back(path + ": no kernel family of that name, nor infrastructure");
        }
    }
    std::sort(unlisted.begin(), unlisted.end());
    return unlisted;
}

}  // namespace

TEST_CASE("kernel families: every family has its GPU half, CPU reference, lab and tagged tests") {
    REQUIRE(fs::is_directory("model/cuda"));  // run from the repository root
    const std::set<std::string> tags = registered_tags();
    std::vector<std::string> problems;
    for (const KernelFamily& family : kernel_families)
        for (const std::string& problem : missing_pieces(fs::current_path(), family, tags)) problems.push_back(problem);
    for (const std::string& problem : unlisted_files(fs::current_path(), kernel_families, infrastructure))
        problems.push_back(problem);
    for (const std::string& problem : problems) UNSCOPED_INFO(problem);
    CHECK(problems.empty());

    // each family once, in a layer that exists
    std::set<std::string> names;
    for (const KernelFamily& family : kernel_families) {
        CHECK(names.insert(family.name).second);
        CHECK((std::string(family.layer) == "model" || std::string(family.layer) == "lora"));
    }
}

TEST_CASE("kernel families: the check names a family's missing pieces and a kernel file of no family") {
    // in the real tree: a made-up family has none of its four pieces
    const std::set<std::string> tags = registered_tags();
    REQUIRE(tags.count("gelu") == 1);  // the registry holds the other files' tests too
    CHECK(missing_pieces(fs::current_path(), {"made_up_kernel", "model"}, tags).size() == 4);

    // a throwaway tree: a family with its GPU half and CPU reference but no lab and no tests, a stray kernel file,
    // a lab of no family, and an infrastructure file
    const fs::path root = fs::temp_directory_path() / ("clora_kernel_families_" + std::to_string(::getpid()));
    fs::remove_all(root);
    for (const char* folder : {"model/cuda", "model/cpu", "lora/cuda", "lora/cpu", "dev/cuda"})
        fs::create_directories(root / folder);
    for (const char* file : {"lora/cuda/made_up.cu", "lora/cpu/made_up.h", "lora/cuda/stray.cu", "model/cuda/memory.cu",
                             "model/cuda/made_up.cu", "dev/cuda/orphan.cu"})
        std::ofstream(root / file) << "// empty\n";
    const std::vector<KernelFamily> families = {{"made_up", "lora"}};
    const std::vector<std::string> missing = missing_pieces(root, families[0], {"other_family"});
    const std::vector<std::string> unlisted = unlisted_files(root, families, {"model/cuda/memory.cu"});
    fs::remove_all(root);
    CHECK(missing == std::vector<std::string>{"made_up: no lab dev/cuda/made_up.cu",
                                              "made_up: no test case tagged [made_up]"});
    // model/cuda/made_up.cu: a lora family's name in model/ is no family there
    CHECK(unlisted == std::vector<std::string>{"dev/cuda/orphan.cu: no kernel family of that name, nor infrastructure",
                                               "lora/cuda/stray.cu: no kernel family of that name, nor infrastructure",
                                               "model/cuda/made_up.cu: no kernel family of that name, nor "
                                               "infrastructure"});
    CHECK(missing_pieces(root, families[0], {"made_up"}).size() == 3);  // the tree is gone, the tag is there
}
