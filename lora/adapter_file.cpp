#include "lora/adapter_file.h"

#include <cmath>
#include <cstring>

#include "data/file_io.h"
#include "data/llmc_header.h"
#include "model/gpt2_config.h"

namespace {

const char* const ADAPTER_FILE_KIND = "clora adapter file";
enum HeaderSlot { LAYERS = 2, CHANNELS, RANK, MODULES, BRANCHES, FIRST_TRAINABLE, ALPHA, DROPOUT, TENSORS, TASKS };
constexpr int32_t MAX_NAME_LENGTH = 256;

int32_t float_bits(float value) {
    int32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    return bits;
}
float bits_float(int32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
}

}  // namespace

const std::vector<float>& AdapterFile::tensor(const std::string& name) const {
    for (const auto& [key, values] : tensors)
        if (key == name) return values;
    fail("adapter file has no tensor '" + name + "'");
}

bool AdapterFile::has(const std::string& name) const {
    for (const auto& entry : tensors)
        if (entry.first == name) return true;
    return false;
}

void AdapterFile::set(const std::string& name, std::vector<float> values) {
    for (auto& entry : tensors)
        if (entry.first == name) {
            entry.second = std::move(values);
            return;
        }
    tensors.emplace_back(name, std::move(values));
}

size_t lora_num_parameters(const LoraConfig& config, int num_layers, int channels, int branches) {
    GPT2Config shape;
    shape.channels = channels;
    size_t per_layer = 0;
    for (int m = 0; m < NUM_LORA_MODULES; m++)
        if (config.adapts(m)) {
            LinearShape s = lora_module_shape(m, shape);
            per_layer += size_t(branches) * config.rank * (s.in + s.out);
        }
    return per_layer * num_layers;
}

void write_adapter_file(const std::string& path, const AdapterFile& file) {
    const size_t expected = lora_num_parameters(file.config, file.num_layers, file.channels, file.branches);
    if (!file.has("lora") || file.tensor("lora").size() != expected)
        fail(path + ": cannot write adapters: tensor 'lora' must hold " + std::to_string(expected) + " values");
    LlmcHeader header = make_llmc_header(ADAPTER_FILE_MAGIC, ADAPTER_FILE_VERSION);
    header[LAYERS] = file.num_layers;
    header[CHANNELS] = file.channels;
    header[RANK] = file.config.rank;
    header[MODULES] = int32_t(file.config.modules);
    header[BRANCHES] = file.branches;
    header[FIRST_TRAINABLE] = file.first_trainable;
    header[ALPHA] = float_bits(file.config.alpha);
    header[DROPOUT] = float_bits(file.config.dropout);
    header[TENSORS] = int32_t(file.tensors.size());
    header[TASKS] = file.tasks_completed;
    AtomicFileWriter writer(path);
    write_llmc_header(writer, header);
    for (const auto& [name, values] : file.tensors) {
        int32_t length = int32_t(name.size());
        int64_t count = int64_t(values.size());
        writer.write(&length, sizeof(length));
        writer.write(name.data(), name.size());
        writer.write(&count, sizeof(count));
        writer.write_array(values);
    }
    writer.commit();
}

AdapterFile read_adapter_file(const std::string& path) {
    FileReader reader(path);
    LlmcHeader header = read_llmc_header(reader, ADAPTER_FILE_MAGIC, ADAPTER_FILE_KIND);
    expect_llmc_version(reader, header, ADAPTER_FILE_KIND, {ADAPTER_FILE_VERSION});
    AdapterFile file;
    file.num_layers = header[LAYERS];
    file.channels = header[CHANNELS];
    file.config.rank = header[RANK];
    file.config.modules = unsigned(header[MODULES]);
    file.config.alpha = bits_float(header[ALPHA]);
    file.config.dropout = bits_float(header[DROPOUT]);
    file.branches = header[BRANCHES];
    file.first_trainable = header[FIRST_TRAINABLE];
    file.tasks_completed = header[TASKS];
    try {
        validate_lora_config(file.config);
    } catch (const Error& e) {
        reader.fail_here(e.what());
    }
    if (file.num_layers < 1 || file.channels < 1 || file.branches < 0 || file.first_trainable < 0 ||
        file.first_trainable > file.branches || file.tasks_completed < 0 || header[TENSORS] < 1)
        reader.fail_here("invalid header (layers " + std::to_string(file.num_layers) + ", channels " +
                         std::to_string(file.channels) + ", branches " + std::to_string(file.branches) +
                         ", first trainable " + std::to_string(file.first_trainable) + ", tensors " +
                         std::to_string(header[TENSORS]) + ")");
    for (int i = 0; i < header[TENSORS]; i++) {
        int32_t length = reader.read_array<int32_t>(1, "tensor name length")[0];
        if (length < 1 || length > MAX_NAME_LENGTH)
            reader.fail_here("tensor " + std::to_string(i) + ": bad name length " + std::to_string(length));
        std::vector<char> name = reader.read_array<char>(size_t(length), "tensor name");
        int64_t count = reader.read_array<int64_t>(1, "tensor size")[0];
        std::string key(name.begin(), name.end());
        if (count < 0) reader.fail_here("tensor '" + key + "': negative size");
        std::vector<float> values = read_payload<float>(reader, size_t(count), "tensor values");
        for (size_t k = 0; k < values.size(); k++)
            if (!std::isfinite(values[k]))
                reader.fail_here("tensor '" + key + "': value " + std::to_string(values[k]) + " at index " +
                                 std::to_string(k));
        if (file.has(key)) reader.fail_here("tensor '" + key + "' appears twice");
        file.tensors.emplace_back(std::move(key), std::move(values));
    }
    reader.expect_end();
    const size_t expected = lora_num_parameters(file.config, file.num_layers, file.channels, file.branches);
    if (!file.has("lora")) reader.fail_here("no 'lora' tensor");
    if (file.tensor("lora").size() != expected)
        reader.fail_here("tensor 'lora' holds " + std::to_string(file.tensor("lora").size()) + " values, " +
                         std::to_string(expected) + " expected for " + std::to_string(file.branches) + " branches");
    return file;
}
