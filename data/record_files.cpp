#include "data/record_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "data/file_io.h"

void append_records(const std::string& path, const std::string& lines) {
    const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail(path + ": cannot open for appending: " + std::strerror(errno));
    size_t written = 0;
    while (written < lines.size()) {
        const ssize_t count = write(fd, lines.data() + written, lines.size() - written);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) {
            const int error = count < 0 ? errno : ENOSPC;
            close(fd);
            fail(path + ": cannot write: " + std::strerror(error));
        }
        written += size_t(count);
    }
    if (close(fd) != 0) fail(path + ": cannot write: " + std::strerror(errno));
}

namespace {

// Calls f(line) for each line of path that ends in a newline (a cut last line is left out), without the newline.
template <class Function>
void for_each_complete_line(const std::string& path, Function f) {
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    size_t start = 0;
    while (start < bytes.size()) {
        const void* newline = std::memchr(bytes.data() + start, '\n', bytes.size() - start);
        if (!newline) break;
        const size_t end = size_t(static_cast<const uint8_t*>(newline) - bytes.data());
        f(std::string(bytes.begin() + long(start), bytes.begin() + long(end)));
        start = end + 1;
    }
}

}  // namespace

void keep_records(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep) {
    if (!file_exists(path)) return;
    std::string kept;
    for_each_complete_line(path, [&](const std::string& line) {
        const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
        if (!record.is_discarded() && keep(record)) kept += line + "\n";
    });
    AtomicFileWriter writer(path);
    writer.write(kept.data(), kept.size());
    writer.commit();
}

std::vector<nlohmann::json> read_records(const std::string& path) {
    std::vector<nlohmann::json> records;
    if (!file_exists(path)) return records;
    for_each_complete_line(path, [&](const std::string& line) {
        nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
        if (!record.is_discarded()) records.push_back(std::move(record));
    });
    return records;
}
