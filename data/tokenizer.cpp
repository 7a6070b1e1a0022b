// GPT-2 byte-level BPE: loading and checking encoder.json / vocab.bpe, pre-tokenising with GPT-2's regex in
// PCRE2, and merging by rank with the exact semantics of OpenAI's encoder.py (see bpe_merge below).
#include "data/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <utility>

#include "data/file_io.h"
#include "data/utf8.h"

namespace {

// GPT-2's pre-tokenisation regex, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
// with \s spelled out as Unicode's White_Space set: that is what \s means in Python's `regex` (the module
// encoder.py uses), whereas PCRE2's \s also matches U+180E.
#define WHITE_SPACE \
    "\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
const char* const PRETOKEN_PATTERN =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WHITE_SPACE "\\p{L}\\p{N}]+"
    "|[" WHITE_SPACE "]+(?![^" WHITE_SPACE "])|[" WHITE_SPACE "]+";
#undef WHITE_SPACE

// Pieces longer than this are encoded without being cached (long runs of spaces or letters are rare and
// would fill the cache with single-use entries); the cache is cleared when it grows past these sizes.
constexpr size_t CACHE_MAX_PIECE_BYTES = 256;
constexpr size_t CACHE_MAX_ENTRIES = size_t(1) << 22;
constexpr size_t CACHE_MAX_POOL_IDS = size_t(1) << 26;


std::string hex_code_point(uint32_t code_point) {
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "U+%04X", unsigned(code_point));
    return buffer;
}

// A short, printable excerpt of a line for error messages (control characters and invalid UTF-8 escaped).
std::string excerpt(const std::string& text) { return "'" + printable(text, 60) + "'"; }

uint64_t pair_key(int left, int right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }

}  // namespace

std::vector<int> gpt2_bytes_to_unicode() {
    std::vector<int> code_points(256, -1);
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) code_points[b] = b;
    int next = 256;
    for (int b = 0; b < 256; b++)
        if (code_points[b] < 0) code_points[b] = next++;
    return code_points;
}

struct GPT2Tokenizer::Impl {
    // Vocabulary.
    std::vector<std::string> id_bytes;  // id -> the raw bytes of the token
    int byte_token[256];                // byte -> id of its single-byte token
    // Merges: (left id, right id) -> (rank << 32) | merged id.
    std::unordered_map<uint64_t, uint64_t> merges;
    std::unordered_map<std::string, int> read_encoder(const std::string& encoder_json_path);
    void read_merges(const std::string& vocab_bpe_path, const std::string& encoder_json_path,
                     const std::unordered_map<std::string, int>& token_id, int eot_id);

    // Regex.
    pcre2_code* regex = nullptr;
    pcre2_match_data* match_data = nullptr;
    pcre2_match_context* match_context = nullptr;
    pcre2_jit_stack* jit_stack = nullptr;
    bool jit = false;

    // Pre-token cache: bytes -> (offset, count) in pool.
    std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> cache;
    std::vector<int> pool;
    std::string key;

    // Scratch space of bpe_merge.
    std::vector<int> symbol, previous, next;
    std::vector<uint32_t> positions, merged;
    std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<uint64_t>> heap;

    ~Impl() {
        if (match_data) pcre2_match_data_free(match_data);
        if (match_context) pcre2_match_context_free(match_context);
        if (jit_stack) pcre2_jit_stack_free(jit_stack);
        if (regex) pcre2_code_free(regex);
    }

    void compile_regex() {
        int error_code;
        PCRE2_SIZE error_offset;
        regex = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(PRETOKEN_PATTERN), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
        if (!regex) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(error_code, message, sizeof(message));
            fail(std::string("tokenizer: cannot compile the pre-tokenisation regex: ") +
                 reinterpret_cast<char*>(message));
        }
        match_data = pcre2_match_data_create_from_pattern(regex, nullptr);
        match_context = pcre2_match_context_create(nullptr);
        jit = pcre2_jit_compile(regex, PCRE2_JIT_COMPLETE) == 0;
        if (jit) {
            jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
            pcre2_jit_stack_assign(match_context, nullptr, jit_stack);
        }
        if (!match_data || !match_context) fail("tokenizer: out of memory while setting up the regex");
    }

    // The first match at or after offset in subject[0, length): true and [*start, *end), or false.
    bool find_match(const char* subject, size_t length, size_t offset, size_t* start, size_t* end) {
        auto text = reinterpret_cast<PCRE2_SPTR>(subject);
        // The subject was checked to be valid UTF-8 (encode_append), so PCRE2 need not check it again.
        int rc = jit ? pcre2_jit_match(regex, text, length, offset, 0, match_data, match_context)
                     : pcre2_match(regex, text, length, offset, PCRE2_NO_UTF_CHECK, match_data, match_context);
        if (rc == PCRE2_ERROR_NOMATCH) return false;
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof(message));
            fail(std::string("tokenizer: regex match failed: ") + reinterpret_cast<char*>(message));
        }
        PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
        *start = ovector[0];
        *end = ovector[1];
        if (*end <= *start) fail("tokenizer: the pre-tokenisation regex matched an empty string");
        return true;
    }

    // encoder.py's bpe() on one pre-token, appending the ids to out. encoder.py repeats: take the adjacent pair
    // of lowest rank, merge all its occurrences left to right (non-overlapping), until no pair has a rank.
    // Here the same passes run on a linked list of symbols with a min-heap of (rank, position) candidates:
    // a pass pops every candidate of the lowest rank (all the same pair, since ranks are unique), applies the
    // still-valid ones in position order, and only then adds the pairs the new symbols form, exactly as
    // encoder.py rebuilds its pairs after each pass. O(n log n) per piece, also for long runs.
    void bpe_merge(const unsigned char* bytes, size_t count, std::vector<int>& out) {
        if (count == 1) {
            out.push_back(byte_token[bytes[0]]);
            return;
        }
        symbol.resize(count);
        previous.resize(count);
        next.resize(count);
        for (size_t i = 0; i < count; i++) {
            symbol[i] = byte_token[bytes[i]];
            previous[i] = int(i) - 1;
            next[i] = i + 1 < count ? int(i) + 1 : -1;
        }
        heap = decltype(heap)();
        auto push_pair = [&](int left) {
            if (left < 0 || next[left] < 0) return;
            auto found = merges.find(pair_key(symbol[left], symbol[next[left]]));
            if (found != merges.end()) heap.push((found->second >> 32 << 32) | uint32_t(left));
        };
        for (size_t i = 0; i + 1 < count; i++) push_pair(int(i));
        while (!heap.empty()) {
            const uint64_t rank = heap.top() >> 32;
            positions.clear();
            while (!heap.empty() && (heap.top() >> 32) == rank) {
                positions.push_back(uint32_t(heap.top()));
                heap.pop();
            }
            std::sort(positions.begin(), positions.end());
            merged.clear();
            for (uint32_t position : positions) {
                const int left = int(position), right = next[left];
                if (symbol[left] < 0 || right < 0) continue;  // absorbed earlier in this pass, or now the last
                auto found = merges.find(pair_key(symbol[left], symbol[right]));
                if (found == merges.end() || (found->second >> 32) != rank) continue;  // the pair has changed
                symbol[left] = int(uint32_t(found->second));
                symbol[right] = -1;
                next[left] = next[right];
                if (next[right] >= 0) previous[next[right]] = left;
                merged.push_back(position);
            }
            for (uint32_t position : merged) {
                push_pair(previous[position]);
                push_pair(int(position));
            }
        }
        for (int i = 0; i >= 0; i = next[i]) out.push_back(symbol[i]);
    }

    void encode_piece(const char* data, size_t count, std::vector<int>& out) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(data);
        if (count == 1) {
            out.push_back(byte_token[bytes[0]]);
            return;
        }
        if (count > CACHE_MAX_PIECE_BYTES) {
            bpe_merge(bytes, count, out);
            return;
        }
        key.assign(data, count);
        auto found = cache.find(key);
        if (found != cache.end()) {
            const int* begin = pool.data() + found->second.first;
            out.insert(out.end(), begin, begin + found->second.second);
            return;
        }
        const size_t first = out.size();
        bpe_merge(bytes, count, out);
        if (cache.size() >= CACHE_MAX_ENTRIES || pool.size() >= CACHE_MAX_POOL_IDS) {
            cache.clear();
            pool.clear();
        }
        cache.emplace(key, std::make_pair(uint32_t(pool.size()), uint32_t(out.size() - first)));
        pool.insert(pool.end(), out.begin() + first, out.end());
    }
};

GPT2Tokenizer::GPT2Tokenizer() = default;
GPT2Tokenizer::~GPT2Tokenizer() = default;
GPT2Tokenizer::GPT2Tokenizer(GPT2Tokenizer&&) noexcept = default;
GPT2Tokenizer& GPT2Tokenizer::operator=(GPT2Tokenizer&&) noexcept = default;

void GPT2Tokenizer::load(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
    try {
        load_files(encoder_json_path, vocab_bpe_path);
    } catch (const Error& error) {  // paths and file text in the message: escape what would not print
        fail(printable(error.what(), std::string::npos));
    }
}

// Reads encoder.json ({"token": id, ...}; tokens are strings over the byte-to-unicode alphabet) into id_bytes and
// byte_token; returns the token (as written there) -> id.
std::unordered_map<std::string, int> GPT2Tokenizer::Impl::read_encoder(const std::string& encoder_json_path) {
    const std::vector<uint8_t> json_bytes = read_file_bytes(encoder_json_path);
    nlohmann::json encoder;
    try {
        encoder = nlohmann::json::parse(json_bytes.begin(), json_bytes.end());
    } catch (const nlohmann::json::exception& error) {
        fail(encoder_json_path + ": malformed JSON: " + error.what());
    }
    if (!encoder.is_object()) fail(encoder_json_path + ": expected a JSON object of token -> id, found " +
                                   std::string(encoder.type_name()));
    if (encoder.empty()) fail(encoder_json_path + ": the encoder is empty");

    const std::vector<int> byte_code_points = gpt2_bytes_to_unicode();
    std::unordered_map<uint32_t, int> code_point_byte;
    for (int b = 0; b < 256; b++) code_point_byte[uint32_t(byte_code_points[b])] = b;

    const size_t vocab = encoder.size();
    id_bytes.assign(vocab, std::string());
    std::vector<bool> seen(vocab, false);
    std::unordered_map<std::string, int> token_id;  // the token as written in encoder.json -> id
    token_id.reserve(vocab * 2);
    for (auto item = encoder.begin(); item != encoder.end(); ++item) {
        const std::string& token = item.key();
        const nlohmann::json& value = item.value();
        const std::string where = encoder_json_path + ": token " + nlohmann::json(token).dump();
        if (!value.is_number_integer())
            fail(where + ": the id is not an integer: " +
                 (value.is_primitive() ? printable(value.dump(), 60) : "found " + std::string(value.type_name())));
        const int64_t id = value.get<int64_t>();
        if (id < 0 || id >= int64_t(vocab))
            fail(where + ": id " + std::to_string(id) + " is out of range; ids must be 0.." +
                 std::to_string(vocab - 1) + " for " + std::to_string(vocab) + " tokens");
        if (seen[id]) fail(where + ": id " + std::to_string(id) + " is used by two tokens");
        if (token.empty()) fail(where + ": empty token");
        seen[id] = true;
        std::string bytes;
        const auto* text = reinterpret_cast<const unsigned char*>(token.data());
        for (size_t i = 0; i < token.size();) {
            uint32_t code_point = 0;
            size_t length = utf8_char_length(text + i, token.size() - i, &code_point);
            auto byte = code_point_byte.find(code_point);
            if (length == 0 || byte == code_point_byte.end())
                fail(where + ": character " + hex_code_point(code_point) +
                     " is not in GPT-2's byte-to-unicode alphabet");
            bytes += char(byte->second);
            i += length;
        }
        id_bytes[id] = std::move(bytes);
        token_id.emplace(token, int(id));
    }
    for (int b = 0; b < 256; b++) {
        std::string symbol;
        append_utf8(symbol, uint32_t(byte_code_points[b]));
        auto found = token_id.find(symbol);
        if (found == token_id.end())
            fail(encoder_json_path + ": the single-byte token " + nlohmann::json(symbol).dump() + " (byte " +
                 std::to_string(b) + ") is missing");
        byte_token[b] = found->second;
    }
    return token_id;
}

// Reads vocab.bpe ("#version: 0.2", then "left right" per line; rank = the merge's index) into merges: every token
// in the encoder, no merge twice, each making a token of its own, one merge per token of the vocabulary.
void GPT2Tokenizer::Impl::read_merges(const std::string& vocab_bpe_path, const std::string& encoder_json_path,
                                      const std::unordered_map<std::string, int>& token_id, int eot_id) {
    const size_t vocab = id_bytes.size();
    const std::vector<uint8_t> bpe_bytes = read_file_bytes(vocab_bpe_path);
    const std::string bpe_text(bpe_bytes.begin(), bpe_bytes.end());
    std::vector<std::string> lines;
    for (size_t start = 0; start <= bpe_text.size();) {
        size_t end = bpe_text.find('\n', start);
        if (end == std::string::npos) end = bpe_text.size();
        std::string line = bpe_text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
        start = end + 1;
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
    if (lines.empty()) fail(vocab_bpe_path + ": empty file; expected the header '#version: 0.2' and merges");
    std::string header = lines[0];
    while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.pop_back();
    if (header != "#version: 0.2")
        fail(vocab_bpe_path + ": line 1: expected the header '#version: 0.2', found " + excerpt(lines[0]));
    merges.reserve(lines.size() * 2);
    std::unordered_map<uint64_t, size_t> merge_line;
    std::unordered_map<int, size_t> made_by_line;  // merged token id -> the line of the merge that makes it
    for (size_t index = 1; index < lines.size(); index++) {
        const std::string& line = lines[index];
        const std::string where = vocab_bpe_path + ": line " + std::to_string(index + 1);
        const size_t space = line.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 >= line.size() ||
            line.find_first_of(" \t", space + 1) != std::string::npos)
            fail(where + ": bad merges line " + excerpt(line) + ": expected two tokens separated by one space");
        const std::string left = line.substr(0, space), right = line.substr(space + 1);
        auto left_id = token_id.find(left), right_id = token_id.find(right), merged_id = token_id.find(left + right);
        for (auto [found, name] : {std::make_pair(left_id, left), std::make_pair(right_id, right),
                                   std::make_pair(merged_id, left + right)})
            if (found == token_id.end())
                fail(where + ": bad merges line " + excerpt(line) + ": token " + excerpt(name) + " is not in " +
                     encoder_json_path);
        const uint64_t key = pair_key(left_id->second, right_id->second);
        auto [previous, inserted] = merge_line.emplace(key, index + 1);
        if (!inserted)
            fail(where + ": bad merges line " + excerpt(line) + ": the same merge is on line " +
                 std::to_string(previous->second));
        // each merge makes a token of its own (never <|endoftext|>, never one another merge makes)
        if (merged_id->second == eot_id)
            fail(where + ": bad merges line " + excerpt(line) + ": it makes the special token " + EOT_TEXT);
        auto [maker, first_maker] = made_by_line.emplace(merged_id->second, index + 1);
        if (!first_maker)
            fail(where + ": bad merges line " + excerpt(line) + ": it makes token " + excerpt(left + right) +
                 ", which line " + std::to_string(maker->second) + " already makes");
        const uint64_t rank = index - 1;
        merges.emplace(key, (rank << 32) | uint32_t(merged_id->second));
    }
    // A byte-level BPE vocabulary is the 256 single bytes, one token per merge and the special tokens (GPT-2:
    // 50257 = 256 + 50000 merges + <|endoftext|>): a file cut short, even at a line boundary, has too few merges.
    const size_t special_tokens = 1;  // <|endoftext|>, the only one this tokenizer knows
    const size_t merge_count = lines.size() - 1, expected_merges = vocab - 256 - special_tokens;
    if (merge_count != expected_merges)
        fail(vocab_bpe_path + ": " + std::to_string(merge_count) + " merges, but " + encoder_json_path + " has " +
             std::to_string(vocab) + " tokens, which need " + std::to_string(expected_merges) +
             " (the 256 bytes, one token per merge and " + EOT_TEXT + ")" +
             (merge_count < expected_merges ? ": is the file cut short?" : ""));
}

void GPT2Tokenizer::load_files(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
    auto loading = std::make_unique<Impl>();
    const std::unordered_map<std::string, int> token_id = loading->read_encoder(encoder_json_path);
    auto eot = token_id.find(EOT_TEXT);
    if (eot == token_id.end()) fail(encoder_json_path + ": the special token " + std::string(EOT_TEXT) + " is missing");
    loading->read_merges(vocab_bpe_path, encoder_json_path, token_id, eot->second);
    loading->compile_regex();
    impl = std::move(loading);
    eot_token = eot->second;
}

void GPT2Tokenizer::load_dir(const std::string& dir) { load(dir + "/encoder.json", dir + "/vocab.bpe"); }

bool GPT2Tokenizer::loaded() const { return impl != nullptr; }

int GPT2Tokenizer::vocab_size() const { return impl ? int(impl->id_bytes.size()) : 0; }

void GPT2Tokenizer::encode_append(const char* data, size_t size, std::vector<int>& ids) {
    if (!impl) fail("tokenizer: encode before load");
    const auto* bytes = reinterpret_cast<const unsigned char*>(data);
    size_t position = 0;
    while (position < size) {
        // A run of bytes that start no valid UTF-8 character is one piece of its own.
        size_t invalid_end = position;
        while (invalid_end < size && utf8_char_length(bytes + invalid_end, size - invalid_end) == 0) invalid_end++;
        if (invalid_end > position) {
            impl->encode_piece(data + position, invalid_end - position, ids);
            position = invalid_end;
            continue;
        }
        // The following run of valid UTF-8 goes through the regex; every character matches one alternative,
        // but any gap between matches would still be encoded, so that no byte is ever dropped.
        size_t valid_end = position;
        while (valid_end < size) {
            size_t length = utf8_char_length(bytes + valid_end, size - valid_end);
            if (length == 0) break;
            valid_end += length;
        }
        const char* segment = data + position;
        const size_t segment_size = valid_end - position;
        size_t offset = 0, start, end;
        while (offset < segment_size && impl->find_match(segment, segment_size, offset, &start, &end)) {
            if (start > offset) impl->encode_piece(segment + offset, start - offset, ids);
            impl->encode_piece(segment + start, end - start, ids);
            offset = end;
        }
        if (offset < segment_size) impl->encode_piece(segment + offset, segment_size - offset, ids);
        position = valid_end;
    }
}

std::vector<int> GPT2Tokenizer::encode(const std::string& text) {
    std::vector<int> ids;
    ids.reserve(text.size() / 4 + 16);
    encode_append(text.data(), text.size(), ids);
    return ids;
}

std::vector<int> GPT2Tokenizer::encode_with_special(const std::string& text) {
    if (!impl) fail("tokenizer: encode before load");
    const std::string special = EOT_TEXT;
    std::vector<int> ids;
    ids.reserve(text.size() / 4 + 16);
    size_t start = 0;
    for (size_t found; (found = text.find(special, start)) != std::string::npos; start = found + special.size()) {
        encode_append(text.data() + start, found - start, ids);
        ids.push_back(eot_token);
    }
    encode_append(text.data() + start, text.size() - start, ids);
    return ids;
}

std::string GPT2Tokenizer::token_bytes(int id) const {
    if (!impl) fail("tokenizer: decode before load");
    if (id < 0 || id >= vocab_size())
        fail("tokenizer: token id " + std::to_string(id) + " is out of range for vocabulary size " +
             std::to_string(vocab_size()));
    return impl->id_bytes[id];
}

std::string GPT2Tokenizer::decode(const std::vector<int>& ids) const {
    if (!impl) fail("tokenizer: decode before load");
    std::string text;
    for (size_t i = 0; i < ids.size(); i++) {
        if (ids[i] < 0 || ids[i] >= vocab_size())
            fail("tokenizer: token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                 " is out of range for vocabulary size " + std::to_string(vocab_size()));
        text += impl->id_bytes[ids[i]];
    }
    return text;
}

size_t GPT2Tokenizer::cache_entries() const { return impl ? impl->cache.size() : 0; }

void GPT2Tokenizer::clear_cache() {
    if (!impl) return;
    impl->cache.clear();
    impl->pool.clear();
}
