#include "data/file_io.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

void fail(const std::string& message) { throw Error(message); }

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) fail(path + ": cannot open: " + std::strerror(errno));
    std::vector<uint8_t> bytes;
    uint8_t buffer[1 << 16];
    size_t count;
    while ((count = std::fread(buffer, 1, sizeof(buffer), file)) > 0) bytes.insert(bytes.end(), buffer, buffer + count);
    bool failed = std::ferror(file);
    std::fclose(file);
    if (failed) fail(path + ": read error");
    return bytes;
}

FileReader::FileReader(const std::string& path) : path(path) {
    struct stat info;  // a directory, a FIFO or a device (/dev/zero) is no file of a binary format
    if (stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) fail(path + ": not a regular file");
    bytes = read_file_bytes(path);
}

void FileReader::read(void* destination, size_t count, const char* what) {
    if (count > remaining())
        fail_here(std::string("truncated: ") + what + " needs " + std::to_string(count) + " bytes at offset " +
                  std::to_string(offset) + ", only " + std::to_string(remaining()) + " remain");
    if (count == 0) return;  // an empty array's destination may be null, which memcpy must not get
    std::memcpy(destination, bytes.data() + offset, count);
    offset += count;
}

void FileReader::expect_end() const {
    if (remaining() != 0) fail_here(std::to_string(remaining()) + " unexpected trailing bytes");
}

void FileReader::fail_here(const std::string& problem) const { fail(path + ": " + problem); }

void AtomicFileWriter::write(const void* source, size_t count) {
    if (count == 0) return;  // an empty array's source may be null
    const uint8_t* begin = static_cast<const uint8_t*>(source);
    bytes.insert(bytes.end(), begin, begin + count);
}

void AtomicFileWriter::commit() {
    if (seal) seal(bytes);
    std::string temporary = path + ".tmp." + std::to_string(getpid());
    FILE* file = std::fopen(temporary.c_str(), "wb");
    if (!file) fail(path + ": cannot write: " + std::strerror(errno));
    bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    ok = (std::fflush(file) == 0) && ok;
    ok = (fsync(fileno(file)) == 0) && ok;
    ok = (std::fclose(file) == 0) && ok;
    if (!ok) {
        std::remove(temporary.c_str());
        fail(path + ": write failed (disk full?)");
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        std::remove(temporary.c_str());
        fail(path + ": cannot rename temporary file: " + std::strerror(errno));
    }
}

bool file_exists(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0;
}

bool is_directory(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

void make_directories(const std::string& path) {
    if (path.empty() || is_directory(path)) return;
    const size_t slash = path.find_last_of('/');
    if (slash != std::string::npos && slash > 0) make_directories(path.substr(0, slash));
    if (mkdir(path.c_str(), 0777) != 0 && errno != EEXIST)
        fail(path + ": cannot create the directory: " + std::strerror(errno));
    if (!is_directory(path)) fail(path + ": exists and is not a directory");
}

std::vector<std::string> glob_files(const std::string& pattern) {
    glob_t matches;
    int status = glob(pattern.c_str(), 0, nullptr, &matches);
    std::vector<std::string> paths;
    if (status == 0)
        for (size_t i = 0; i < matches.gl_pathc; i++) paths.push_back(matches.gl_pathv[i]);
    globfree(&matches);
    if (paths.empty()) fail("no file matches '" + pattern + "'");
    std::sort(paths.begin(), paths.end());
    return paths;
}
