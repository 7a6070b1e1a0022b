// The flags of `train`'s commands: declared with defaults and help, parsed from argv (--name VALUE or
// --name=VALUE; unknown flags, missing or malformed values are errors naming the flag), and the flags several
// commands share (--threads, --precision, --resume / --resume-or-start / --overwrite). train.cu declares each
// command's own flags; `train cl`'s are in lora/cl_flags.h.
#pragma once
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "model/run_directory.h"

// Levenshtein distance: the fewest insertions, deletions and substitutions that turn a into b.
size_t edit_distance(const std::string& a, const std::string& b);

// A number as a user would type it in a flag's default: 0.5, not 0.500000.
std::string number_text(double value);

// Where a number flag's value must lie, e.g. NumberRange::positive().
struct NumberRange {
    double low, high;
    bool low_open, high_open;  // is the bound itself excluded
    static NumberRange positive() { return {0, HUGE_VAL, true, false}; }
    static NumberRange non_negative() { return {0, HUGE_VAL, false, false}; }
    static NumberRange unit() { return {0, 1, false, false}; }              // [0, 1]
    static NumberRange below_one() { return {0, 1, false, true}; }          // [0, 1)
    static NumberRange above_zero_to_one() { return {0, 1, true, false}; }  // (0, 1]
    bool contains(double x) const { return (low_open ? x > low : x >= low) && (high_open ? x < high : x <= high); }
    std::string text() const;  // "> 0", "in [0, 1)" ...
};

// A flag's value read as a number, an integer or a choice; anything else fails naming the flag (--name).
float parse_real(const std::string& name, const std::string& value, NumberRange range);
// An integer in [low, high]: text, a value beyond long long or out of range fails, so a value never wraps around on
// its way into an int.
long long parse_integer(const std::string& name, const std::string& value, long long low = 0,
                        long long high = INT_MAX);
std::string parse_choice(const std::string& name, const std::string& value, const std::vector<std::string>& choices);

class Flags {
public:
    struct Flag {
        std::string name, value, help;
        bool is_switch;
        bool repeatable = false;
        std::vector<std::string> values;  // every occurrence, for repeatable flags
        std::string metavar;              // what the value is, for --help; "": from the name or the default
    };

    explicit Flags(std::string usage) : usage(std::move(usage)) {}
    void add(const std::string& name, const std::string& default_value, const std::string& help,
             const std::string& metavar = "") {
        flags.push_back({name, default_value, help, false, false, {}, metavar});
    }
    void add_switch(const std::string& name, const std::string& help) {
        flags.push_back({name, "", help, true, false, {}, ""});
    }
    void add_repeatable(const std::string& name, const std::string& help) {
        flags.push_back({name, "", help, false, true, {}, ""});
    }
    // Returns false when --help was asked for (help printed).
    bool parse(int argc, char** argv, int first);
    void print_help() const;

    std::string text(const std::string& name) { return find(name)->value; }
    const std::vector<std::string>& all(const std::string& name) { return find(name)->values; }
    bool on(const std::string& name) { return find(name)->value == "1"; }
    long long integer(const std::string& name, long long low = 0, long long high = INT_MAX) {
        return parse_integer(name, text(name), low, high);
    }
    int count(const std::string& name, int low) { return int(integer(name, low, INT_MAX)); }
    // A number flag, finite and within range; fails naming the flag otherwise.
    float real(const std::string& name, NumberRange range) { return parse_real(name, text(name), range); }

private:
    std::string usage;
    std::vector<Flag> flags;

    Flag* find(const std::string& name);
    static std::string metavar(const Flag& flag);
    std::string closest(const std::string& name) const;
};

// A flag whose value must be one of `choices`.
std::string one_of(Flags& flags, const std::string& name, const std::vector<std::string>& choices);

// --precision of `train pretrain` and `train cl` (model/precision.h)
extern const char* const PRECISION_HELP;
// --threads of the commands that compute (model/cpu/threads.h), and setting it
extern const char* const THREADS_HELP;
void apply_threads(Flags& flags);
// --device (default `device`), --threads and, with_precision, --precision: the commands that compute
void add_device_flags(Flags& flags, const std::string& device, bool with_precision = true);
// --resume, --resume-or-start and --overwrite of the commands that write a run folder (model/run_directory.h)
void add_run_flags(Flags& flags, const std::string& resume_help);
void apply_run_flags(Flags& flags, StartMode& start, bool& overwrite);
