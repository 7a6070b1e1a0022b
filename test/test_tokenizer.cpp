// The GPT-2 tokenizer and `tokenize`: the real vocabulary against the ids of an independent Python reference
// (test/fixtures/tokenizer_cases.txt) and against tinyshakespeare's well-known token counts, byte-exact round trips
// (invalid UTF-8 included), errors that name the bad file, and text -> shards. Tests that need the real GPT-2 files
// skip when ../shared/data is absent; the others use a tiny vocabulary written by the test.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/file_io.h"
#include "data/token_shard.h"
#include "data/tokenize_text.h"
#include "data/tokenizer.h"
#include "data/utf8.h"
#include "test/test_support.h"
#include "test/tiny_tokenizer.h"

using Catch::Contains;

namespace {

std::string gpt2_dir() {
    const std::string shared = shared_data_dir();
    return shared.empty() ? "" : shared + "/tokenizer/gpt2";
}

void put_text(const std::string& path, const std::string& text) {
    FILE* file = std::fopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(std::fwrite(text.data(), 1, text.size(), file) == text.size());
    std::fclose(file);
}

std::string read_text(const std::string& path) {
    std::vector<uint8_t> bytes = read_file_bytes(path);
    return std::string(bytes.begin(), bytes.end());
}

GPT2Tokenizer load_tokenizer(const std::string& dir) {
    GPT2Tokenizer tokenizer;
    tokenizer.load_dir(dir);
    return tokenizer;
}

std::string random_bytes(size_t count, uint64_t seed, bool ascii_heavy) {
    std::vector<double> values = random_vector<double>(count * 2, seed, 0.0, 1.0);
    std::string text;
    const char* common = " \n\tabcdefghijklmnopqrstuvwxyzTHE'.,0123456789";
    for (size_t i = 0; i < count; i++) {
        if (ascii_heavy && values[2 * i] < 0.6) text += common[size_t(values[2 * i + 1] * 45) % 45];
        else text += char(int(values[2 * i + 1] * 256) & 0xFF);
    }
    return text;
}

// Bytes that mix valid multi-byte characters with every kind of invalid UTF-8.
std::string tricky_bytes() {
    return std::string("caf\xC3\xA9 ") + "\xFF\xFE" + "lone continuation \x80\xBF" + " truncated \xE6\x97" +
           " overlong \xC0\xAF \xE0\x80\xAF" + " surrogate \xED\xA0\x80" + " too big \xF4\x90\x80\x80" +
           " \xF0\x9F\x91\x8D ok" + "\xC3";
}

}  // namespace

TEST_CASE("tokenizer: byte-to-unicode alphabet is encoder.py's") {
    std::vector<int> code_points = gpt2_bytes_to_unicode();
    REQUIRE(code_points.size() == 256);
    CHECK(code_points['A'] == 'A');
    CHECK(code_points[0xE9] == 0xE9);
    CHECK(code_points[0] == 256);
    CHECK(code_points[' '] == 256 + 32);  // "Ġ" = U+0120
    CHECK(code_points['\n'] == 256 + 10);  // "Ċ" = U+010A
    CHECK(code_points[0xAD] == 323);      // the soft hyphen is the last non-printable byte
    std::vector<int> sorted = code_points;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

TEST_CASE("tokenizer: tiny vocabulary merges by rank like encoder.py") {
    GPT2Tokenizer tokenizer = load_tokenizer(write_tiny_tokenizer(make_temp_dir("tokenizer_tiny")));
    CHECK(tokenizer.vocab_size() == 263);
    CHECK(tokenizer.eot_token == TINY_EOT);
    CHECK(tokenizer.encode("") == std::vector<int>{});
    CHECK(tokenizer.encode(" the") == std::vector<int>{260});
    CHECK(tokenizer.encode("the the") == std::vector<int>{'t', 259, 260});
    // One pass merges every a+a left to right (non-overlapping), the next pass aa+aa.
    CHECK(tokenizer.encode("aaa") == std::vector<int>{256, 'a'});
    CHECK(tokenizer.encode("aaaaa") == std::vector<int>{257, 'a'});
    CHECK(tokenizer.encode("aaaaaaaaaaa") == std::vector<int>{257, 257, 256, 'a'});
    // "a    b": the regex gives "a", "   " (whitespace not followed by a non-space), " b".
    CHECK(tokenizer.encode("a    b") == std::vector<int>{'a', 261, ' ', ' ', 'b'});
    CHECK(tokenizer.encode("x<|endoftext|>") ==
          std::vector<int>{'x', '<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'});
    CHECK(tokenizer.encode_with_special("<|endoftext|>a<|endoftext|><|endoftext|> the") ==
          std::vector<int>{TINY_EOT, 'a', TINY_EOT, TINY_EOT, 260});
    CHECK(tokenizer.decode({260, TINY_EOT, 'x'}) == " the<|endoftext|>x");
}

TEST_CASE("tokenizer: every fixture case encodes to the Python reference's ids and decodes back") {
    if (gpt2_dir().empty()) SKIP_TEST("the GPT-2 tokenizer files (../shared/data/tokenizer/gpt2) are absent");
    GPT2Tokenizer tokenizer = load_tokenizer(gpt2_dir());
    CHECK(tokenizer.vocab_size() == 50257);
    CHECK(tokenizer.eot_token == 50256);
    std::ifstream file("test/fixtures/tokenizer_cases.txt");
    REQUIRE(file.good());
    std::string line;
    int cases = 0, special_cases = 0;
    while (std::getline(file, line)) {
        if (line.empty() || line[0] == '#') continue;
        nlohmann::json test_case = nlohmann::json::parse(line);
        const std::string text = test_case.at("text").get<std::string>();
        const std::vector<int> expected = test_case.at("ids").get<std::vector<int>>();
        const bool special = test_case.value("special", false);
        INFO("text: " << test_case.at("text").dump());
        std::vector<int> ids = special ? tokenizer.encode_with_special(text) : tokenizer.encode(text);
        CHECK(ids == expected);
        CHECK(tokenizer.decode(ids) == text);
        cases++;
        special_cases += special;
    }
    CHECK(cases >= 30);
    CHECK(special_cases >= 2);
    // Known GPT-2 ids, independent of the fixture file.
    CHECK(tokenizer.encode("Hello, world!") == std::vector<int>{15496, 11, 995, 0});
    CHECK(tokenizer.encode_with_special("<|endoftext|>") == std::vector<int>{50256});
}

TEST_CASE("tokenizer: tinyshakespeare gives nanoGPT's token counts and round-trips") {
    if (shared_data_dir().empty()) SKIP_TEST("../shared/data (GPT-2 tokenizer and tinyshakespeare) is absent");
    GPT2Tokenizer tokenizer = load_tokenizer(gpt2_dir());
    const std::string text = read_text(shared_data_dir() + "/text/tinyshakespeare/input.txt");
    // nanoGPT's data/shakespeare/prepare.py: the first 90% of the characters (ASCII here) for training, the rest
    // for validation, each encoded with GPT-2's tokenizer: 301,966 and 36,059 tokens.
    const size_t cut = size_t(text.size() * 0.9);
    auto started = std::chrono::steady_clock::now();
    std::vector<int> train = tokenizer.encode(text.substr(0, cut));
    std::vector<int> val = tokenizer.encode(text.substr(cut));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    CHECK(train.size() == 301966);
    CHECK(val.size() == 36059);
    std::printf("tokenizer: tinyshakespeare, %zu bytes -> %zu tokens in %.3f s (%.2f M tokens/s, cold cache)\n",
                text.size(), train.size() + val.size(), seconds, double(train.size() + val.size()) / seconds / 1e6);
    std::vector<int> all = tokenizer.encode(text);
    CHECK(tokenizer.decode(all) == text);
}

TEST_CASE("tokenizer: random byte strings, invalid UTF-8 included, round-trip exactly") {
    std::vector<std::pair<std::string, GPT2Tokenizer>> tokenizers;
    tokenizers.emplace_back("tiny", load_tokenizer(write_tiny_tokenizer(make_temp_dir("tokenizer_random"))));
    if (!gpt2_dir().empty()) tokenizers.emplace_back("gpt2", load_tokenizer(gpt2_dir()));
    for (auto& [name, tokenizer] : tokenizers) {
        INFO("vocabulary: " << name);
        for (uint64_t seed = 1; seed <= 200; seed++) {
            std::string text = random_bytes(1 + seed * 7 % 300, seed, seed % 2 == 0);
            std::vector<int> ids = tokenizer.encode(text);
            INFO("seed " << seed);
            REQUIRE(tokenizer.decode(ids) == text);
            for (int id : ids) REQUIRE((id >= 0 && id < tokenizer.vocab_size()));
        }
        const std::string tricky = tricky_bytes();
        CHECK(tokenizer.decode(tokenizer.encode(tricky)) == tricky);
        CHECK(tokenizer.decode(tokenizer.encode_with_special(tricky + "<|endoftext|>" + tricky)) ==
              tricky + "<|endoftext|>" + tricky);
        // Long runs (one pre-token each) stay fast and exact.
        for (const std::string& text : {std::string(200000, ' '), std::string(100000, 'a'), std::string(50000, '\n'),
                                        std::string(20000, '\xFF')}) {
            CHECK(tokenizer.decode(tokenizer.encode(text)) == text);
        }
    }
    if (tokenizers.size() == 1) SKIP_TEST("checked the tiny vocabulary only: the GPT-2 files are absent");
}

TEST_CASE("tokenizer: invalid ids fail to decode with the id and its position") {
    GPT2Tokenizer tokenizer = load_tokenizer(write_tiny_tokenizer(make_temp_dir("tokenizer_ids")));
    CHECK_THROWS_WITH(tokenizer.decode({'a', 263}),
                      Contains("token id 263 at position 1") && Contains("vocabulary size 263"));
    CHECK_THROWS_WITH(tokenizer.decode({-1}), Contains("token id -1 at position 0"));
    CHECK_THROWS_WITH(tokenizer.token_bytes(100000), Contains("token id 100000"));
    GPT2Tokenizer unloaded;
    CHECK_THROWS_AS(unloaded.encode("x"), Error);
}

TEST_CASE("tokenizer: malformed encoder.json and vocab.bpe give errors naming the file and the problem") {
    const std::string dir = write_tiny_tokenizer(make_temp_dir("tokenizer_bad"));
    const std::string encoder_path = dir + "/encoder.json", bpe_path = dir + "/vocab.bpe";
    const std::string good_encoder = read_text(encoder_path), good_bpe = read_text(bpe_path);
    nlohmann::json encoder = nlohmann::json::parse(good_encoder);
    auto load_error = [&](const std::string& encoder_text, const std::string& bpe_text) {
        put_text(encoder_path, encoder_text);
        put_text(bpe_path, bpe_text);
        GPT2Tokenizer tokenizer;
        try {
            tokenizer.load(encoder_path, bpe_path);
        } catch (const Error& error) {
            return std::string(error.what());
        }
        return std::string("(no error)");
    };
    auto edited = [&](auto edit) {
        nlohmann::json copy = encoder;
        edit(copy);
        return copy.dump();
    };

    CHECK_THAT(load_error(good_encoder, good_bpe), Contains("(no error)"));
    // Missing files.
    {
        GPT2Tokenizer tokenizer;
        CHECK_THROWS_WITH(tokenizer.load(dir + "/missing.json", bpe_path),
                          Contains(dir + "/missing.json") && Contains("cannot open"));
        CHECK_THROWS_WITH(tokenizer.load(encoder_path, dir + "/missing.bpe"),
                          Contains(dir + "/missing.bpe") && Contains("cannot open"));
        CHECK_FALSE(tokenizer.loaded());
    }
    // encoder.json.
    CHECK_THAT(load_error(good_encoder.substr(0, good_encoder.size() / 2), good_bpe),
               Contains(encoder_path) && Contains("malformed JSON"));
    CHECK_THAT(load_error("", good_bpe), Contains(encoder_path) && Contains("malformed JSON"));
    CHECK_THAT(load_error("[1, 2, 3]", good_bpe), Contains(encoder_path) && Contains("expected a JSON object"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["aa"] = "256"; }), good_bpe),
               Contains(encoder_path) && Contains("\"aa\"") && Contains("not an integer"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["aa"] = 1.5; }), good_bpe),
               Contains(encoder_path) && Contains("not an integer"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["aa"] = 5; }), good_bpe),
               Contains(encoder_path) && Contains("used by two tokens"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["aa"] = 9999; }), good_bpe),
               Contains(encoder_path) && Contains("id 9999 is out of range"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["x"] = -1; }), good_bpe),
               Contains(encoder_path) && Contains("out of range"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) {
                   e.erase("z");
                   e["z\xE2\x82\xAC"] = 'z';  // the euro sign is no byte symbol
               }),
                          good_bpe),
               Contains(encoder_path) && Contains("U+20AC") && Contains("byte-to-unicode alphabet"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) {
                   e.erase("<|endoftext|>");
                   e["<|endoftxt|>"] = TINY_EOT;
               }),
                          good_bpe),
               Contains(encoder_path) && Contains("<|endoftext|> is missing"));
    // vocab.bpe.
    CHECK_THAT(load_error(good_encoder, ""), Contains(bpe_path) && Contains("empty file"));
    CHECK_THAT(load_error(good_encoder, "#version: 0.3\na a\n"),
               Contains(bpe_path) && Contains("line 1") && Contains("#version: 0.2") && Contains("#version: 0.3"));
    CHECK_THAT(load_error(good_encoder, "a a\n"), Contains(bpe_path) && Contains("line 1"));
    CHECK_THAT(load_error(good_encoder, "#version: 0.2\na a\naa aa extra\n"),
               Contains(bpe_path) && Contains("line 3") && Contains("bad merges line") && Contains("aa aa extra"));
    CHECK_THAT(load_error(good_encoder, "#version: 0.2\na a\n\naa aa\n"),
               Contains(bpe_path) && Contains("line 3") && Contains("bad merges line"));
    CHECK_THAT(load_error(good_encoder, "#version: 0.2\naa\n"), Contains(bpe_path) && Contains("line 2"));
    CHECK_THAT(load_error(good_encoder, "#version: 0.2\nb c\n"),
               Contains(bpe_path) && Contains("line 2") && Contains("'bc' is not in") && Contains(encoder_path));
    CHECK_THAT(load_error(good_encoder, "#version: 0.2\na a\nh e\na a\n"),
               Contains(bpe_path) && Contains("line 4") && Contains("same merge is on line 2"));
    // A good file with Windows line ends and no final newline still loads.
    std::string crlf;
    for (char c : good_bpe.substr(0, good_bpe.size() - 1)) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    CHECK_THAT(load_error(good_encoder, crlf), Contains("(no error)"));
    // Every token that is neither a byte nor <|endoftext|> is made by exactly one merge: a vocab.bpe cut at a line
    // boundary, or holding only its header, has too few; a merge that makes a token made before, or the special
    // token, is refused.
    const std::string cut = good_bpe.substr(0, good_bpe.rfind('\n', good_bpe.size() - 2) + 1);
    CHECK_THAT(load_error(good_encoder, cut), Contains(bpe_path) && Contains("5 merges, but") &&
                                                  Contains("263 tokens, which need 6") && Contains("cut short"));
    CHECK_THAT(load_error(good_encoder, "#version: 0.2\n"), Contains(bpe_path) && Contains("0 merges, but"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["aaa"] = 263; }), good_bpe + "a aa\na aaa\n"),
               Contains(bpe_path) && Contains("line 9") && Contains("'aaaa'") &&
                   Contains("which line 3 already makes"));
    CHECK_THAT(load_error(edited([](nlohmann::json& e) {
                   e.erase("<|endoftext|>");
                   e["<|endoftext|>"] = 263;
                   e["<|endoftext|"] = TINY_EOT;
               }),
                          good_bpe + "<|endoftext| >\n"),
               Contains(bpe_path) && Contains("line 8") && Contains("makes the special token"));
    // Bytes that would not print are escaped in every message, never echoed.
    const std::string raw = load_error(good_encoder, "#version: 0.2\n\x1B[2J \xFF\n");
    CHECK_THAT(raw, Contains(bpe_path) && Contains("\\x1B[2J") && Contains("\\xFF"));
    CHECK(raw.find('\x1B') == std::string::npos);
    CHECK(raw.find('\xFF') == std::string::npos);
    CHECK_THAT(load_error(edited([](nlohmann::json& e) { e["aa"] = nlohmann::json::array({1, 2}); }), good_bpe),
               Contains(encoder_path) && Contains("not an integer: found array"));
}

TEST_CASE("tokenizer: printable() escapes what would not print and keeps valid UTF-8") {
    CHECK(printable("plain text, caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x91\x8D") ==
          "plain text, caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x91\x8D");
    CHECK(printable("a\nb\tc\rd") == "a\\nb\\tc\\rd");
    CHECK(printable(std::string("nul\0esc\x1B[0m del\x7F", 16)) == "nul\\x00esc\\x1B[0m del\\x7F");
    CHECK(printable("c1 \xC2\x85") == "c1 \\xC2\\x85");           // U+0085, a C1 control
    CHECK(printable("bad \xFF\xC3 \xED\xA0\x80") == "bad \\xFF\\xC3 \\xED\\xA0\\x80");  // invalid, a surrogate
    CHECK(printable(std::string(300, 'x')) == std::string(200, 'x') + "...");
    CHECK(printable(printable("\x01\xFE")) == printable("\x01\xFE"));  // its output prints as itself
    CHECK(is_valid_utf8("caf\xC3\xA9"));
    CHECK_FALSE(is_valid_utf8("caf\xE9"));
}

TEST_CASE("tokenizer: Gutenberg boilerplate is cut at the START OF / END OF lines") {
    bool stripped = false;
    CHECK(strip_gutenberg_boilerplate("Header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\nBody 1\nBody 2\n\n"
                                      "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nLicense\n",
                                      &stripped) == "Body 1\nBody 2");
    CHECK(stripped);
    // No space after the stars, Windows line ends, and a title that wraps onto the next line.
    CHECK(strip_gutenberg_boilerplate("H\r\n***START OF THE PROJECT GUTENBERG EBOOK A LONG\r\nTITLE***\r\n\r\nText"
                                      "\r\n***END OF THE PROJECT GUTENBERG EBOOK***\r\n",
                                      &stripped) == "Text");
    CHECK(stripped);
    CHECK(strip_gutenberg_boilerplate("H\n*** START OF THIS PROJECT GUTENBERG EBOOK A LONG TITLE\n***\nText\n"
                                      "*** END OF IT ***\n") == "Text");
    // The closing "End of the Project Gutenberg EBook" line goes too (also when it wraps), but not earlier text.
    CHECK(strip_gutenberg_boilerplate("*** START OF X ***\nText\nThe end.\n\n\n"
                                      "End of the Project Gutenberg EBook of X,\nby Y\n\n*** END OF X ***\n") ==
          "Text\nThe end.");
    CHECK(strip_gutenberg_boilerplate("*** START OF X ***\nText\n\nEnd of Project Gutenberg's X, by Y\n"
                                      "*** END OF X ***\n") == "Text");
    CHECK(strip_gutenberg_boilerplate("*** START OF X ***\nText\nEnd of Project Gutenberg\n1\n2\n3\n"
                                      "*** END OF X ***\n") == "Text\nEnd of Project Gutenberg\n1\n2\n3");
    // Without both markers the text is left whole.
    const std::string no_end = "*** START OF X ***\nText\n";
    CHECK(strip_gutenberg_boilerplate(no_end, &stripped) == no_end);
    CHECK_FALSE(stripped);
    const std::string plain = "No markers. *** START OF not at a line start\n";
    CHECK(strip_gutenberg_boilerplate(plain, &stripped) == plain);
    CHECK_FALSE(stripped);
}

TEST_CASE("tokenizer: the validation documents are spread evenly") {
    CHECK_FALSE(split_whole_documents(19, 0.05));
    CHECK(split_whole_documents(20, 0.05));
    std::vector<size_t> chosen;
    for (size_t i = 0; i < 100; i++)
        if (is_validation_document(i, 0.05)) chosen.push_back(i);
    CHECK(chosen == std::vector<size_t>{19, 39, 59, 79, 99});
    size_t count = 0;
    for (size_t i = 0; i < 162; i++) count += is_validation_document(i, 0.05);
    CHECK(count == 8);
}

TEST_CASE("tokenizer: run_tokenize cuts the Gutenberg header and writes train and val shards") {
    const std::string dir = make_temp_dir("tokenize_run");
    const std::string tokenizer_dir = dir + "/tokenizer";
    REQUIRE(std::system(("mkdir -p '" + tokenizer_dir + "'").c_str()) == 0);
    write_tiny_tokenizer(tokenizer_dir);
    GPT2Tokenizer tokenizer = load_tokenizer(tokenizer_dir);

    std::string body;
    for (int i = 0; i < 40; i++) body += "Line " + std::to_string(i) + " of the book, the end is not near.\n";
    body.pop_back();
    const std::string book = "\xEF\xBB\xBFThe Project Gutenberg EBook of Secret Header Words\r\n\r\n"
                             "*** START OF THIS PROJECT GUTENBERG EBOOK TEST ***\r\n\r\n" +
                             body +
                             "\r\n\r\n*** END OF THIS PROJECT GUTENBERG EBOOK TEST ***\r\nSecret license words\r\n";
    put_text(dir + "/book.txt", book);

    TokenizeOptions options;
    options.inputs = {dir + "/book.txt"};
    options.out_dir = dir + "/shards/nested";
    options.tokenizer_dir = tokenizer_dir;
    options.val_fraction = 0.1;
    options.shard_tokens = 400;
    options.quiet = true;
    TokenizeResult result = run_tokenize(options);

    const std::vector<int> body_ids = tokenizer.encode(body);
    const size_t total = 1 + body_ids.size();
    REQUIRE(total > 800);  // so that training needs several shards of 400
    CHECK(result.documents == 1);
    CHECK(result.gutenberg_stripped == 1);
    CHECK(result.train_tokens + result.val_tokens == total);
    CHECK(result.val_tokens == size_t(std::ceil(0.1 * double(total))));
    REQUIRE(result.train_shards.size() == (result.train_tokens + 399) / 400);
    REQUIRE(result.val_shards.size() == 1);
    CHECK(result.train_shards[0] == options.out_dir + "/train_000000.bin");
    CHECK(result.val_shards[0] == options.out_dir + "/val_000000.bin");

    std::vector<int> stream;
    for (const auto& shards : {result.train_shards, result.val_shards})
        for (const std::string& path : shards) {
            REQUIRE(file_exists(path));
            std::vector<uint16_t> tokens = read_token_shard(path, tokenizer.vocab_size());
            CHECK(tokens.size() <= 400);
            stream.insert(stream.end(), tokens.begin(), tokens.end());
        }
    REQUIRE(stream.size() == total);
    CHECK(stream[0] == TINY_EOT);
    const std::string decoded = tokenizer.decode(stream);
    CHECK(decoded == "<|endoftext|>" + body);
    CHECK(decoded.find("Secret") == std::string::npos);
    CHECK(decoded.find('\r') == std::string::npos);

    // A second run that writes fewer shards removes the stale ones; without stripping, the header stays.
    options.shard_tokens = 100000;
    options.strip_gutenberg = false;
    options.normalize_newlines = false;
    result = run_tokenize(options);
    CHECK(result.train_shards.size() == 1);
    CHECK_FALSE(file_exists(options.out_dir + "/train_000001.bin"));
    std::vector<uint16_t> train = read_token_shard(result.train_shards[0], tokenizer.vocab_size());
    std::vector<uint16_t> val = read_token_shard(result.val_shards[0], tokenizer.vocab_size());
    std::vector<int> all(train.begin(), train.end());
    all.insert(all.end(), val.begin(), val.end());
    CHECK(tokenizer.decode(all) == "<|endoftext|>" + book.substr(3));
}

TEST_CASE("tokenizer: run_tokenize splits many documents into whole train and val documents") {
    const std::string dir = make_temp_dir("tokenize_documents");
    const std::string tokenizer_dir = write_tiny_tokenizer(dir);
    REQUIRE(std::system(("mkdir -p '" + dir + "/texts'").c_str()) == 0);
    for (int i = 0; i < 10; i++) {
        char name[64];
        std::snprintf(name, sizeof(name), "/texts/doc_%02d.txt", i);
        put_text(dir + name, "document " + std::to_string(i) + std::string(size_t(i), 'a'));
    }
    put_text(dir + "/texts/ignored.md", "not a .txt file");
    TokenizeOptions options;
    options.inputs = {dir + "/texts"};
    options.out_dir = dir + "/out";
    options.tokenizer_dir = tokenizer_dir;
    options.val_fraction = 0.2;  // documents 4 and 9
    options.quiet = true;
    TokenizeResult result = run_tokenize(options);
    GPT2Tokenizer tokenizer = load_tokenizer(tokenizer_dir);
    auto decoded = [&](const std::string& path) {
        std::vector<uint16_t> tokens = read_token_shard(path, tokenizer.vocab_size());
        return tokenizer.decode(std::vector<int>(tokens.begin(), tokens.end()));
    };
    CHECK(result.documents == 10);
    REQUIRE(result.val_shards.size() == 1);
    CHECK(decoded(result.val_shards[0]) == "<|endoftext|>document 4aaaa<|endoftext|>document 9aaaaaaaaa");
    std::string train = decoded(result.train_shards[0]);
    CHECK(train.rfind("<|endoftext|>document 0<|endoftext|>document 1a<|endoftext|>", 0) == 0);
    CHECK(train.find("document 4") == std::string::npos);

    // Bad options and inputs fail with a message.
    options.val_fraction = 1.0;
    CHECK_THROWS_WITH(run_tokenize(options), Contains("validation fraction"));
    options.val_fraction = 0.0;
    options.inputs = {dir + "/texts/missing.txt"};
    CHECK_THROWS_WITH(run_tokenize(options), Contains("missing.txt") && Contains("no such file"));
    options.inputs = {dir + "/texts/doc_0*.txt"};
    result = run_tokenize(options);
    CHECK(result.documents == 10);
    CHECK(result.val_shards.empty());
    CHECK_FALSE(file_exists(options.out_dir + "/val_000000.bin"));  // the stale one from the first run is gone
}

TEST_CASE("tokenizer: run_tokenize on tinyshakespeare writes nanoGPT's token count") {
    if (shared_data_dir().empty()) SKIP_TEST("../shared/data (GPT-2 tokenizer and tinyshakespeare) is absent");
    TokenizeOptions options;
    options.inputs = {shared_data_dir() + "/text/tinyshakespeare/input.txt"};
    options.out_dir = make_temp_dir("tokenize_shakespeare");
    options.tokenizer_dir = gpt2_dir();
    options.quiet = true;
    TokenizeResult result = run_tokenize(options);
    const size_t total = 1 + 338025;  // the EOT, then the whole text (nanoGPT: 301,966 + 36,059 in two parts)
    CHECK(result.train_tokens + result.val_tokens == total);
    CHECK(result.val_tokens == size_t(std::ceil(0.05 * double(total))));
    std::vector<uint16_t> val = read_token_shard(result.val_shards.at(0), 50257);
    CHECK(val.size() == result.val_tokens);
}
