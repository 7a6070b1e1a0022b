// Hugging Face GPT-2 folders <-> clora's parameters; see hf_gpt2.h.
#include "model/hf_gpt2.h"

#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/json_file.h"
#include "data/safetensors.h"
#include "data/utf8.h"
#include "model/parameters.h"

using nlohmann::json;

namespace {

constexpr double LAYER_NORM_EPSILON = 1e-5;  // clora's layernorm (model/cpu/layernorm.h)

// One tensor of a transformers GPT-2 and where it goes in clora's parameters.
struct TensorPlace {
    std::string name;              // transformers' name without "transformer."
    int tensor;                    // clora's tensor (model/parameters.h order)
    size_t offset;                 // elements into that tensor (layer l's slice)
    std::vector<int64_t> shape;    // transformers' shape
    bool transposed;               // a Conv1D weight: transformers' (in, out) is clora's (out, in)
};

// Every tensor of the model in transformers' naming, the embedding's rows V (not Vp).
std::vector<TensorPlace> tensor_places(const GPT2Config& c) {
    const int64_t V = c.vocab_size, C = c.channels, maxT = c.max_seq_len;
    std::vector<TensorPlace> places = {{"wte.weight", 0, 0, {V, C}, false}, {"wpe.weight", 1, 0, {maxT, C}, false}};
    for (int l = 0; l < c.num_layers; l++) {
        const std::string h = "h." + std::to_string(l) + ".";
        const size_t L = size_t(l), Cs = size_t(C);
        places.insert(places.end(), {
            {h + "ln_1.weight", 2, L * Cs, {C}, false},
            {h + "ln_1.bias", 3, L * Cs, {C}, false},
            {h + "attn.c_attn.weight", 4, L * 3 * Cs * Cs, {C, 3 * C}, true},
            {h + "attn.c_attn.bias", 5, L * 3 * Cs, {3 * C}, false},
            {h + "attn.c_proj.weight", 6, L * Cs * Cs, {C, C}, true},
            {h + "attn.c_proj.bias", 7, L * Cs, {C}, false},
            {h + "ln_2.weight", 8, L * Cs, {C}, false},
            {h + "ln_2.bias", 9, L * Cs, {C}, false},
            {h + "mlp.c_fc.weight", 10, L * 4 * Cs * Cs, {C, 4 * C}, true},
            {h + "mlp.c_fc.bias", 11, L * 4 * Cs, {4 * C}, false},
            {h + "mlp.c_proj.weight", 12, L * 4 * Cs * Cs, {4 * C, C}, true},
            {h + "mlp.c_proj.bias", 13, L * Cs, {C}, false},
        });
    }
    places.insert(places.end(), {{"ln_f.weight", 14, 0, {C}, false}, {"ln_f.bias", 15, 0, {C}, false}});
    return places;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string text = "(";
    for (size_t i = 0; i < shape.size(); i++) text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + (shape.size() == 1 ? ",)" : ")");
}

// A config.json field: its value, or `fallback` when absent or null (a json null for a required field).
json field(const json& config, const char* key, const json& fallback = nullptr) {
    auto value = config.find(key);
    return value == config.end() || value->is_null() ? fallback : *value;
}

int int_field(const json& config, const std::string& path, const char* key, const char* other_key = nullptr) {
    json value = field(config, key);
    if (value.is_null() && other_key) value = field(config, other_key);
    if (value.is_null()) fail(path + ": \"" + key + "\" is missing");
    if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > (1 << 20))
        fail(path + ": \"" + key + "\" must be an integer in 1..1048576, found " + printable(value.dump()));
    return value.get<int>();
}

// Fails unless the field is absent or equals `supported`, saying why clora cannot run the model otherwise.
void require_field(const json& config, const std::string& path, const char* key, const json& supported,
                   const std::string& why) {
    const json value = field(config, key, supported);
    if (value != supported)
        fail(path + ": \"" + key + "\" is " + printable(value.dump()) + ": clora supports only " + supported.dump() +
             " (" + why + ")");
}

GPT2Config read_config(const std::string& path) {
    const json config = parse_json_file(path);
    if (!config.is_object()) fail(path + ": expected a JSON object, found " + describe_json_type(config));
    const json type = field(config, "model_type", "gpt2");
    if (type != "gpt2") fail(path + ": \"model_type\" is " + printable(type.dump()) + ", expected \"gpt2\"");
    const json activation = field(config, "activation_function", "gelu_new");
    if (activation != "gelu_new" && activation != "gelu_pytorch_tanh")
        fail(path + ": \"activation_function\" is " + printable(activation.dump()) +
             ": clora's GELU is the tanh approximation (gelu_new or gelu_pytorch_tanh)");
    require_field(config, path, "scale_attn_by_inverse_layer_idx", false, "attention scores are scaled by 1/sqrt(d) only");
    require_field(config, path, "reorder_and_upcast_attn", false, "clora's attention has one fixed order");
    require_field(config, path, "scale_attn_weights", true, "attention scores are scaled by 1/sqrt(d)");
    require_field(config, path, "add_cross_attention", false, "GPT-2 blocks without cross-attention");
    const json epsilon = field(config, "layer_norm_epsilon", LAYER_NORM_EPSILON);
    if (!epsilon.is_number() || std::fabs(epsilon.get<double>() - LAYER_NORM_EPSILON) > 1e-12)
        fail(path + ": \"layer_norm_epsilon\" is " + printable(epsilon.dump()) + ": clora's layernorm uses 1e-05");

    GPT2Config c;
    c.num_layers = int_field(config, path, "n_layer");
    c.num_heads = int_field(config, path, "n_head");
    c.channels = int_field(config, path, "n_embd");
    c.max_seq_len = int_field(config, path, "n_positions", "n_ctx");
    c.vocab_size = int_field(config, path, "vocab_size");
    c.padded_vocab_size = padded_vocab(c.vocab_size);
    const json inner = field(config, "n_inner");
    if (!inner.is_null() && inner != json(4 * int64_t(c.channels)))
        fail(path + ": \"n_inner\" is " + printable(inner.dump()) + ": clora's MLP is 4 x n_embd = " +
             std::to_string(4 * int64_t(c.channels)));
    validate_config(c, path);
    return c;
}

// transformers' name of a stored tensor without the "transformer." prefix of GPT2LMHeadModel.
std::string bare_name(const std::string& name) {
    const std::string prefix = "transformer.";
    return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

// The attention's causal-mask buffers, which old checkpoints stored: h.<l>.attn.bias / h.<l>.attn.masked_bias.
bool is_mask_buffer(const std::string& name) {
    const auto ends_with = [&](const std::string& suffix) {
        return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return name.rfind("h.", 0) == 0 && (ends_with(".attn.bias") || ends_with(".attn.masked_bias"));
}

}  // namespace

HfModel read_hf_gpt2(const std::string& dir) {
    if (!is_directory(dir)) fail(printable(dir) + ": not a folder (expected a Hugging Face model folder)");
    HfModel model;
    model.config = read_config(dir + "/config.json");
    const GPT2Config& c = model.config;
    SafeTensors file = read_safetensors_folder(dir);

    // every stored tensor under its bare name, once
    std::map<std::string, SafeTensor*> stored;
    for (auto& [name, tensor] : file.tensors) {
        const std::string bare = bare_name(name);
        if (!stored.emplace(bare, &tensor).second)
            fail(printable(dir) + ": tensor " + printable(bare) + " is stored twice (with and without \"transformer.\")");
    }
    model.parameters.assign(num_parameters(c), 0.0f);
    const auto tensors = carve_parameters(model.parameters.data(), c).list();
    for (const TensorPlace& place : tensor_places(c)) {
        auto found = stored.find(place.name);
        if (found == stored.end()) fail(printable(dir) + ": tensor " + place.name + " is missing");
        const SafeTensor& tensor = *found->second;
        if (!tensor.is_float())
            fail(printable(dir) + ": tensor " + place.name + " is " + printable(tensor.dtype) +
                 ": clora reads F32, F16 and BF16 weights");
        if (tensor.shape != place.shape)
            fail(printable(dir) + ": tensor " + place.name + " has shape " + shape_text(tensor.shape) +
                 ", the config gives " + shape_text(place.shape));
        for (size_t i = 0; i < tensor.values.size(); i++)
            if (!std::isfinite(tensor.values[i]))
                fail(printable(dir) + ": tensor " + place.name + " has a non-finite value at element " +
                     std::to_string(i));
        float* out = tensors[size_t(place.tensor)] + place.offset;
        if (!place.transposed) {
            std::copy(tensor.values.begin(), tensor.values.end(), out);
        } else {
            const size_t in = size_t(place.shape[0]), out_features = size_t(place.shape[1]);
            for (size_t i = 0; i < in; i++)
                for (size_t o = 0; o < out_features; o++) out[o * in + i] = tensor.values[i * out_features + o];
        }
        stored.erase(found);
    }
    // what is left: the tied head (must be wte), mask buffers (ignored), anything else refused
    auto head = stored.find("lm_head.weight");
    if (head != stored.end()) {
        const SafeTensor& tensor = *head->second;
        const float* wte = model.parameters.data();
        if (!tensor.is_float() || tensor.shape != std::vector<int64_t>{c.vocab_size, c.channels} ||
            std::memcmp(tensor.values.data(), wte, tensor.values.size() * sizeof(float)) != 0)
            fail(printable(dir) + ": lm_head.weight differs from wte.weight: clora's output layer is tied to the "
                                  "token embedding, so an untied head cannot be represented");
        model.notes.push_back("lm_head.weight equals wte.weight (tied)");
        stored.erase(head);
    }
    int buffers = 0;
    for (const auto& [name, tensor] : stored) {
        if (!is_mask_buffer(name)) fail(printable(dir) + ": unexpected tensor " + printable(name) + " (not GPT-2's)");
        buffers++;
    }
    if (buffers > 0) model.notes.push_back(std::to_string(buffers) + " attention mask buffers ignored");
    return model;
}

void write_hf_gpt2(const std::string& dir, const GPT2Config& c, const float* parameters) {
    validate_config(c, dir);
    SafeTensors file;
    file.metadata["format"] = "pt";
    const auto tensors = carve_parameters(parameters, c).list();
    for (const TensorPlace& place : tensor_places(c)) {
        SafeTensor tensor;
        tensor.dtype = "F32";
        tensor.shape = place.shape;
        size_t count = 1;
        for (int64_t dimension : place.shape) count *= size_t(dimension);
        tensor.values.resize(count);
        const float* in = tensors[size_t(place.tensor)] + place.offset;
        if (!place.transposed) {
            std::copy(in, in + count, tensor.values.begin());
        } else {
            const size_t rows = size_t(place.shape[0]), cols = size_t(place.shape[1]);
            for (size_t i = 0; i < rows; i++)
                for (size_t o = 0; o < cols; o++) tensor.values[i * cols + o] = in[o * rows + i];
        }
        file.tensors["transformer." + place.name] = std::move(tensor);
    }
    // the end-of-text token: GPT-2's 50256 when the vocabulary has it, else the last token
    const int eot = std::min(c.vocab_size - 1, 50256);
    const json config = {
        {"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"},
        {"vocab_size", c.vocab_size}, {"n_positions", c.max_seq_len}, {"n_embd", c.channels},
        {"n_layer", c.num_layers}, {"n_head", c.num_heads}, {"n_inner", nullptr},
        {"activation_function", "gelu_new"}, {"layer_norm_epsilon", LAYER_NORM_EPSILON},
        {"resid_pdrop", 0.1}, {"embd_pdrop", 0.1}, {"attn_pdrop", 0.1}, {"initializer_range", 0.02},
        {"scale_attn_weights", true}, {"scale_attn_by_inverse_layer_idx", false},
        {"reorder_and_upcast_attn", false}, {"add_cross_attention", false}, {"use_cache", true},
        {"tie_word_embeddings", true}, {"bos_token_id", eot}, {"eos_token_id", eot}, {"dtype", "float32"}};
    make_directories(dir);
    write_safetensors(dir + "/model.safetensors", file);
    const std::string text = config.dump(2) + "\n";
    AtomicFileWriter writer(dir + "/config.json");
    writer.write(text.data(), text.size());
    writer.commit();
}
