// Adapters merged into the base or written as PEFT adapters; see hf_adapters.h.
#include "lora/hf_adapters.h"

#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/safetensors.h"
#include "data/utf8.h"
#include "model/lora_adapters.h"
#include "model/parameters.h"

using nlohmann::json;

namespace {

// PEFT's (transformers') name of each adaptable linear, by LoraModule
const char* const PEFT_MODULE_NAMES[NUM_LORA_MODULES] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
// ... and the target_modules entries that select exactly those linears in a GPT-2
const char* const PEFT_TARGETS[NUM_LORA_MODULES] = {"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"};

GPT2Config adapter_shape(const FixedAdapters& adapters) {
    GPT2Config shape;
    shape.num_layers = adapters.num_layers;
    shape.channels = adapters.channels;
    return shape;
}

// Branches [first, first + count) of every adapted linear as PEFT tensors.
SafeTensors peft_tensors(const FixedAdapters& adapters, int first, int count) {
    std::vector<LoraSlot> slots;
    lora_layout(adapters.config, adapter_shape(adapters), adapters.branches, slots);
    const size_t r = size_t(adapters.config.rank), rows = size_t(count) * r, first_row = size_t(first) * r;
    SafeTensors file;
    file.metadata["format"] = "pt";
    for (const LoraSlot& slot : slots) {
        const size_t in = size_t(slot.shape.in), out = size_t(slot.shape.out);
        const std::string prefix = "base_model.model.transformer.h." + std::to_string(slot.layer) + "." +
                                   PEFT_MODULE_NAMES[slot.module];
        SafeTensor A{"F32", {int64_t(rows), int64_t(in)}, {}}, B{"F32", {int64_t(out), int64_t(rows)}, {}};
        const float* a = adapters.values.data() + slot.A + first_row * in;
        A.values.assign(a, a + rows * in);
        const float* bt = adapters.values.data() + slot.Bt + first_row * out;  // (rows, out)
        B.values.resize(out * rows);
        for (size_t k = 0; k < rows; k++)
            for (size_t o = 0; o < out; o++) B.values[o * rows + k] = bt[k * out + o];
        file.tensors[prefix + ".lora_A.weight"] = std::move(A);
        file.tensors[prefix + ".lora_B.weight"] = std::move(B);
    }
    return file;
}

void write_peft_folder(const std::string& dir, const FixedAdapters& adapters, int first, int count) {
    json targets = json::array();
    for (int m = 0; m < NUM_LORA_MODULES; m++)
        if (adapters.config.adapts(m)) targets.push_back(PEFT_TARGETS[m]);
    const json config = {
        {"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"base_model_name_or_path", nullptr},
        {"r", count * adapters.config.rank}, {"lora_alpha", double(adapters.config.alpha) * count},
        {"lora_dropout", double(adapters.config.dropout)}, {"target_modules", targets},
        {"fan_in_fan_out", true}, {"bias", "none"}, {"use_rslora", false}, {"use_dora", false},
        {"init_lora_weights", true}, {"inference_mode", true}, {"modules_to_save", nullptr}};
    make_directories(dir);
    write_safetensors(dir + "/adapter_model.safetensors", peft_tensors(adapters, first, count));
    const std::string text = config.dump(2) + "\n";
    AtomicFileWriter writer(dir + "/adapter_config.json");
    writer.write(text.data(), text.size());
    writer.commit();
}

}  // namespace

FixedAdapters fixed_adapters(const AdapterFile& file, bool ilora_fast) {
    const std::string where = printable(file.path.empty() ? "adapters" : file.path);
    if (file.has("gainlora/gates"))
        fail(where + ": GainLoRA adapters weigh each branch by a gate computed from the prompt: the update depends on "
                     "the input, so it has no fixed weights to merge and no PEFT form");
    if (file.has("amlora/attention"))
        fail(where + ": AM-LoRA adapters mix the branches by an attention over their outputs: the update depends on "
                     "the input, so it has no fixed weights to merge and no PEFT form");
    FixedAdapters adapters;
    adapters.config = file.config;
    adapters.num_layers = file.num_layers;
    adapters.channels = file.channels;
    adapters.branches = file.branches;
    adapters.source = file.has("ilora/slow") && !ilora_fast ? "ilora/slow" : "lora";
    adapters.values = file.tensor(adapters.source);
    const size_t expected = lora_num_parameters(file.config, file.num_layers, file.channels, file.branches);
    if (adapters.values.size() != expected)
        fail(where + ": tensor " + adapters.source + " holds " + std::to_string(adapters.values.size()) +
             " values, " + std::to_string(expected) + " expected");
    return adapters;
}

void merge_adapters(std::vector<float>& parameters, const GPT2Config& config, const FixedAdapters& adapters) {
    if (adapters.num_layers != config.num_layers || adapters.channels != config.channels)
        fail("the adapters (" + std::to_string(adapters.num_layers) + " layers x " + std::to_string(adapters.channels) +
             " channels) do not fit the model (" + describe_config(config) + ")");
    if (parameters.size() != num_parameters(config)) fail("merge_adapters: parameters of the wrong size");
    const ParameterTensors<float> p = carve_parameters(parameters.data(), config);
    float* const weights[NUM_LORA_MODULES] = {p.qkvw, p.attprojw, p.fcw, p.fcprojw};
    std::vector<LoraSlot> slots;
    lora_layout(adapters.config, config, adapters.branches, slots);
    const size_t R = size_t(adapters.branches) * size_t(adapters.config.rank);
    const double scale = adapters.config.scale();
    for (const LoraSlot& slot : slots) {
        const size_t in = size_t(slot.shape.in), out = size_t(slot.shape.out);
        float* W = weights[slot.module] + size_t(slot.layer) * in * out;  // (out, in)
        const float* A = adapters.values.data() + slot.A;                 // (R, in)
        const float* Bt = adapters.values.data() + slot.Bt;               // (R, out)
        for (size_t o = 0; o < out; o++)
            for (size_t i = 0; i < in; i++) {
                double update = 0;
                for (size_t k = 0; k < R; k++) update += double(Bt[k * out + o]) * double(A[k * in + i]);
                W[o * in + i] = float(double(W[o * in + i]) + scale * update);
            }
    }
}

std::vector<std::string> write_peft_adapters(const std::string& dir, const FixedAdapters& adapters) {
    std::vector<std::string> written = {dir};
    write_peft_folder(dir, adapters, 0, adapters.branches);
    if (adapters.branches > 1)
        for (int b = 0; b < adapters.branches; b++) {
            written.push_back(dir + "/task" + std::to_string(b + 1));
            write_peft_folder(written.back(), adapters, b, 1);
        }
    return written;
}
