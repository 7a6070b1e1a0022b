#include "model/gpt2_config.h"

#include <sstream>

#include "data/file_io.h"

void validate_config(const GPT2Config& c, const std::string& where) {
    auto require = [&](bool ok, const std::string& problem) {
        if (!ok) fail(where + ": invalid model config: " + problem + " (" + describe_config(c) + ")");
    };
    require(c.max_seq_len > 0 && c.max_seq_len <= 1 << 16, "max_seq_len must be in 1..65536");
    require(c.vocab_size > 0 && c.vocab_size <= 1 << 20, "vocab_size must be in 1..1048576");
    require(c.padded_vocab_size >= c.vocab_size && c.padded_vocab_size <= (1 << 20) + 128,
            "padded_vocab_size must be >= vocab_size");
    require(c.num_layers > 0 && c.num_layers <= 1024, "num_layers must be in 1..1024");
    require(c.num_heads > 0 && c.channels > 0 && c.channels <= 1 << 16, "num_heads and channels must be positive");
    require(c.channels % c.num_heads == 0, "channels must be divisible by num_heads");
}

std::string describe_config(const GPT2Config& c) {
    std::ostringstream text;
    text << "L=" << c.num_layers << " C=" << c.channels << " NH=" << c.num_heads << " V=" << c.vocab_size
         << " Vp=" << c.padded_vocab_size << " maxT=" << c.max_seq_len;
    return text.str();
}

GPT2Config config_from_spec(const std::string& spec) {
    GPT2Config c;
    // llm.c's named GPT-2 sizes: d12 = 124M, d24 = 350M, d36 = 774M, d48 = 1558M.
    const struct { const char* name; int layers, channels, heads; } named[] = {
        {"d12", 12, 768, 12}, {"d24", 24, 1024, 16}, {"d36", 36, 1280, 20}, {"d48", 48, 1600, 25}};
    bool found = false;
    for (const auto& size : named)
        if (spec == size.name) {
            c.num_layers = size.layers, c.channels = size.channels, c.num_heads = size.heads;
            c.vocab_size = 50257, c.max_seq_len = 1024;
            found = true;
        }
    if (!found) {
        char extra;
        std::istringstream in(spec);
        char sep[4];
        if (!(in >> c.num_layers >> sep[0] >> c.channels >> sep[1] >> c.num_heads >> sep[2] >> c.vocab_size >>
              sep[3] >> c.max_seq_len) ||
            sep[0] != ':' || sep[1] != ':' || sep[2] != ':' || sep[3] != ':' || (in >> extra))
            fail("--model-config '" + spec + "': expected d12|d24|d36|d48 or L:C:NH:V:maxT, e.g. 2:36:4:67:16");
    }
    c.padded_vocab_size = padded_vocab(c.vocab_size);
    validate_config(c, "--model-config '" + spec + "'");
    return c;
}
