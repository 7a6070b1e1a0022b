#include "lora/adapter_file.h"

#include <cmath>
#include <cstring>

#include "data/file_io.h"
#include "data/llmc_header.h"
#include "data/utf8.h"
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

// a * b, failing with `what` when the product does not fit a size_t.
size_t checked_product(size_t a, size_t b, const char* what) {
    size_t product;
    if (__builtin_mul_overflow(a, b, &product)) fail(std::string(what) + ": the parameter count overflows");
    return product;
}

// "in <path>" for messages about a file read from disk; "" for one built in memory.
std::string place(const AdapterFile& file) { return file.path.empty() ? "adapter file" : file.path; }

// Tensor names are printable ASCII: "lora", "accuracy/0", "gainlora/module_basis/3".
bool is_tensor_name(const std::string& name) {
    for (unsigned char c : name)
        if (c < 0x21 || c > 0x7E) return false;
    return !name.empty();
}

// A header count, checked against its range before anything computes with it.
int header_count(const FileReader& reader, const LlmcHeader& header, int slot, const char* name, int min, int max) {
    if (header[slot] < min || header[slot] > max)
        reader.fail_here("header[" + std::to_string(slot) + "] " + name + " = " + std::to_string(header[slot]) +
                         " is outside " + std::to_string(min) + ".." + std::to_string(max));
    return header[slot];
}

}  // namespace

const std::vector<float>& AdapterFile::tensor(const std::string& name) const {
    for (const auto& [key, values] : tensors)
        if (key == name) return values;
    fail(place(*this) + ": no tensor '" + printable(name) + "'");
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
    const char* what = "LoRA adapters";
    if (num_layers < 0 || branches < 0 || config.rank < 0)
        fail(std::string(what) + ": negative layers, branches or rank");
    GPT2Config shape;
    shape.channels = channels;
    size_t per_layer = 0;
    for (int m = 0; m < NUM_LORA_MODULES; m++)
        if (config.adapts(m)) {
            const LinearShape s = lora_module_shape(m, shape);  // checks channels
            const size_t rows = checked_product(size_t(branches), size_t(config.rank), what);
            const size_t module = checked_product(rows, size_t(s.in) + size_t(s.out), what);
            if (__builtin_add_overflow(per_layer, module, &per_layer))
                fail(std::string(what) + ": the parameter count overflows");
        }
    return checked_product(per_layer, size_t(num_layers), what);
}

void write_adapter_file(const std::string& path, const AdapterFile& file) {
    const size_t expected = lora_num_parameters(file.config, file.num_layers, file.channels, file.branches);
    if (!file.has("lora") || file.tensor("lora").size() != expected)
        fail(path + ": cannot write adapters: tensor 'lora' must hold " + std::to_string(expected) + " values");
    for (const auto& entry : file.tensors)
        if (!is_tensor_name(entry.first) || entry.first.size() > size_t(MAX_NAME_LENGTH))
            fail(path + ": cannot write adapters: bad tensor name '" + printable(entry.first) + "'");
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
    file.path = path;
    file.config.rank = header[RANK];
    file.config.modules = unsigned(header[MODULES]);
    file.config.alpha = bits_float(header[ALPHA]);
    file.config.dropout = bits_float(header[DROPOUT]);
    try {
        validate_lora_config(file.config);
    } catch (const Error& e) {
        reader.fail_here(e.what());
    }
    file.num_layers = header_count(reader, header, LAYERS, "num_layers", 1, MAX_ADAPTER_LAYERS);
    file.channels = header_count(reader, header, CHANNELS, "channels", 1, MAX_LORA_CHANNELS);
    file.branches = header_count(reader, header, BRANCHES, "branches", 0, MAX_ADAPTER_BRANCHES);
    file.first_trainable = header_count(reader, header, FIRST_TRAINABLE, "first trainable branch", 0, file.branches);
    file.tasks_completed = header_count(reader, header, TASKS, "tasks completed", 0, MAX_ADAPTER_TASKS);
    const int tensors = header_count(reader, header, TENSORS, "tensors", 1, MAX_ADAPTER_TENSORS);
    size_t expected = 0;
    try {
        expected = lora_num_parameters(file.config, file.num_layers, file.channels, file.branches);
    } catch (const Error& e) {
        reader.fail_here(e.what());
    }
    for (int i = 0; i < tensors; i++) {
        int32_t length = reader.read_array<int32_t>(1, "tensor name length")[0];
        if (length < 1 || length > MAX_NAME_LENGTH)
            reader.fail_here("tensor " + std::to_string(i) + ": bad name length " + std::to_string(length));
        std::vector<char> name = reader.read_array<char>(size_t(length), "tensor name");
        std::string key(name.begin(), name.end());
        if (!is_tensor_name(key))
            reader.fail_here("tensor " + std::to_string(i) + ": the name '" + printable(key) +
                             "' is not printable ASCII");
        int64_t count = reader.read_array<int64_t>(1, "tensor size")[0];
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
    if (!file.has("lora")) reader.fail_here("no 'lora' tensor");
    if (file.tensor("lora").size() != expected)
        reader.fail_here("tensor 'lora' holds " + std::to_string(file.tensor("lora").size()) + " values, " +
                         std::to_string(expected) + " expected for " + std::to_string(file.branches) + " branches");
    return file;
}

void expect_tasks_completed(const AdapterFile& file, int resumed_tasks, size_t tasks_in_order) {
    if (file.tasks_completed != resumed_tasks || resumed_tasks < 0 || size_t(resumed_tasks) > tasks_in_order)
        fail(place(file) + ": the header says " + std::to_string(file.tasks_completed) +
             " tasks completed, but the file is the boundary after task " + std::to_string(resumed_tasks) +
             " (of the order's " + std::to_string(tasks_in_order) + " tasks)");
}

void expect_branches(const AdapterFile& file, int branches, int first_trainable) {
    if (file.branches != branches || file.first_trainable != first_trainable)
        fail(place(file) + ": " + std::to_string(file.branches) + " branches (first trainable " +
             std::to_string(file.first_trainable) + "), this method has " + std::to_string(branches) +
             " (first trainable " + std::to_string(first_trainable) + ") after " +
             std::to_string(file.tasks_completed) + " tasks");
}
