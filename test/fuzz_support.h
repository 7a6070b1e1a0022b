// Seeded mutation fuzzing of the file readers through the real `train` commands (test/test_fuzz.cpp): mutations of
// binary (llm.c-header) files and of text files, running one mutated input through a command, and sorting the
// outcome. Every outcome must be a clean error (exit 1, one line "error: ...") or a run that finishes; never a
// crash, an abort, a sanitizer report or a hang.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "data/llmc_header.h"
#include "data/random.h"
#include "test/run_command.h"
#include "test/test_support.h"

namespace fuzz {

// The project's splitmix64 (data/random.h), with the draws the mutations need.
struct Draws : ::Random {
    using ::Random::Random;
    size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
    bool chance(double p) { return uniform() < p; }
    template <typename T>
    const T& pick(const std::vector<T>& items) { return items[below(items.size())]; }
};

// Cases per format: `default_count`, or CLORA_FUZZ_CASES when set (thousands, for a long run).
inline int case_count(int default_count) {
    const char* text = std::getenv("CLORA_FUZZ_CASES");
    if (!text || !*text) return default_count;
    const int count = std::atoi(text);
    return count > 0 ? count : default_count;
}

// One mutated input. must_fail: the change can only be caught (an unsealed change to a sealed file: the checksum
// rejects it); otherwise the mutated input may also be accepted, with the same result or (for a change that makes
// another valid input) a different one.
struct Mutation {
    std::string description;
    std::vector<uint8_t> bytes;
    bool must_fail = false;
};

// Header values that probe a reader's bounds: 0, -1, 1, 2, small and huge, the int32 extremes.
inline int32_t probe_value(Draws& random, int32_t original) {
    const std::vector<int64_t> values = {0,          -1,        1,         2,          3,          7,
                                         128,        255,       256,       65535,      65536,      65537,
                                         1 << 20,    1 << 30,   INT32_MAX, INT32_MIN,  -2,
                                         int64_t(original) + 1, int64_t(original) - 1, int64_t(original) * 2,
                                         int64_t(original) * 256, 0x7FFF};
    return int32_t(uint32_t(uint64_t(random.pick(values))));
}

// A mutation of a file that starts with an llm.c header. header_slots: the slots its format reads (probed with
// probe_value). sealed: the original carries clora's checksum; then about half the mutations are re-sealed, so that
// the reader's own checks behind the checksum are exercised, and the others must be caught by the checksum.
inline Mutation mutate_llmc_file(const std::vector<uint8_t>& original, Draws& random,
                                 const std::vector<int>& header_slots, bool sealed) {
    const size_t header_bytes = LLMC_HEADER_INTS * sizeof(int32_t);
    Mutation m;
    m.bytes = original;
    std::string what;
    bool reseal = sealed && random.chance(0.5);
    switch (random.below(8)) {
        case 0: {  // truncation: anywhere, inside the header too
            const size_t length = random.chance(0.3) ? random.below(header_bytes + 1) : random.below(original.size());
            m.bytes.resize(length);
            what = "truncated to " + std::to_string(length) + " bytes";
            if (length < header_bytes) reseal = false;
            break;
        }
        case 1:
        case 2: {  // a few bit flips anywhere, or in the header
            const int flips = 1 + int(random.below(4));
            const size_t range = random.chance(0.5) ? header_bytes : original.size();
            what = std::to_string(flips) + " bit flips at";
            for (int f = 0; f < flips; f++) {
                const size_t bit = random.below(range * 8);
                m.bytes[bit / 8] ^= uint8_t(1u << (bit % 8));
                what += " " + std::to_string(bit);
            }
            break;
        }
        case 3:
        case 4: {  // a header field the format reads, set to a probe value
            const int slot = random.pick(header_slots);
            int32_t value;
            std::memcpy(&value, m.bytes.data() + slot * 4, 4);
            value = probe_value(random, value);
            std::memcpy(m.bytes.data() + slot * 4, &value, 4);
            what = "header[" + std::to_string(slot) + "] = " + std::to_string(value);
            if (sealed && random.chance(0.8)) reseal = true;
            break;
        }
        case 5: {  // a run of random bytes over the payload (or the header)
            const size_t start = random.below(original.size()), length = 1 + random.below(64);
            for (size_t i = start; i < std::min(original.size(), start + length); i++)
                m.bytes[i] = uint8_t(random.next());
            what = std::to_string(length) + " random bytes at " + std::to_string(start);
            break;
        }
        case 6: {  // trailing bytes
            const size_t extra = 1 + random.below(16);
            for (size_t i = 0; i < extra; i++) m.bytes.push_back(uint8_t(random.next()));
            what = std::to_string(extra) + " trailing bytes";
            break;
        }
        default: {  // random bytes of a random length, with the right magic (or none)
            m.bytes.assign(random.below(2 * header_bytes + 64), 0);
            for (uint8_t& b : m.bytes) b = uint8_t(random.next());
            if (m.bytes.size() >= 4 && random.chance(0.7)) std::memcpy(m.bytes.data(), original.data(), 4);
            what = "random bytes (" + std::to_string(m.bytes.size()) + ")";
            reseal = sealed && m.bytes.size() >= header_bytes && random.chance(0.5);
            break;
        }
    }
    if (reseal && m.bytes.size() >= header_bytes) seal_llmc_checksum(m.bytes);
    else reseal = false;
    m.must_fail = sealed && !reseal && m.bytes != original;
    m.description = what + (reseal ? ", re-sealed" : sealed ? ", not re-sealed" : " (unsealed file)");
    return m;
}

// Text probes for JSON and tokenizer files: numbers out of every range, wrong types, deep nesting, bad bytes.
inline std::string text_probe(Draws& random) {
    const std::vector<std::string> probes = {
        "1e999999", "-1e999999", "-1", "0", "18446744073709551616", "-9223372036854775809", "1.5", "null", "true",
        "[]", "{}", "\"\"", "\"\\u0000\"", "\"\\ud800\"", "\"\xFF\xFE\"", "\"\x1B[31m\"", "[[[[[[[[[[]]]]]]]]]]",
        std::string(100000, '['), "\"" + std::string(5000, 'a') + "\"", "\n", "\r\n", " ", "\xC3", "\x80",
        std::string(1, '\0')};
    return random.pick(probes);
}

// A mutation of a text file: truncation (at a line boundary too), deletion or duplication of a range, a probe
// inserted or replacing a token, byte flips, invalid UTF-8, control characters.
inline Mutation mutate_text(const std::string& original, Draws& random) {
    std::string text = original;
    std::string what;
    auto line_starts = [&]() {
        std::vector<size_t> starts = {0};
        for (size_t i = 0; i < text.size(); i++)
            if (text[i] == '\n') starts.push_back(i + 1);
        return starts;
    };
    switch (random.below(8)) {
        case 0: {
            const size_t length = random.below(text.size() + 1);
            text.resize(length);
            what = "truncated to " + std::to_string(length) + " bytes";
            break;
        }
        case 1: {
            const size_t cut = random.pick(line_starts());
            text.resize(cut);
            what = "cut at the line boundary " + std::to_string(cut);
            break;
        }
        case 2: {  // delete or duplicate a range of lines
            const std::vector<size_t> starts = line_starts();
            const size_t a = random.pick(starts), b = random.pick(starts);
            const size_t begin = std::min(a, b), end = std::max(a, b);
            if (random.chance(0.5)) {
                text.erase(begin, end - begin);
                what = "lines deleted at " + std::to_string(begin) + ".." + std::to_string(end);
            } else {
                text.insert(end, text.substr(begin, end - begin));
                what = "lines duplicated at " + std::to_string(begin) + ".." + std::to_string(end);
            }
            break;
        }
        case 3:
        case 4: {  // a probe replacing a number, a string or a token
            const std::string probe = text_probe(random);
            size_t at = random.below(text.size() + 1);
            size_t length = 0;
            while (at + length < text.size() && length < 12 && std::isalnum((unsigned char)text[at + length])) length++;
            text.replace(at, length, probe);
            what = "probe (" + std::to_string(probe.size()) + " bytes) at " + std::to_string(at);
            break;
        }
        case 5: {
            const int flips = 1 + int(random.below(3));
            what = std::to_string(flips) + " bit flips";
            for (int f = 0; f < flips && !text.empty(); f++) {
                const size_t bit = random.below(text.size() * 8);
                text[bit / 8] = char(uint8_t(text[bit / 8]) ^ uint8_t(1u << (bit % 8)));
            }
            break;
        }
        case 6: {
            const size_t at = random.below(text.size() + 1);
            const std::vector<std::string> bytes = {"\xFF", "\xC3", "\xED\xA0\x80", "\x1B", std::string(1, '\0'), "\r",
                                                    "\t", "\xE2\x80\xA8"};
            text.insert(at, random.pick(bytes));
            what = "a bad byte inserted at " + std::to_string(at);
            break;
        }
        default: {
            text.assign(random.below(256), ' ');
            for (char& c : text) c = char(random.next());
            what = "random bytes (" + std::to_string(text.size()) + ")";
            break;
        }
    }
    Mutation m;
    m.description = what;
    m.bytes.assign(text.begin(), text.end());
    return m;
}

// Writes bytes as they are (no seal, no atomic rename).
inline void put_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    FILE* file = std::fopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE((bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size()));
    REQUIRE(std::fclose(file) == 0);
}

inline std::string read_text(const std::string& path) {
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    return std::string(bytes.begin(), bytes.end());
}

// A shell word: the text in single quotes.
inline std::string quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// A fresh copy of directory `from` (made with the unmutated files) at `to`.
inline void copy_directory(const std::string& from, const std::string& to) {
    Run copy = run_command("rm -rf " + quoted(to) + " && cp -a " + quoted(from) + " " + quoted(to));
    INFO(copy.output);
    REQUIRE(copy.status == 0);
}

enum class Outcome { clean_error, identical, different, crash, hang, unclean };

// What one run did. identical / different: it finished (for `train verify`, also a verdict of FAIL with no error),
// and its result, as `result_of` extracts it from the output, is or is not the unmutated run's.
inline Outcome classify(const Run& run, const std::string& result, const std::string& baseline) {
    const std::string& out = run.output;
    for (const char* marker : {"Sanitizer", "runtime error:", "terminate called", "Segmentation", "Aborted",
                               "core dumped", "std::bad_alloc", "what():"})
        if (out.find(marker) != std::string::npos) return Outcome::crash;
    if (run.status == 124) return Outcome::hang;
    if (run.status != 0 && run.status != 1) return Outcome::crash;
    size_t error_lines = 0, at = 0;
    while ((at = out.find("error: ", at)) != std::string::npos) {
        if (at == 0 || out[at - 1] == '\n') error_lines++;
        at += 7;
    }
    if (run.status == 1 && error_lines == 1) return Outcome::clean_error;
    if (error_lines > 0) return Outcome::unclean;
    // exit 1 without an error is only `train verify`'s verdict on a valid input that computes something else
    if (run.status == 1 && out.find("verify: ") == std::string::npos) return Outcome::unclean;
    return result == baseline ? Outcome::identical : Outcome::different;
}

// Per-format counts, printed as one line each for the report.
struct Tally {
    std::string format;
    int cases = 0, clean_errors = 0, identical = 0, different = 0, crashes = 0, hangs = 0, unclean = 0;
    int must_fail = 0, must_fail_missed = 0;
    std::vector<std::string> failures;  // the description and output of each case that broke a rule

    void add(const Mutation& m, Outcome outcome, const Run& run) {
        cases++;
        switch (outcome) {
            case Outcome::clean_error: clean_errors++; break;
            case Outcome::identical: identical++; break;
            case Outcome::different: different++; break;
            case Outcome::crash: crashes++; break;
            case Outcome::hang: hangs++; break;
            case Outcome::unclean: unclean++; break;
        }
        if (m.must_fail) must_fail++;
        const bool missed = m.must_fail && outcome != Outcome::clean_error;
        if (missed) must_fail_missed++;
        if (missed || outcome == Outcome::crash || outcome == Outcome::hang || outcome == Outcome::unclean)
            failures.push_back(m.description + " -> status " + std::to_string(run.status) + ":\n" +
                               run.output.substr(run.output.size() > 3000 ? run.output.size() - 3000 : 0));
    }
    std::string line() const {
        char buffer[512];
        std::snprintf(buffer, sizeof(buffer),
                      "fuzz %-26s %5d cases: %5d clean errors, %4d identical, %4d other valid results, %d crashes, "
                      "%d hangs, %d unclean; %d/%d checksum-only cases caught",
                      format.c_str(), cases, clean_errors, identical, different, crashes, hangs, unclean,
                      must_fail - must_fail_missed, must_fail);
        return buffer;
    }
};

// Prints the tally's line and checks its rules: no crash, no hang, no unclean error, every must_fail caught.
inline void report(const Tally& tally) {
    std::printf("%s\n", tally.line().c_str());
    std::fflush(stdout);
    for (const std::string& failure : tally.failures) {
        INFO(failure);
        CHECK(false);
    }
    CHECK(tally.crashes == 0);
    CHECK(tally.hangs == 0);
    CHECK(tally.unclean == 0);
    CHECK(tally.must_fail_missed == 0);
}

}  // namespace fuzz
