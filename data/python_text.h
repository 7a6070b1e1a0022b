// Text as Python sees it, for the metrics that must score exactly as their Python originals (lora/task_metrics.h):
// code points (UTF-8 decoded as Python decodes with errors="replace"), Python's whitespace, str.split(),
// str.split(sep), " ".join() and str.lower(). In namespace python_text.
#pragma once
#include <string>
#include <vector>

namespace python_text {

// The code points of UTF-8 text; each invalid byte becomes U+FFFD.
std::u32string decode_utf8(const std::string& text);
std::string encode_utf8(const std::u32string& code_points);
// What Python's str.split() with no argument splits on.
bool is_python_space(char32_t c);
// Python's str.split(): the runs of non-whitespace.
std::vector<std::u32string> split_on_whitespace(const std::u32string& text);
// Python's separator.join(words).
std::u32string join(const std::vector<std::u32string>& words, char32_t separator);
// Python's str.lower() for ASCII, Latin-1, Latin Extended-A, capital sharp s and basic Cyrillic.
std::u32string python_lower(const std::u32string& text);

// Python's str.split(separator): n separators give n + 1 pieces, empty ones included.
template <typename String, typename Char>
std::vector<String> split_exactly(const String& text, Char separator) {
    std::vector<String> pieces(1);
    for (auto c : text) {
        if (c == separator) pieces.emplace_back();
        else pieces.back() += c;
    }
    return pieces;
}

}  // namespace python_text
