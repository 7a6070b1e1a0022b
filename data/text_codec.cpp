#include "data/text_codec.h"

#include "data/file_io.h"
#include "data/tokenizer.h"

TextCodec byte_codec() {
    constexpr int eot = 256;
    TextCodec codec;
    codec.name = "byte";
    codec.eot_token = eot;
    codec.vocab_size = eot + 1;
    codec.encode = [](const std::string& text) {
        std::vector<int> ids(text.size());
        for (size_t i = 0; i < text.size(); i++) ids[i] = static_cast<unsigned char>(text[i]);
        return ids;
    };
    codec.decode = [](const std::vector<int>& ids) {
        std::string text;
        text.reserve(ids.size());
        for (size_t i = 0; i < ids.size(); i++) {
            const int id = ids[i];
            if (id == eot)
                text += GPT2Tokenizer::EOT_TEXT;
            else if (id >= 0 && id < 256)
                text += static_cast<char>(id);
            else
                fail("byte codec: token id " + std::to_string(id) + " at position " + std::to_string(i) +
                     " is outside 0..255 (and is not the end-of-text id 256)");
        }
        return text;
    };
    return codec;
}

TextCodec gpt2_codec(GPT2Tokenizer& tokenizer) {
    if (!tokenizer.loaded()) fail("gpt2 codec: the GPT-2 tokenizer is not loaded");
    GPT2Tokenizer* t = &tokenizer;
    TextCodec codec;
    codec.name = "gpt2";
    codec.answer_prefix = " ";
    codec.eot_token = tokenizer.eot_token;
    codec.vocab_size = tokenizer.vocab_size();
    codec.encode = [t](const std::string& text) { return t->encode(text); };
    codec.decode = [t](const std::vector<int>& ids) { return t->decode(ids); };
    return codec;
}
