#include "model/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "model/distributed.h"

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const long s = std::lround(seconds);
    char text[32];
    if (s < 60) std::snprintf(text, sizeof(text), "%lds", s);
    else if (s < 3600) std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
    else std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, s / 60 % 60);
    return text;
}

std::string progress_text(const std::string& label, long done, long total, const std::string& detail,
                          double elapsed_seconds) {
    std::string text = label;
    if (!detail.empty()) text += " | " + detail;
    if (total > 0) {
        text += " | " + std::to_string(100 * done / total) + "%";
        if (done > 0 && done < total)
            text += " | ETA " + format_duration(elapsed_seconds / double(done) * double(total - done));
    }
    return text;
}

bool progress_on_terminal() {
    if (const char* forced = std::getenv("CLORA_PROGRESS")) return std::string(forced) == "1";
    // under a launcher (mpirun, srun) stdout may be the launcher's pseudo-terminal whatever its own output is
    if (distributed().launched) return false;
    return isatty(fileno(stdout)) != 0;
}

Progress::Progress(std::string label, long total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), started_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::update(long done, const std::string& detail) {
    done_ = done;
    detail_ = detail;
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw();
}

void Progress::print(const std::string& line) {
    const bool was_drawn = drawn_;
    clear();
    std::printf("%s\n", line.c_str());
    if (was_drawn) draw();
    std::fflush(stdout);
}

void Progress::finish() {
    clear();
    enabled_ = false;
}

void Progress::draw() {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    // \r: back to the line's start; \033[K: erase what the previous, longer text left
    std::printf("\r%s\033[K", progress_text(label_, done_, total_, detail_, elapsed).c_str());
    std::fflush(stdout);
    drawn_ = true;
}

void Progress::clear() {
    if (!enabled_ || !drawn_) return;
    std::printf("\r\033[K");
    std::fflush(stdout);
    drawn_ = false;
}
