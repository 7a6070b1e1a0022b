// File input/output shared by every format: one error type, checked reads that name the file, and
// atomic writes (a temporary file beside the target, then rename), so a file is written whole or not at all.
#pragma once
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

// Every user-facing failure (bad input, corrupt file, bad flag) is an Error with a message that says
// what and where. train.cu catches it, prints it and exits non-zero.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message);

// Reads a whole binary file into memory; fails with the path when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// A cursor over the bytes of one (regular) file: every read checks that enough bytes remain and fails with
// "<path>: truncated: ..." naming what was being read.
struct FileReader {
    std::string path;
    std::vector<uint8_t> bytes;
    size_t offset = 0;

    explicit FileReader(const std::string& path);
    size_t remaining() const { return bytes.size() - offset; }
    void read(void* destination, size_t count, const char* what);
    template <typename T>
    std::vector<T> read_array(size_t count, const char* what) {
        std::vector<T> values(count);
        read(values.data(), count * sizeof(T), what);
        return values;
    }
    // Fails unless every byte has been consumed ("<path>: N unexpected trailing bytes").
    void expect_end() const;
    [[noreturn]] void fail_here(const std::string& problem) const;
};

// Collects the bytes of a file and commits them atomically: write to "<path>.tmp.<pid>", flush, rename.
struct AtomicFileWriter {
    std::string path;
    std::vector<uint8_t> bytes;
    // Applied to the whole file's bytes by commit(), just before they are written: write_llmc_header sets it to
    // seal the file with its checksum (data/llmc_header.h). None by default.
    void (*seal)(std::vector<uint8_t>& bytes) = nullptr;

    explicit AtomicFileWriter(const std::string& path) : path(path) {}
    void write(const void* source, size_t count);
    template <typename T>
    void write_array(const std::vector<T>& values) { write(values.data(), values.size() * sizeof(T)); }
    void commit();  // fails with the path if the directory is missing or the disk is full
};

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// mkdir -p: creates the directory and its missing parents; fails naming the path.
void make_directories(const std::string& path);
// Files matching a glob pattern, sorted; fails naming the pattern when nothing matches.
std::vector<std::string> glob_files(const std::string& pattern);
