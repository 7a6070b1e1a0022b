// The Catch2 runner, with a listener that counts test cases as passed, failed or skipped and prints the
// closing line "N passed, N failed" (", N skipped" when any were skipped).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "test/test_support.h"

namespace {
bool current_test_skipped = false;
int passed = 0, failed = 0, skipped = 0;
std::vector<std::string> temp_dirs;

struct CountingListener : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testCaseStarting(const Catch::TestCaseInfo&) override { current_test_skipped = false; }
    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        if (stats.totals.assertions.failed > 0) failed++;
        else if (current_test_skipped) skipped++;
        else passed++;
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
    int status = Catch::Session().run(argc, argv);
    for (const std::string& dir : temp_dirs) std::system(("rm -rf '" + dir + "'").c_str());
    std::printf("%d passed, %d failed", passed, failed);
    if (skipped > 0) std::printf(", %d skipped", skipped);
    std::printf("\n");
    return (status != 0 || failed > 0) ? 1 : 0;
}
