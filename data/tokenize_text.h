// Text files -> GPT-2 token shards (llm.c format) for pretraining: `train tokenize`.
//
// Each input file is one document: optionally cut to the body of a Project Gutenberg book, CRLF line ends
// made LF, a UTF-8 byte-order mark dropped, then encoded as <|endoftext|> followed by the text's tokens
// (GPT-2's convention: every document starts with the EOT token; "<|endoftext|>" inside the text is plain text).
//
// Train/validation split (deterministic, depends only on the file order and val_fraction f):
//   - with N documents and floor(N * f) >= 1, whole documents: document i (0-based, in input order) is a
//     validation document when floor((i + 1) * f) > floor(i * f), i.e. floor(N * f) documents spread evenly
//     through the list (f = 0.05: documents 19, 39, 59, ...);
//   - with fewer documents (a single corpus file, say), from every document the last ceil(f * n) of its n
//     tokens (counting its leading EOT) go to validation, the rest to training.
// Each split is written as <out_dir>/<split>_000000.bin, _000001.bin, ... of at most shard_tokens tokens, in
// document order; shards of that split left over from an earlier, larger run are removed.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

struct TokenizeOptions {
    std::vector<std::string> inputs;  // text files, directories (their *.txt files, sorted) or glob patterns
    std::string out_dir;              // created if missing
    std::string tokenizer_dir;        // holds encoder.json and vocab.bpe
    double val_fraction = 0.05;       // in [0, 1); 0 writes no validation shards
    size_t shard_tokens = 100'000'000;
    bool strip_gutenberg = true;      // keep only the text between the "*** START OF" and "*** END OF" lines
    bool normalize_newlines = true;   // "\r\n" -> "\n"
    bool quiet = false;               // no per-shard and summary lines on stdout
};

struct TokenizeResult {
    size_t documents = 0, gutenberg_stripped = 0, input_bytes = 0;
    size_t train_tokens = 0, val_tokens = 0;
    std::vector<std::string> train_shards, val_shards;  // the paths written
};

// Runs the whole conversion; fails (Error) naming the file on a missing input or tokenizer file, a bad option,
// or a write failure.
TokenizeResult run_tokenize(const TokenizeOptions& options);

// The input files, in order: a directory gives its *.txt files (sorted), a pattern with * ? or [ its matches
// (sorted), anything else the file itself (which must exist).
std::vector<std::string> expand_text_inputs(const std::vector<std::string>& inputs);

// The body of a Project Gutenberg text: what lies between the line that starts with "***" + optional spaces +
// "START OF" (and, when that marker wraps, up to 3 lines that follow until one ending in "***") and the line
// that starts with "***" + optional spaces + "END OF", less a closing "End of (the) Project Gutenberg..." line
// among its last 3 lines, with the blank lines at both ends removed. The whole text when either marker is
// missing (*stripped is then false).
std::string strip_gutenberg_boilerplate(const std::string& text, bool* stripped = nullptr);

// Whether document `index` of `count` is a validation document when whole documents are split (see above);
// whole-document splitting applies when floor(count * val_fraction) >= 1.
bool is_validation_document(size_t index, double val_fraction);
bool split_whole_documents(size_t count, double val_fraction);
