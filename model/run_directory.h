// The output folder of a run (--out): one run at a time writes it, it says what made it, and a run continues
// in it only as the same run.
//   <out>/run.json: {"run_id": 16 hex digits, "command", "version", "commit", "options": every resolved option by
//     flag name, "may_change": the options a resumed run may give another value, "status": "running" | "finished"
//     | "failed: <message>", "started", "ended", "sessions": [one per start or resume: {"command_line", "device",
//     "precision", "threads", "pid", "started", "ended", "status"}]}; written when a session starts and ends.
//   <out>/.lock: held with flock() while a session writes the folder; the kernel drops it when the process dies,
//     so a killed run never blocks its own resume.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// How a command meets its --out folder.
enum class StartMode {
    fresh,            // the folder must hold no run (or --overwrite)
    resume,           // the folder must hold a run with the same meaning: continue it
    resume_or_fresh,  // continue the run there if there is one, else start one (scripts that run in stages)
};

struct RunDescription {
    std::string command;                  // "pretrain", "cl"
    nlohmann::json options;               // every resolved option that the command was given or defaulted
    std::vector<std::string> may_change;  // options a resumed run may give another value (threads, device...)
    std::vector<std::string> outputs;     // glob patterns, relative to the folder, of every file the command writes
    std::string device, precision;        // as resolved
};

class RunDirectory {
public:
    // Makes the folder, takes its lock (fails naming the pid of the run that holds it), removes the temporary
    // files a killed run left ("*.tmp.<pid>"), then by mode: a fresh start fails if the folder holds a run
    // (run.json or any output) unless overwrite, which deletes that run's files first; a resume fails without
    // run.json, and when an option outside may_change differs from the run's (naming each one). Writes run.json.
    // Under data parallelism only rank 0 touches the folder; every rank learns resuming() and run_id().
    RunDirectory(const std::string& dir, RunDescription description, StartMode mode, bool overwrite);
    ~RunDirectory();  // releases the lock
    RunDirectory(const RunDirectory&) = delete;
    RunDirectory& operator=(const RunDirectory&) = delete;

    bool resuming() const { return resuming_; }  // true when this session continues a recorded run
    uint64_t run_id() const { return run_id_; }
    const std::string& dir() const { return dir_; }
    // Records the session's end in run.json: "finished", or "failed: <message>" (a fresh run that failed before
    // writing any output removes its run.json instead: the folder holds no run).
    void finish(const std::string& status);

private:
    void open_as_root(StartMode mode, bool overwrite);  // the constructor's work on rank 0
    void take_lock();                                    // or fail, naming the process that holds it
    void read_record_to_resume(const std::string& record_path);  // or fail, naming what differs
    void write_record();
    std::vector<std::string> outputs_present() const;  // the files of description_.outputs in the folder

    std::string dir_;
    RunDescription description_;
    nlohmann::json record_;
    bool resuming_ = false, finished_ = false;
    uint64_t run_id_ = 0;
    int lock_fd_ = -1;
};

// A run id as run.json writes it: 16 hex digits.
std::string run_id_text(uint64_t run_id);

// The shortest decimal that reads back as value (0.001f -> 0.001, not 0.0010000000474974513): how run.json
// records float options.
double shortest_decimal(float value);

// The command line a run records (train.cu calls it with main's arguments; empty in tests).
void record_command_line(int argc, char** argv);

// The version and commit compiled in (Makefile: `git describe --always --dirty`, `git rev-parse HEAD`).
const char* clora_version();
const char* clora_commit();

// Runs body(run), recording "finished" when it returns and "failed: <message>" when it throws an Error.
template <class Body>
auto run_recorded(RunDirectory& run, Body body) {
    try {
        auto result = body();
        run.finish("finished");
        return result;
    } catch (const std::exception& error) {
        run.finish(std::string("failed: ") + error.what());
        throw;
    }
}
