// Text as Python sees it (data/python_text.h).
#include "data/python_text.h"

#include "data/utf8.h"

namespace python_text {
namespace {

// str.lower() of one code point, appended to out.
void append_lower(std::u32string& out, char32_t c) {
    const bool even = c % 2 == 0;
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) out += char32_t(c + 32);
    else if (c == 0x130) out += U"i\u0307";  // İ lowers to two code points
    else if (c >= 0x100 && c <= 0x137) out += even ? char32_t(c + 1) : c;
    else if (c >= 0x139 && c <= 0x148) out += even ? c : char32_t(c + 1);
    else if (c >= 0x14A && c <= 0x177) out += even ? char32_t(c + 1) : c;
    else if (c == 0x178) out += char32_t(0xFF);
    else if (c >= 0x179 && c <= 0x17E) out += even ? c : char32_t(c + 1);
    else if (c == 0x1E9E) out += char32_t(0xDF);
    else if (c >= 0x400 && c <= 0x40F) out += char32_t(c + 80);
    else if (c >= 0x410 && c <= 0x42F) out += char32_t(c + 32);
    else out += c;
}

}  // namespace

std::u32string decode_utf8(const std::string& text) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    std::u32string code_points;
    code_points.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        uint32_t code_point = 0;
        const size_t length = utf8_char_length(bytes + i, text.size() - i, &code_point);
        code_points += length ? char32_t(code_point) : char32_t(0xFFFD);  // an invalid byte: U+FFFD, as decoding
        i += length ? length : 1;                                         // with errors="replace" gives
    }
    return code_points;
}

std::string encode_utf8(const std::u32string& code_points) {
    std::string text;
    for (char32_t c : code_points) append_utf8(text, uint32_t(c));
    return text;
}

// What Python's str.split() with no argument splits on.
bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// Python's str.split(): the runs of non-whitespace.
std::vector<std::u32string> split_on_whitespace(const std::u32string& text) {
    std::vector<std::u32string> words;
    std::u32string word;
    for (char32_t c : text) {
        if (!is_python_space(c)) {
            word += c;
        } else if (!word.empty()) {
            words.push_back(word);
            word.clear();
        }
    }
    if (!word.empty()) words.push_back(word);
    return words;
}

std::u32string join(const std::vector<std::u32string>& words, char32_t separator) {
    std::u32string joined;
    for (size_t i = 0; i < words.size(); i++) {
        if (i > 0) joined += separator;
        joined += words[i];
    }
    return joined;
}

// Python's str.lower() for ASCII, Latin-1, Latin Extended-A, capital sharp s and basic Cyrillic.
std::u32string python_lower(const std::u32string& text) {
    std::u32string lowered;
    lowered.reserve(text.size());
    for (char32_t c : text) append_lower(lowered, c);
    return lowered;
}

}  // namespace python_text
