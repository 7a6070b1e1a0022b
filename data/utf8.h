// UTF-8: the length of one well-formed character, whether a string is valid UTF-8, and printable(): text from a
// file or a path made safe to put in an error message (control characters and invalid bytes escaped).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

// The length of the well-formed UTF-8 character at p (Unicode's definition: no overlong forms, no surrogates,
// nothing above U+10FFFF), or 0 if the bytes there do not start one. Decodes it into *code_point.
inline size_t utf8_char_length(const unsigned char* p, size_t available, uint32_t* code_point = nullptr) {
    const unsigned char b0 = p[0];
    size_t length;
    uint32_t value;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (b0 < 0x80) {
        if (code_point) *code_point = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        length = 2, value = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3, value = b0 & 0x0F;
        if (b0 == 0xE0) low = 0xA0;   // overlong
        if (b0 == 0xED) high = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4, value = b0 & 0x07;
        if (b0 == 0xF0) low = 0x90;   // overlong
        if (b0 == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
        return 0;
    }
    if (available < length) return 0;
    if (p[1] < low || p[1] > high) return 0;
    value = (value << 6) | (p[1] & 0x3F);
    for (size_t i = 2; i < length; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        value = (value << 6) | (p[i] & 0x3F);
    }
    if (code_point) *code_point = value;
    return length;
}

bool is_valid_utf8(const std::string& text);

// Appends the UTF-8 bytes of one code point (at most U+10FFFF) to out.
void append_utf8(std::string& out, uint32_t code_point);

// The text with every byte that would not print as itself escaped: \n, \r, \t, \\x1B for the other control
// characters (C0, DEL, and C1 as their UTF-8 bytes), \\xFF for each byte of invalid UTF-8. Valid printable UTF-8
// (accents, CJK, emoji) is kept. Cut to max_bytes of input, marked "...".
std::string printable(const std::string& text, size_t max_bytes = 200);
