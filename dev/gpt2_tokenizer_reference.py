#!/usr/bin/env python3
# An independent Python implementation of the GPT-2 byte-level BPE encoder, written from the algorithm that
# OpenAI published with GPT-2 (encoder.py: bytes_to_unicode, get_pairs, bpe by merge rank, the pre-tokenisation
# regex), used to write the expected ids of test/fixtures/tokenizer_cases.txt for test/test_tokenizer.cpp.
#
# Regenerate (deterministic; reads ../shared/data/tokenizer/gpt2/ and tinyshakespeare beside the checkout):
#
#     /usr/bin/python3 dev/gpt2_tokenizer_reference.py
#
# Needs Python's `regex` module for \p{L} / \p{N} (Debian: apt-get install -y python3-regex).
# A dev tool only: neither the build nor CI runs it.
import json
import os
import sys

try:
    import regex
except ImportError:
    sys.exit("gpt2_tokenizer_reference.py: needs the `regex` module (Debian: apt-get install -y python3-regex)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")
TOKENIZER_DIR = os.path.join(SHARED, "tokenizer", "gpt2")
SHAKESPEARE = os.path.join(SHARED, "text", "tinyshakespeare", "input.txt")
OUTPUT = os.path.join(REPO, "test", "fixtures", "tokenizer_cases.txt")

PRETOKEN_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
END_OF_TEXT = "<|endoftext|>"


def byte_alphabet():
    """byte -> one printable character: printable Latin-1 bytes stand for themselves, the 68 others
    (controls, space, DEL, NBSP, soft hyphen...) for 256, 257, ... in byte order."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    alphabet = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            alphabet[byte] = chr(byte)
        else:
            alphabet[byte] = chr(256 + extra)
            extra += 1
    return alphabet


def adjacent_pairs(symbols):
    return {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}


class Encoder:
    def __init__(self, directory):
        with open(os.path.join(directory, "encoder.json"), encoding="utf-8") as file:
            self.token_to_id = json.load(file)
        with open(os.path.join(directory, "vocab.bpe"), encoding="utf-8") as file:
            lines = file.read().split("\n")
        assert lines[0].startswith("#version"), "vocab.bpe: missing the #version header"
        merges = [tuple(line.split(" ")) for line in lines[1:] if line]
        self.rank = {pair: index for index, pair in enumerate(merges)}
        self.alphabet = byte_alphabet()
        self.pattern = regex.compile(PRETOKEN_PATTERN)
        self.memo = {}

    def merge_word(self, word):
        """Repeatedly merge every occurrence (left to right) of the adjacent pair with the lowest rank."""
        if word in self.memo:
            return self.memo[word]
        symbols = list(word)
        while len(symbols) > 1:
            ranked = [(self.rank[pair], pair) for pair in adjacent_pairs(symbols) if pair in self.rank]
            if not ranked:
                break
            _, (left, right) = min(ranked)
            merged = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self.memo[word] = symbols
        return symbols

    def encode(self, text):
        ids = []
        for piece in self.pattern.findall(text):
            word = "".join(self.alphabet[byte] for byte in piece.encode("utf-8"))
            ids.extend(self.token_to_id[symbol] for symbol in self.merge_word(word))
        return ids

    def encode_with_special(self, text):
        ids = []
        for index, part in enumerate(text.split(END_OF_TEXT)):
            if index > 0:
                ids.append(self.token_to_id[END_OF_TEXT])
            ids.extend(self.encode(part))
        return ids


def test_strings():
    cases = [
        "Hello, world! This is a test of the GPT-2 tokenizer.",
        "The quick brown fox jumps over the lazy dog.",
        "café naïve Zürich façade résumé Ångström",
        "日本語のテキスト 中文",
        "한국어 텍스트와 Русский текст и ελληνικά",
        "👍🏽🎉 emoji 🤖🧪 done",
        "3.14159 and 1,000,000 2026",
        "12345678901234567890 x2 v1.2.3 0x7fff",
        "a   b\t\tc\n\n\nd   ",
        "I'm can't we've they'll she'd it's",
        "I'M CAN'T don’t 'twas rock'n'roll 's 're",
        "Mixed: (parentheses) [brackets] {braces} <angle> --dashes-- ...ellipsis... !?!? @#$%^&*_+=|\\/~`",
        " leading space",
        "  two leading spaces and trailing spaces  ",
        "",
        " ",
        "\n",
        "<|endoftext|>",
        "before<|endoftext|>after",
        "tabs\tand\r\nwindows\r\nline endings\r\n",
        "non\u00a0breaking\u2003em space\u3000ideographic",
        "\u0085next line\u2028line separator\u180emongolian",
        "U+180E is no white space in Unicode: a \u180e! b \u180e1\n\n\u180e",
        "zero\u200bwidth and combining e\u0301",
        "ﬁ ligature, ½ fraction, ² superscript, Ⅻ roman",
        " " * 300 + "x",
        "x" + "\n" * 50,
        "a" * 1000,
        "abc" * 400,
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "https://example.com/path?query=1&other=two#fragment",
        'def f(x):\n    return {"key": [1, 2, 3]}\n',
    ]
    return cases


def shakespeare_paragraphs():
    with open(SHAKESPEARE, encoding="utf-8") as file:
        text = file.read()
    paragraphs = text.split("\n\n")
    return ["\n\n".join(paragraphs[i:i + 3]) for i in (0, 100, 2000, 5000)]


def main():
    encoder = Encoder(TOKENIZER_DIR)
    lines = [
        "# GPT-2 tokenizer cases for test/test_tokenizer.cpp: one JSON object per line, {\"text\", \"ids\"},",
        "# plus \"special\": true where \"<|endoftext|>\" in the text is the special token (ids 50256).",
        "# Written by an independent Python implementation of OpenAI's encoder.py; regenerate with",
        "#     /usr/bin/python3 dev/gpt2_tokenizer_reference.py",
    ]
    cases = [(text, False) for text in test_strings() + shakespeare_paragraphs()]
    cases += [("<|endoftext|>", True), ("before<|endoftext|>after <|endoftext|><|endoftext|> end", True),
              ("<|endoftext|>The first document.\n<|endoftext|>The second.", True)]
    for text, special in cases:
        ids = encoder.encode_with_special(text) if special else encoder.encode(text)
        case = {"text": text, "ids": ids}
        if special:
            case["special"] = True
        lines.append(json.dumps(case))
    with open(OUTPUT, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUTPUT, REPO)} ({os.path.getsize(OUTPUT)} bytes)")


if __name__ == "__main__":
    main()
