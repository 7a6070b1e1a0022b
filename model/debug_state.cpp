// Reading and writing llm.c debug states (the parity fixture: a batch, its logits, loss and gradients).
#include "model/debug_state.h"

#include <cmath>

#include "data/file_io.h"
#include "data/llmc_header.h"
#include "model/parameters.h"

namespace {
const char* const DEBUG_STATE_KIND = "llm.c debug state";

// Fails naming the field, the index and the value of the first token id outside [0, V).
void expect_token_ids(const FileReader& reader, const std::vector<int>& ids, const char* field, int vocab_size) {
    for (size_t i = 0; i < ids.size(); i++)
        if (ids[i] < 0 || ids[i] >= vocab_size)
            reader.fail_here(std::string(field) + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                             " is out of range for vocabulary size " + std::to_string(vocab_size));
}

// Fails naming the field and the first NaN or Inf: a reference with one compares with nothing.
void expect_finite(const FileReader& reader, const float* values, size_t count, const char* field) {
    for (size_t i = 0; i < count; i++)
        if (!std::isfinite(values[i]))
            reader.fail_here(std::string(field) + "[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                             " is not finite");
}

void expect_size(const std::string& path, const char* field, size_t actual, size_t expected) {
    if (actual != expected)
        fail(path + ": cannot write debug state: " + field + " has " + std::to_string(actual) + " values, expected " +
             std::to_string(expected));
}
}  // namespace

DebugState read_debug_state(const std::string& path, const GPT2Config& config) {
    FileReader reader(path);
    LlmcHeader header = read_llmc_header(reader, DEBUG_STATE_MAGIC, DEBUG_STATE_KIND);
    expect_llmc_version(reader, header, DEBUG_STATE_KIND, {DEBUG_STATE_VERSION});
    DebugState state;
    state.batch_size = header[2];
    state.seq_len = header[3];
    if (state.batch_size <= 0) reader.fail_here("batch size B = " + std::to_string(state.batch_size) + " must be > 0");
    if (state.seq_len <= 0 || state.seq_len > config.max_seq_len)
        reader.fail_here("sequence length T = " + std::to_string(state.seq_len) + " must be in 1.." +
                         std::to_string(config.max_seq_len) + " (the model's max_seq_len)");

    const size_t BT = size_t(state.batch_size) * state.seq_len, V = config.vocab_size;
    state.inputs = read_payload<int>(reader, BT, "inputs");
    state.targets = read_payload<int>(reader, BT, "targets");
    expect_token_ids(reader, state.inputs, "inputs", config.vocab_size);
    expect_token_ids(reader, state.targets, "targets", config.vocab_size);
    expect_payload(reader, BT, V * sizeof(float), "logits");
    state.logits = reader.read_array<float>(BT * V, "logits");
    reader.read(&state.loss, sizeof(state.loss), "loss");
    state.grads = read_payload<float>(reader, num_parameters(config), "gradients");
    reader.expect_end();
    expect_finite(reader, state.logits.data(), state.logits.size(), "logits");
    expect_finite(reader, &state.loss, 1, "loss");
    expect_finite(reader, state.grads.data(), state.grads.size(), "gradients");
    return state;
}

void write_debug_state(const std::string& path, const GPT2Config& config, const DebugState& state) {
    if (state.batch_size <= 0 || state.seq_len <= 0 || state.seq_len > config.max_seq_len)
        fail(path + ": cannot write debug state: B = " + std::to_string(state.batch_size) + ", T = " +
             std::to_string(state.seq_len) + " (T must be in 1.." + std::to_string(config.max_seq_len) + ")");
    const size_t BT = size_t(state.batch_size) * state.seq_len;
    expect_size(path, "inputs", state.inputs.size(), BT);
    expect_size(path, "targets", state.targets.size(), BT);
    expect_size(path, "logits", state.logits.size(), BT * config.vocab_size);
    expect_size(path, "grads", state.grads.size(), num_parameters(config));

    LlmcHeader header = make_llmc_header(DEBUG_STATE_MAGIC, DEBUG_STATE_VERSION);
    header[2] = state.batch_size;
    header[3] = state.seq_len;
    AtomicFileWriter writer(path);
    write_llmc_header(writer, header);
    writer.write_array(state.inputs);
    writer.write_array(state.targets);
    writer.write_array(state.logits);
    writer.write(&state.loss, sizeof(state.loss));
    writer.write_array(state.grads);
    writer.commit();
}
