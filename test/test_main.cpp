// The Catch2 runner, with a listener that prints each test file's name as its first test starts, counts test cases
// as passed, failed or skipped and prints the closing line "N passed, N failed" (", N skipped" when any were
// skipped). With CLORA_TEST_REPORT=FILE set,
// it also writes one "status<TAB>test name" line per test case to FILE (dev/gpu_check.sh reads it).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "test/test_support.h"

namespace {
bool current_test_skipped = false;
std::string current_file;  // of the running test case
int passed = 0, failed = 0, skipped = 0;
std::vector<std::string> temp_dirs;
FILE* report = nullptr;  // CLORA_TEST_REPORT

struct CountingListener : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        current_test_skipped = false;
        if (info.lineInfo.file != current_file) {
            current_file = info.lineInfo.file;
            std::printf("%s\n", current_file.c_str());
            std::fflush(stdout);
        }
    }
    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        const char* status = stats.totals.assertions.failed > 0 ? "fail" : current_test_skipped ? "skip" : "ok";
        if (status[0] == 'f') failed++;
        else if (status[0] == 's') skipped++;
        else passed++;
        if (report) std::fprintf(report, "%s\t%s\n", status, stats.testInfo.name.c_str());
    }
};
}  // namespace

CATCH_REGISTER_LISTENER(CountingListener)

void mark_test_skipped(const std::string& reason) {
    current_test_skipped = true;
    std::printf("SKIPPED: %s: %s\n", Catch::getResultCapture().getCurrentTestName().c_str(), reason.c_str());
}

std::string shared_data_dir() {
    for (const char* candidate : {"../shared/data", "../../shared/data"}) {
        std::string path = std::string(candidate) + "/README.md";
        if (FILE* file = std::fopen(path.c_str(), "r")) {
            std::fclose(file);
            return candidate;
        }
    }
    return "";
}

std::string make_temp_dir(const std::string& name) {
    std::string pattern = "/tmp/clora_test_" + name + "_XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!mkdtemp(buffer.data())) FAIL("cannot create a temporary directory " << pattern);
    temp_dirs.push_back(buffer.data());
    return buffer.data();
}

int main(int argc, char** argv) {
    if (const char* path = std::getenv("CLORA_TEST_REPORT")) {
        report = std::fopen(path, "w");
        if (!report) std::fprintf(stderr, "cannot write the test report %s\n", path);
    }
    int status = Catch::Session().run(argc, argv);
    if (report) std::fclose(report);
    for (const std::string& dir : temp_dirs) std::system(("rm -rf '" + dir + "'").c_str());
    std::printf("%d passed, %d failed", passed, failed);
    if (skipped > 0) std::printf(", %d skipped", skipped);
    std::printf("\n");
    return (status != 0 || failed > 0) ? 1 : 0;
}
