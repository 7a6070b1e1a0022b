// For the tests that run a program as a user would: a shell command's exit status, its output (stdout and stderr
// together) and its wall time.
#pragma once
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "test/test_support.h"

struct Run {
    int status;          // the exit status; -1 when the command did not exit normally
    std::string output;  // stdout and stderr together
    double seconds;
};

inline Run run_command(const std::string& command) {
    const auto start = std::chrono::steady_clock::now();
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe);
    Run run;
    char buffer[4096];
    size_t count;
    while ((count = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.output.append(buffer, count);
    const int status = pclose(pipe);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return run;
}

// The program the tests run: ./train, or CLORA_TRAIN (`make sanitize` points it at its AddressSanitizer build).
inline std::string train_binary() {
    const char* path = std::getenv("CLORA_TRAIN");
    return path && *path ? path : "./train";
}
