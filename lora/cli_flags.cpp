// The flags of `train`'s commands (lora/cli_flags.h).
#include "lora/cli_flags.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "data/file_io.h"
#include "model/cpu/threads.h"

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); j++) row[j] = j;
    for (size_t i = 1; i <= a.size(); i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); j++) {
            const size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string number_text(double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value);
    return text;
}

std::string NumberRange::text() const {
    if (high == HUGE_VAL) return std::string(low_open ? "> " : ">= ") + number_text(low);
    return "in " + std::string(low_open ? "(" : "[") + number_text(low) + ", " + number_text(high) +
           (high_open ? ")" : "]");
}

float parse_real(const std::string& name, const std::string& value, NumberRange range) {
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') fail("--" + name + " '" + value + "': expected a number");
    if (!std::isfinite(number) || !std::isfinite(float(number)) || !range.contains(number))
        fail("--" + name + " " + value + ": expected a finite number " + range.text());
    return float(number);
}

long long parse_integer(const std::string& name, const std::string& value, long long low, long long high) {
    char* end = nullptr;
    errno = 0;
    const long long number = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0') fail("--" + name + " '" + value + "': expected an integer");
    if (errno == ERANGE || number < low || number > high)
        fail("--" + name + " " + value + ": expected an integer " +
             (high == LLONG_MAX || high == INT_MAX ? ">= " + std::to_string(low)
                                                   : "from " + std::to_string(low) + " to " + std::to_string(high)));
    return number;
}

std::string parse_choice(const std::string& name, const std::string& value, const std::vector<std::string>& choices) {
    std::string listed;
    for (const std::string& choice : choices) {
        if (value == choice) return value;
        listed += (listed.empty() ? "" : ", ") + choice;
    }
    fail("--" + name + " '" + value + "': expected one of " + listed);
}

std::string one_of(Flags& flags, const std::string& name, const std::vector<std::string>& choices) {
    return parse_choice(name, flags.text(name), choices);
}

Flags::Flag* Flags::find(const std::string& name) {
    for (Flag& flag : flags)
        if (flag.name == name) return &flag;
    return nullptr;
}

void Flags::print_help() const {
    std::printf("%s\n\nflags (--name VALUE or --name=VALUE):\n", usage.c_str());
    for (const Flag& flag : flags)
        std::printf("  --%-24s %s%s\n", (flag.name + (flag.is_switch ? "" : " " + metavar(flag))).c_str(),
                    flag.help.c_str(),
                    flag.is_switch || flag.value.empty() ? "" : (" (default " + flag.value + ")").c_str());
    std::printf("  --%-24s %s\n", "help", "show this help");
}

// What a flag's value is, for --help: the flag's own metavar if it has one, else PATH, LIST, SPEC (L:C:NH:V:maxT),
// CHOICE (the help names them), N or FLOAT (from the default, for the numeric flags).
std::string Flags::metavar(const Flag& flag) {
    if (!flag.metavar.empty()) return flag.metavar;
    static const std::map<std::string, std::string> named = {
        {"train", "PATH"},      {"val", "PATH"},          {"init", "PATH"},         {"out", "PATH"},
        {"model", "PATH"},      {"state", "PATH"},        {"benchmark", "PATH"},    {"base", "PATH"},
        {"tokenizer", "PATH"},  {"hf", "PATH"},           {"adapters", "PATH"},     {"input", "PATH"},
        {"method", "LIST"},     {"lora-modules", "LIST"}, {"order", "LIST"},        {"model-config", "SPEC"},
        {"base-config", "SPEC"}, {"threads", "N|auto"},   {"lora-rank", "N"},       {"epochs", "N"},
        {"lr", "FLOAT"}};
    const auto found = named.find(flag.name);
    if (found != named.end()) return found->second;
    const std::string& value = flag.value;
    if (value.empty() || value.find_first_not_of("0123456789.e-+") != std::string::npos) return "CHOICE";
    return value.find_first_not_of("0123456789") == std::string::npos ? "N" : "FLOAT";
}

// The closest flag name within two edits of `name`, or "" (for "did you mean").
std::string Flags::closest(const std::string& name) const {
    std::string best;
    size_t best_distance = 3;
    for (const Flag& flag : flags) {
        const size_t distance = edit_distance(name, flag.name);
        if (distance < best_distance) best = flag.name, best_distance = distance;
    }
    return best;
}

bool Flags::parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; i++) {
        std::string argument = argv[i];
        if (argument == "--help" || argument == "-h") {
            print_help();
            return false;
        }
        if (argument.rfind("--", 0) != 0) fail("unexpected argument '" + argument + "' (flags start with --)");
        // --name=value or --name value
        const size_t equals = argument.find('=');
        const std::string name = argument.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
        Flag* flag = find(name);
        if (!flag) {
            const std::string guess = closest(name);
            fail("unknown flag '--" + name + "'" + (guess.empty() ? "" : " (did you mean --" + guess + "?)") +
                 " (see --help)");
        }
        if (flag->is_switch) {
            if (equals != std::string::npos) fail("flag '--" + name + "' takes no value");
            flag->value = "1";
            continue;
        }
        if (equals != std::string::npos) {
            flag->value = argument.substr(equals + 1);
        } else {
            if (i + 1 >= argc) fail("flag '" + argument + "' needs a value");
            flag->value = argv[++i];
        }
        flag->values.push_back(flag->value);
    }
    return true;
}

const char* const PRECISION_HELP = "matrix products on CUDA: bf16 (mixed precision), fp32, or auto (bf16 on CUDA, "
                                   "fp32 on the CPU)";

const char* const THREADS_HELP = "CPU threads: a count, or auto (OMP_NUM_THREADS, else every core)";

void apply_threads(Flags& flags) {
    const std::string value = flags.text("threads");
    if (value == "auto") return;
    char* end = nullptr;
    const long count = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || count < 1 || count > 4096)
        fail("--threads '" + value + "': expected a positive count or auto");
    cpu::set_cpu_threads(int(count));
}

void add_device_flags(Flags& flags, const std::string& device, bool with_precision) {
    flags.add("device", device, "cpu, cuda or auto");
    flags.add("threads", "auto", THREADS_HELP);
    if (with_precision) flags.add("precision", "auto", PRECISION_HELP);
}

void add_run_flags(Flags& flags, const std::string& resume_help) {
    flags.add_switch("resume", resume_help + " (an error when --out holds no run)");
    flags.add_switch("resume-or-start", "resume the run in --out if there is one, else start it (runs in stages)");
    flags.add_switch("overwrite", "start afresh even when --out holds a run (its files are deleted)");
}

void apply_run_flags(Flags& flags, StartMode& start, bool& overwrite) {
    const bool resume = flags.on("resume"), resume_or_start = flags.on("resume-or-start");
    overwrite = flags.on("overwrite");
    if (int(resume) + int(resume_or_start) + int(overwrite) > 1)
        fail("give one of --resume, --resume-or-start and --overwrite");
    start = resume ? StartMode::resume : resume_or_start ? StartMode::resume_or_fresh : StartMode::fresh;
}
