#include "data/utf8.h"

#include <cstdio>

bool is_valid_utf8(const std::string& text) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    for (size_t i = 0; i < text.size();) {
        const size_t length = utf8_char_length(bytes + i, text.size() - i);
        if (length == 0) return false;
        i += length;
    }
    return true;
}

void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
        out += char(code_point);
    } else if (code_point < 0x800) {
        out += char(0xC0 | (code_point >> 6));
        out += char(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += char(0xE0 | (code_point >> 12));
        out += char(0x80 | ((code_point >> 6) & 0x3F));
        out += char(0x80 | (code_point & 0x3F));
    } else {
        out += char(0xF0 | (code_point >> 18));
        out += char(0x80 | ((code_point >> 12) & 0x3F));
        out += char(0x80 | ((code_point >> 6) & 0x3F));
        out += char(0x80 | (code_point & 0x3F));
    }
}

std::string printable(const std::string& text, size_t max_bytes) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const size_t end = text.size() < max_bytes ? text.size() : max_bytes;
    std::string shown;
    auto escape_byte = [&](unsigned char byte) {
        char buffer[8];
        std::snprintf(buffer, sizeof(buffer), "\\x%02X", unsigned(byte));
        shown += buffer;
    };
    for (size_t i = 0; i < end;) {
        uint32_t code_point = 0;
        const size_t length = utf8_char_length(bytes + i, text.size() - i, &code_point);
        if (length == 0) {
            escape_byte(bytes[i++]);
        } else if (code_point == '\n') {
            shown += "\\n", i++;
        } else if (code_point == '\r') {
            shown += "\\r", i++;
        } else if (code_point == '\t') {
            shown += "\\t", i++;
        } else if (code_point < 0x20 || (code_point >= 0x7F && code_point < 0xA0)) {
            for (size_t k = 0; k < length; k++) escape_byte(bytes[i + k]);
            i += length;
        } else {
            shown.append(text, i, length);
            i += length;
        }
    }
    if (end < text.size()) shown += "...";
    return shown;
}
