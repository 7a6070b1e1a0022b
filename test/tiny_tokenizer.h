// A tiny GPT-2-style tokenizer written by the tests (test_tokenizer.cpp, test_fuzz.cpp): token b = byte b for all
// 256 bytes, then six merges (rank order) and <|endoftext|>, 263 tokens in all:
//   256 "aa" = a+a, 257 "aaaa" = aa+aa, 258 "Ġt" = Ġ+t, 259 "he" = h+e, 260 "Ġthe" = Ġt+he, 261 "ĠĠ" = Ġ+Ġ,
//   262 <|endoftext|>
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/file_io.h"
#include "data/tokenizer.h"

const int TINY_EOT = 262;

// The symbol of a byte in GPT-2's byte-to-unicode alphabet, as encoder.json writes it ("Ġ" for a space).
inline std::string byte_symbol(unsigned char byte) {
    const int code_point = gpt2_bytes_to_unicode()[byte];  // at most U+0143: one or two UTF-8 bytes
    std::string out;
    if (code_point < 0x80) {
        out += char(code_point);
    } else {
        out += char(0xC0 | (code_point >> 6));
        out += char(0x80 | (code_point & 0x3F));
    }
    return out;
}

// The tiny tokenizer's files: {encoder.json, vocab.bpe}.
inline std::pair<std::string, std::string> tiny_tokenizer_files() {
    nlohmann::json encoder = nlohmann::json::object();
    for (int b = 0; b < 256; b++) encoder[byte_symbol(b)] = b;
    const std::string space = byte_symbol(' ');
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"a", "a"}, {"aa", "aa"}, {space, "t"}, {"h", "e"}, {space + "t", "he"}, {space, space}};
    std::string bpe = "#version: 0.2\n";
    int id = 256;
    for (const auto& [left, right] : merges) {
        encoder[left + right] = id++;
        bpe += left + " " + right + "\n";
    }
    encoder["<|endoftext|>"] = id;
    return {encoder.dump(), bpe};
}

// Writes encoder.json and vocab.bpe into dir (created if missing); returns dir.
inline std::string write_tiny_tokenizer(const std::string& dir) {
    make_directories(dir);
    const auto [encoder, bpe] = tiny_tokenizer_files();
    for (const auto& [name, text] : {std::make_pair(std::string("/encoder.json"), encoder),
                                     std::make_pair(std::string("/vocab.bpe"), bpe)}) {
        AtomicFileWriter writer(dir + name);
        writer.write(text.data(), text.size());
        writer.commit();
    }
    return dir;
}
