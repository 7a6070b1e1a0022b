// Text files -> GPT-2 token shards: input expansion, Gutenberg boilerplate removal, the train/validation split
// and the shard writers (see tokenize_text.h for the rules).
#include "data/tokenize_text.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "data/file_io.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace {

std::vector<std::string> list_directory(const std::string& dir) {
    DIR* handle = opendir(dir.c_str());
    if (!handle) fail(dir + ": cannot list the directory: " + std::strerror(errno));
    std::vector<std::string> names;
    while (dirent* entry = readdir(handle)) names.push_back(entry->d_name);
    closedir(handle);
    std::sort(names.begin(), names.end());
    return names;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string with_commas(size_t value) {
    std::string digits = std::to_string(value), out;
    for (size_t i = 0; i < digits.size(); i++) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// A line [begin, end) without its trailing "\r" and spaces.
struct Line {
    size_t begin, end, next;  // next: the start of the following line
};

std::vector<Line> split_lines(const std::string& text) {
    std::vector<Line> lines;
    for (size_t start = 0; start < text.size();) {
        size_t newline = text.find('\n', start);
        size_t stop = newline == std::string::npos ? text.size() : newline;
        size_t next = newline == std::string::npos ? text.size() : newline + 1;
        size_t end = stop;
        while (end > start && (text[end - 1] == '\r' || text[end - 1] == ' ' || text[end - 1] == '\t')) end--;
        lines.push_back({start, end, next});
        start = next;
    }
    return lines;
}

// Whether the line starts with "***", optional spaces, then the marker ("START OF" / "END OF").
bool is_marker_line(const std::string& text, const Line& line, const char* marker) {
    if (line.end - line.begin < 3 || text.compare(line.begin, 3, "***") != 0) return false;
    size_t position = line.begin + 3;
    while (position < line.end && text[position] == ' ') position++;
    const size_t length = std::strlen(marker);
    return position + length <= line.end && text.compare(position, length, marker) == 0;
}

bool line_ends_with_stars(const std::string& text, const Line& line) {
    return line.end - line.begin >= 3 && text.compare(line.end - 3, 3, "***") == 0;
}

// The tokens of one split, written as shards of at most shard_tokens.
struct ShardSink {
    std::string out_dir, split;
    size_t shard_tokens;
    bool quiet;
    std::vector<uint16_t> buffer;
    std::vector<std::string> paths;
    size_t total = 0;

    void add(const int* ids, size_t count) {
        total += count;
        while (count > 0) {
            size_t take = std::min(count, shard_tokens - buffer.size());
            buffer.insert(buffer.end(), ids, ids + take);
            ids += take;
            count -= take;
            if (buffer.size() == shard_tokens) flush();
        }
    }

    void flush() {
        if (buffer.empty()) return;
        char name[64];
        std::snprintf(name, sizeof(name), "/%s_%06zu.bin", split.c_str(), paths.size());
        const std::string path = out_dir + name;
        write_token_shard(path, buffer);
        if (!quiet) std::printf("tokenize: wrote %s: %s tokens\n", path.c_str(), with_commas(buffer.size()).c_str());
        std::fflush(stdout);
        paths.push_back(path);
        buffer.clear();
    }

    // Removes <split>_NNNNNN.bin files of this split beyond the ones just written (left by an earlier run).
    void remove_stale_shards() {
        for (const std::string& name : list_directory(out_dir)) {
            const std::string prefix = split + "_";
            if (name.size() != prefix.size() + 6 + 4 || name.compare(0, prefix.size(), prefix) != 0 ||
                !ends_with(name, ".bin"))
                continue;
            const std::string digits = name.substr(prefix.size(), 6);
            if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
            if (size_t(std::stoul(digits)) < paths.size()) continue;
            const std::string path = out_dir + "/" + name;
            if (std::remove(path.c_str()) != 0)
                fail(path + ": cannot remove this stale shard: " + std::strerror(errno));
            if (!quiet) std::printf("tokenize: removed stale %s (from an earlier run)\n", path.c_str());
        }
    }
};

}  // namespace

std::vector<std::string> expand_text_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> files;
    for (const std::string& input : inputs) {
        if (is_directory(input)) {
            size_t before = files.size();
            for (const std::string& name : list_directory(input))
                if (ends_with(name, ".txt") && !is_directory(input + "/" + name)) files.push_back(input + "/" + name);
            if (files.size() == before) fail(input + ": the directory holds no .txt file");
        } else if (input.find_first_of("*?[") != std::string::npos) {
            for (const std::string& path : glob_files(input)) files.push_back(path);
        } else {
            if (!file_exists(input)) fail(input + ": no such file");
            files.push_back(input);
        }
    }
    return files;
}

std::string strip_gutenberg_boilerplate(const std::string& text, bool* stripped) {
    if (stripped) *stripped = false;
    const std::vector<Line> lines = split_lines(text);
    size_t start_line = lines.size();
    for (size_t i = 0; i < lines.size(); i++)
        if (is_marker_line(text, lines[i], "START OF")) {
            start_line = i;
            break;
        }
    if (start_line == lines.size()) return text;
    // The marker ends with "***", possibly on one of the next lines when the title wraps.
    size_t body_line = start_line + 1;
    if (!line_ends_with_stars(text, lines[start_line]))
        for (size_t i = start_line + 1; i < lines.size() && i <= start_line + 3; i++)
            if (line_ends_with_stars(text, lines[i])) {
                body_line = i + 1;
                break;
            }
    size_t end_line = lines.size();
    for (size_t i = body_line; i < lines.size(); i++)
        if (is_marker_line(text, lines[i], "END OF")) {
            end_line = i;
            break;
        }
    if (end_line == lines.size()) return text;
    size_t begin = body_line < lines.size() ? lines[body_line].begin : text.size();
    size_t end = lines[end_line].begin;
    auto trim = [&] {
        while (begin < end && (text[begin] == '\n' || text[begin] == '\r')) begin++;
        while (end > begin && (text[end - 1] == '\n' || text[end - 1] == '\r')) end--;
    };
    trim();
    // The closing "End of (the) Project Gutenberg('s) EBook of ..." line, when it is among the last 3 lines.
    for (const char* closing : {"\nEnd of the Project Gutenberg", "\nEnd of Project Gutenberg"}) {
        const size_t found = text.rfind(closing, end);
        if (found == std::string::npos || found < begin || found + std::strlen(closing) > end) continue;
        if (std::count(text.begin() + found + 1, text.begin() + end, '\n') <= 2) {
            end = found;
            trim();
            break;
        }
    }
    if (stripped) *stripped = true;
    return text.substr(begin, end - begin);
}

bool split_whole_documents(size_t count, double val_fraction) {
    return std::floor(double(count) * val_fraction) >= 1.0;
}

bool is_validation_document(size_t index, double val_fraction) {
    return std::floor(double(index + 1) * val_fraction) > std::floor(double(index) * val_fraction);
}

TokenizeResult run_tokenize(const TokenizeOptions& options) {
    if (options.inputs.empty()) fail("tokenize: no input files given");
    if (options.out_dir.empty()) fail("tokenize: no output directory given");
    if (options.tokenizer_dir.empty()) fail("tokenize: no tokenizer directory given");
    if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0))
        fail("tokenize: the validation fraction must be in [0, 1), got " + std::to_string(options.val_fraction));
    if (options.shard_tokens < 1 || options.shard_tokens > size_t(INT32_MAX))
        fail("tokenize: tokens per shard must be in [1, 2^31 - 1], got " + std::to_string(options.shard_tokens));
    const auto started = std::chrono::steady_clock::now();

    GPT2Tokenizer tokenizer;
    tokenizer.load_dir(options.tokenizer_dir);
    if (tokenizer.vocab_size() > 65536)
        fail(options.tokenizer_dir + ": a vocabulary of " + std::to_string(tokenizer.vocab_size()) +
             " tokens does not fit the uint16 tokens of llm.c shards");
    const std::vector<std::string> files = expand_text_inputs(options.inputs);
    make_directories(options.out_dir);

    const bool whole_documents = split_whole_documents(files.size(), options.val_fraction);
    ShardSink train{options.out_dir, "train", options.shard_tokens, options.quiet, {}, {}, 0};
    ShardSink val{options.out_dir, "val", options.shard_tokens, options.quiet, {}, {}, 0};
    TokenizeResult result;
    std::vector<int> ids;
    for (size_t index = 0; index < files.size(); index++) {
        const std::vector<uint8_t> bytes = read_file_bytes(files[index]);
        std::string text(bytes.begin(), bytes.end());
        result.input_bytes += text.size();
        if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
        if (options.normalize_newlines) {
            size_t out = 0;
            for (size_t i = 0; i < text.size(); i++)
                if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) text[out++] = text[i];
            text.resize(out);
        }
        if (options.strip_gutenberg) {
            bool stripped = false;
            text = strip_gutenberg_boilerplate(text, &stripped);
            result.gutenberg_stripped += stripped;
        }
        ids.clear();
        ids.push_back(tokenizer.eot_token);
        tokenizer.encode_append(text.data(), text.size(), ids);
        result.documents++;
        if (whole_documents) {
            (is_validation_document(index, options.val_fraction) ? val : train).add(ids.data(), ids.size());
        } else {
            const size_t val_count = size_t(std::ceil(options.val_fraction * double(ids.size())));
            train.add(ids.data(), ids.size() - val_count);
            val.add(ids.data() + ids.size() - val_count, val_count);
        }
    }
    train.flush();
    val.flush();
    train.remove_stale_shards();
    val.remove_stale_shards();

    result.train_tokens = train.total;
    result.val_tokens = val.total;
    result.train_shards = train.paths;
    result.val_shards = val.paths;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!options.quiet) {
        std::printf("tokenize: %zu documents (%zu Gutenberg bodies cut out), %.1f MB of text -> %s train + %s val "
                    "tokens (%s split) in %.1f s, %.2f M tokens/s\n",
                    result.documents, result.gutenberg_stripped, double(result.input_bytes) / 1e6,
                    with_commas(result.train_tokens).c_str(), with_commas(result.val_tokens).c_str(),
                    whole_documents ? "whole-document" : "per-document tail", seconds,
                    double(result.train_tokens + result.val_tokens) / 1e6 / std::max(seconds, 1e-9));
        std::fflush(stdout);
    }
    return result;
}
