// A live progress line for one phase of work (pretraining, one task's training, one evaluation), drawn only on a
// terminal, and redrawn in place:
//
//     seqlora task 2/4 amazon | step 50/1008 | loss 0.4123 | 2345 tok/s | 4% | ETA 5m12s
//
// Off a terminal (a log file, a pipe, a process of mpirun or srun) it draws nothing, and the log lines the commands print are the whole output.
// print() writes a log line above the live line, so the two never mix. CLORA_PROGRESS=1 (or 0) forces the line on
// (or off) whatever stdout is, e.g. for a recording.
#pragma once
#include <chrono>
#include <string>

// "42s", "5m12s", "2h03m": a duration as a person reads it (negative or not finite: "?").
std::string format_duration(double seconds);

// The live line's text: the label, the detail (loss, tok/s, ...), then the percentage and the time left, estimated
// from the mean pace so far (none before the first step is done).
std::string progress_text(const std::string& label, long done, long total, const std::string& detail,
                          double elapsed_seconds);

// Whether a live line is drawn for this process: CLORA_PROGRESS when set, else whether stdout is a terminal and
// the process was not started by a launcher (whose pseudo-terminal may stand for a log file).
bool progress_on_terminal();

class Progress {
  public:
    // enabled: usually progress_on_terminal() && the process prints at all (rank 0, not --quiet)
    Progress(std::string label, long total, bool enabled);
    ~Progress();  // clears the line
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Redraws the line with `done` of the total finished (at most ten times a second, and always at the end).
    void update(long done, const std::string& detail = "");
    // Prints a log line (without its newline) above the live line.
    void print(const std::string& line);
    void finish();  // clears the line; nothing is drawn after it

  private:
    void draw();
    void clear();

    std::string label_, detail_;
    long total_, done_ = 0;
    bool enabled_, drawn_ = false;
    std::chrono::steady_clock::time_point started_, last_draw_;
};
