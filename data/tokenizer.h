// The GPT-2 byte-level BPE tokenizer, as OpenAI's encoder.py defines it: text (UTF-8 bytes) is cut into
// pre-tokens by GPT-2's regex, each pre-token's bytes become symbols of the byte-to-unicode alphabet, and
// the merges of vocab.bpe are applied by rank (lowest first) until none applies; encoder.json gives the ids.
//
// Byte-level: every byte string encodes, and decode(encode(bytes)) == bytes, also for invalid UTF-8 (runs
// of invalid bytes are pre-tokens of their own; the regex sees only the valid UTF-8 between them).
// The regex runs in PCRE2 (UTF + Unicode properties, JIT-compiled when PCRE2 has a JIT); its \p{L} and \p{N}
// follow the Unicode version of the system's PCRE2 (14.0 on Debian 12), so characters first assigned in a
// later version count as punctuation here, whereas Python's `regex` may know them as letters.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

struct GPT2Tokenizer {
    static constexpr const char* EOT_TEXT = "<|endoftext|>";
    int eot_token = -1;  // the id of "<|endoftext|>" (50256 for GPT-2), set by load()

    GPT2Tokenizer();
    ~GPT2Tokenizer();
    GPT2Tokenizer(GPT2Tokenizer&&) noexcept;
    GPT2Tokenizer& operator=(GPT2Tokenizer&&) noexcept;

    // Reads and checks encoder.json (an object of token -> id: ids unique and 0..N-1, every token made of
    // byte-to-unicode characters, all 256 single bytes and "<|endoftext|>" present) and vocab.bpe
    // ("#version: 0.2", then one merge "A B" per line, both sides and their concatenation in the encoder; each
    // merge makes a different token, and there are N - 256 - 1 of them: one per token that is neither a byte nor
    // <|endoftext|>). Fails with "<path>: <problem>" (missing file, malformed JSON, bad merges line, wrong
    // header, too few or too many merges...), with bytes that would not print escaped.
    void load(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
    // load(dir + "/encoder.json", dir + "/vocab.bpe").
    void load_dir(const std::string& dir);
    bool loaded() const;
    int vocab_size() const;  // 50257 for GPT-2

    // Ids of UTF-8 text. "<|endoftext|>" in the text is plain text here (it encodes as "<", "|", "endoftext",
    // "|", ">"), as encoder.py does. Not thread-safe: pre-token results are cached inside the tokenizer.
    std::vector<int> encode(const std::string& text);
    // As encode(), but every literal "<|endoftext|>" becomes eot_token (the text between is encoded as usual).
    std::vector<int> encode_with_special(const std::string& text);
    // Appends the ids of bytes [data, data + size) to ids.
    void encode_append(const char* data, size_t size, std::vector<int>& ids);

    // The bytes of the ids, concatenated; fails on an id outside [0, vocab_size) ("token id X at position I ...").
    std::string decode(const std::vector<int>& ids) const;
    std::string token_bytes(int id) const;  // the bytes of one token; fails like decode()

    // Counters of the pre-token cache, for tuning and tests.
    size_t cache_entries() const;
    void clear_cache();

private:
    void load_files(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
    struct Impl;
    std::unique_ptr<Impl> impl;
};

// The byte-to-unicode mapping of encoder.py: printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to their own
// code point, the other 68 bytes to 256, 257, ... in byte order. Returns the code point of each byte.
std::vector<int> gpt2_bytes_to_unicode();
