// Reading and writing llm.c GPT-2 checkpoints (version 3 fp32, version 5 bf16).
#include "model/checkpoint.h"

#include <cmath>
#include <cstring>

#include "data/file_io.h"
#include "data/llmc_header.h"
#include "model/bf16.h"
#include "model/parameters.h"

namespace {
const char* const CHECKPOINT_KIND = "GPT-2 checkpoint";

LlmcHeader checkpoint_header(const GPT2Config& config, int32_t version, const RunStamp& stamp,
                             const std::string& path) {
    LlmcHeader header = make_llmc_header(CHECKPOINT_MAGIC, version);
    set_run_stamp(header, stamp, path);
    header[2] = config.max_seq_len;
    header[3] = config.vocab_size;
    header[4] = config.num_layers;
    header[5] = config.num_heads;
    header[6] = config.channels;
    header[7] = config.padded_vocab_size;
    return header;
}

// The config of header[2..7], each field checked against the range validate_config accepts before any arithmetic
// uses it (padded_vocab(V) of a huge V would overflow), then validate_config for the relations (C % NH, Vp >= V).
GPT2Config header_config(const FileReader& reader, const LlmcHeader& header) {
    const struct { int slot; const char* name; int32_t max; } fields[] = {
        {2, "max_seq_len", 1 << 16}, {3, "vocab_size", 1 << 20}, {4, "num_layers", 1024},
        {5, "num_heads", 1 << 16},   {6, "channels", 1 << 16},   {7, "padded_vocab_size", (1 << 20) + 128}};
    for (const auto& field : fields) {
        const int32_t min = field.slot == 7 ? 0 : 1;  // an old file's padded_vocab_size may be 0
        if (header[field.slot] < min || header[field.slot] > field.max)
            reader.fail_here("header[" + std::to_string(field.slot) + "] " + field.name + " = " +
                             std::to_string(header[field.slot]) + " is outside " + std::to_string(min) + ".." +
                             std::to_string(field.max));
    }
    GPT2Config config;
    config.max_seq_len = header[2];
    config.vocab_size = header[3];
    config.num_layers = header[4];
    config.num_heads = header[5];
    config.channels = header[6];
    config.padded_vocab_size = header[7] != 0 ? header[7] : padded_vocab(config.vocab_size);
    validate_config(config, reader.path);
    return config;
}

// Fails naming the tensor and the element of the first NaN or Inf.
void expect_finite(const FileReader& reader, const GPT2Config& config, const std::vector<float>& parameters) {
    size_t tensor_begin = 0;
    std::array<size_t, NUM_PARAMETER_TENSORS> sizes = parameter_sizes(config);
    for (int tensor = 0; tensor < NUM_PARAMETER_TENSORS; tensor++) {
        for (size_t i = 0; i < sizes[tensor]; i++) {
            float value = parameters[tensor_begin + i];
            if (!std::isfinite(value))
                reader.fail_here("parameter tensor " + std::string(PARAMETER_NAMES[tensor]) +
                                 " has a non-finite value (" + std::to_string(value) + ") at element " +
                                 std::to_string(i) + " of " + std::to_string(sizes[tensor]));
        }
        tensor_begin += sizes[tensor];
    }
}
}  // namespace

Checkpoint read_checkpoint(const std::string& path) {
    FileReader reader(path);
    LlmcHeader header = read_llmc_header(reader, CHECKPOINT_MAGIC, CHECKPOINT_KIND);
    expect_llmc_version(reader, header, CHECKPOINT_KIND, {CHECKPOINT_VERSION_FP32, CHECKPOINT_VERSION_BF16},
                        " (3 = fp32, 5 = bf16 parameters)");
    Checkpoint checkpoint;
    checkpoint.config = header_config(reader, header);
    checkpoint.stamp = get_run_stamp(reader, header);
    const GPT2Config& config = checkpoint.config;

    size_t count = num_parameters(config);
    if (header[1] == CHECKPOINT_VERSION_FP32) {
        checkpoint.parameters = read_payload<float>(reader, count, "fp32 parameters");
    } else {
        std::vector<uint16_t> narrow = read_payload<uint16_t>(reader, count, "bf16 parameters");
        checkpoint.parameters.resize(count);
        for (size_t i = 0; i < count; i++) checkpoint.parameters[i] = bf16_to_float(narrow[i]);
    }
    reader.expect_end();
    expect_finite(reader, config, checkpoint.parameters);
    return checkpoint;
}

void write_checkpoint(const std::string& path, const GPT2Config& config, const float* parameters,
                      const RunStamp& stamp) {
    validate_config(config, path);
    AtomicFileWriter writer(path);
    write_llmc_header(writer, checkpoint_header(config, CHECKPOINT_VERSION_FP32, stamp, path));
    writer.write(parameters, num_parameters(config) * sizeof(float));
    writer.commit();
}

void write_checkpoint_bf16(const std::string& path, const GPT2Config& config, const float* parameters,
                           const RunStamp& stamp) {
    validate_config(config, path);
    size_t count = num_parameters(config);
    std::vector<uint16_t> narrow(count);
    for (size_t i = 0; i < count; i++) narrow[i] = float_to_bf16(parameters[i]);
    AtomicFileWriter writer(path);
    write_llmc_header(writer, checkpoint_header(config, CHECKPOINT_VERSION_BF16, stamp, path));
    writer.write_array(narrow);
    writer.commit();
}
