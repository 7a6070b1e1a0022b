// The Catch2 runner, with a listener that prints each test file's name as its first test starts, counts test cases
// as passed, failed or skipped and prints the closing line "N passed, N failed" (", N skipped" when any were
// skipped). With CLORA_TEST_REPORT=FILE set, it also writes one "status<TAB>test name" line per test case to FILE
// (dev/gpu_check.sh reads it).
//
// Run without arguments (as `make test` runs it), it runs the test files in parallel: CLORA_TEST_JOBS copies of
// itself at a time (default: one per core, at most 8; CLORA_TEST_JOBS=1 runs everything in this process), each
// given one file (-# "[#test_x]"). Each file's output is printed whole when its process ends, and their counts make
// the one closing line. With arguments (a test name, a tag, Catch2's options) it runs in this process, as Catch2 does.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
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
        if (report) {
            std::fprintf(report, "%s\t%s\n", status, stats.testInfo.name.c_str());
            std::fflush(report);  // kept should the process crash in a later test
        }
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

namespace {

// The name Catch2's -# gives a test file's tests: "#" and the file's name without folder and extension.
std::string file_tag(const std::string& path) {
    std::string name = path.substr(path.find_last_of("\\/") + 1);
    return "#" + name.substr(0, name.find_last_of('.'));
}

// The test files, in the order their tests run.
std::vector<std::string> test_files(Catch::Session& session) {
    std::vector<std::string> files;
    for (const Catch::TestCase& test : Catch::getAllTestCasesSorted(session.config())) {
        const std::string tag = file_tag(test.lineInfo.file);
        if (std::find(files.begin(), files.end(), tag) == files.end()) files.push_back(tag);
    }
    return files;
}

int parallel_jobs() {
    if (const char* jobs = std::getenv("CLORA_TEST_JOBS")) return std::max(1, std::atoi(jobs));
    return int(std::clamp(sysconf(_SC_NPROCESSORS_ONLN), 1L, 8L));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A file's output without Catch2's "Filters:" line and, when the file passed, without its closing summary (the
// runner's closing line counts every file).
std::string trimmed_output(std::string text, bool passed) {
    if (text.rfind("Filters: ", 0) == 0) text.erase(0, text.find('\n') + 1);
    const size_t summary = text.rfind(std::string(79, '='));  // the console reporter's rule
    if (passed && summary != std::string::npos) text.erase(summary);
    return text;
}

// One test file run by a copy of this runner, and the files its output and its report go to.
struct FileRun {
    std::string tag, output, report;
};

pid_t start_file_run(const FileRun& run) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid != 0) return pid;
    const std::string spec = "[" + run.tag + "]";
    setenv("CLORA_TEST_REPORT", run.report.c_str(), 1);
    setenv("CLORA_TEST_WORKER", "1", 1);
    if (!std::freopen(run.output.c_str(), "w", stdout) || dup2(fileno(stdout), STDERR_FILENO) < 0) _exit(127);
    execl("/proc/self/exe", "test_runner", "-#", spec.c_str(), static_cast<char*>(nullptr));
    _exit(127);
}

// Runs every test file in its own process, `jobs` at a time; prints each one's output as it ends and the closing
// line of them all. Returns the exit status.
int run_files_in_parallel(Catch::Session& session, int jobs) {
    char pattern[] = "/tmp/clora_test_runs_XXXXXX";
    if (!mkdtemp(pattern)) {
        std::perror("cannot create a temporary directory for the test runs");
        return 1;
    }
    const std::string dir = pattern;
    const std::vector<std::string> files = test_files(session);
    std::map<pid_t, FileRun> running;
    std::string report_lines;
    bool abnormal = false;
    size_t next = 0;
    while (next < files.size() || !running.empty()) {
        while (next < files.size() && int(running.size()) < jobs) {
            FileRun run{files[next], dir + "/" + files[next] + ".out", dir + "/" + files[next] + ".tsv"};
            next++;
            const pid_t pid = start_file_run(run);
            if (pid > 0) {
                running[pid] = run;
            } else {
                std::printf("%s: cannot start its test process\n", run.tag.c_str() + 1);
                abnormal = true;
            }
        }
        int status = 0;
        const pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) break;
        const FileRun run = running[pid];
        running.erase(pid);
        const bool file_passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        std::fputs(trimmed_output(read_file(run.output), file_passed).c_str(), stdout);
        const std::string run_report = read_file(run.report);
        std::istringstream lines(run_report);
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind("fail\t", 0) == 0) failed++;
            else if (line.rfind("skip\t", 0) == 0) skipped++;
            else if (line.rfind("ok\t", 0) == 0) passed++;
        }
        report_lines += run_report;
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && run_report.find("fail\t") == std::string::npos)) {
            std::printf("%s: the test process ended abnormally (%s %d)\n", run.tag.c_str() + 1,
                        WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            if (run_report.find("fail\t") == std::string::npos) failed++;  // a failure, counted once
            abnormal = true;
        }
        std::fflush(stdout);
    }
    if (report) std::fputs(report_lines.c_str(), report);
    std::system(("rm -rf '" + dir + "'").c_str());
    return abnormal ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (const char* path = std::getenv("CLORA_TEST_REPORT")) {
        report = std::fopen(path, "w");
        if (!report) std::fprintf(stderr, "cannot write the test report %s\n", path);
    }
    const bool worker = std::getenv("CLORA_TEST_WORKER") != nullptr;
    const int jobs = parallel_jobs();
    Catch::Session session;
    int status = 0;
    if (argc == 1 && !worker && jobs > 1) {
        status = session.applyCommandLine(argc, argv);
        if (status == 0) status = run_files_in_parallel(session, jobs);
    } else {
        status = session.run(argc, argv);
        for (const std::string& dir : temp_dirs) std::system(("rm -rf '" + dir + "'").c_str());
    }
    if (report) std::fclose(report);
    if (worker) return (status != 0 || failed > 0) ? 1 : 0;
    std::printf("%d passed, %d failed", passed, failed);
    if (skipped > 0) std::printf(", %d skipped", skipped);
    std::printf("\n");
    return (status != 0 || failed > 0) ? 1 : 0;
}
