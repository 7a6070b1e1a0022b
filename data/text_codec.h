// A tokenizer-agnostic text <-> token-id interface for the continual-learning loop: the loop encodes prompts and
// answers, decodes generated ids for exact match, and needs the end-of-text id and the vocabulary size, whatever
// the tokenizer. Two codecs exist:
//   byte_codec()       each byte is its own token (0..255), end-of-text is 256, 257 ids in all: the built-in
//                      synthetic benchmark (data/synthetic_tasks.h) with a tiny model, no files needed;
//   gpt2_codec(tok)    GPT-2's byte-level BPE (data/tokenizer.h), end-of-text 50256, 50257 ids.
#pragma once
#include <functional>
#include <string>
#include <vector>

struct GPT2Tokenizer;

struct TextCodec {
    // Ids of UTF-8 (or any byte) text; "<|endoftext|>" in the text is plain text, never eot_token.
    std::function<std::vector<int>(const std::string&)> encode;
    // The bytes of the ids; eot_token decodes as the text "<|endoftext|>" (as GPT-2's decoder does). Fails naming
    // the first id outside [0, vocab_size) and its position.
    std::function<std::string(const std::vector<int>&)> decode;
    int eot_token = -1;
    int vocab_size = 0;
    // Prepended to an answer that directly follows a prompt ending in a non-space character, when the answer itself
    // starts with one: GPT-2's BPE tokenizes "Answer: World" as "Answer" ":" " World", the space belonging to the
    // word, so the answer "World" is encoded as " World" (the common token) and not as "World" (a rare one that a
    // small base has hardly seen). " " for gpt2, "" for byte (the synthetic benchmark's answers follow "=").
    std::string answer_prefix;
    std::string name;  // "byte" or "gpt2", for logs and error messages
};

// Byte-level codec: encode(s)[i] = (unsigned char)s[i]; eot_token 256; vocab_size 257. decode(encode(s)) == s for
// every byte string.
TextCodec byte_codec();

// Wraps a loaded GPT2Tokenizer (fails if it is not loaded). The tokenizer must outlive the codec, and, like the
// tokenizer, the codec's encode is not thread-safe.
TextCodec gpt2_codec(GPT2Tokenizer& tokenizer);
