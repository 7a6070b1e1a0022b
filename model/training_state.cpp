// Reading and writing clora's training state (AdamW moments and data position, for --resume).
#include "model/training_state.h"

#include <cmath>

#include "data/file_io.h"
#include "data/llmc_header.h"

namespace {
const char* const TRAINING_STATE_KIND = "clora training state";
enum HeaderSlot { NUM_PARAMETERS_SLOT = 2, STEP_SLOT = 4, SHARD_INDEX_SLOT = 6, SHARD_POSITION_SLOT = 8,
                  RNG_STATE_SLOT = 10, DATA_ORDER_SLOT = 12 };

// AdamW's moments: finite, and the second moment (a mean of squares) not negative, whose square root the update
// takes. Fails naming the moment and the first bad element.
void expect_moments(const FileReader& reader, const std::vector<float>& values, const char* name, bool non_negative) {
    for (size_t i = 0; i < values.size(); i++)
        if (!std::isfinite(values[i]) || (non_negative && values[i] < 0))
            reader.fail_here(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                             (non_negative ? " is not a finite value >= 0" : " is not finite"));
}
}  // namespace

TrainingState read_training_state(const std::string& path, size_t expected_num_parameters) {
    FileReader reader(path);
    LlmcHeader header = read_llmc_header(reader, TRAINING_STATE_MAGIC, TRAINING_STATE_KIND);
    expect_llmc_version(reader, header, TRAINING_STATE_KIND, {TRAINING_STATE_VERSION});
    const int64_t stored_num_parameters = get_header_int64(header, NUM_PARAMETERS_SLOT);
    if (stored_num_parameters < 0 || uint64_t(stored_num_parameters) != expected_num_parameters)
        reader.fail_here("training state was written for a model with " + std::to_string(stored_num_parameters) +
                         " parameters, this model has " + std::to_string(expected_num_parameters));
    TrainingState state;
    state.step = get_header_int64(header, STEP_SLOT);
    state.shard_index = get_header_int64(header, SHARD_INDEX_SLOT);
    state.shard_position = get_header_int64(header, SHARD_POSITION_SLOT);
    state.rng_state = uint64_t(get_header_int64(header, RNG_STATE_SLOT));
    state.data_order = header[DATA_ORDER_SLOT];
    if (state.data_order != 0 && state.data_order != 1)
        reader.fail_here("data order " + std::to_string(state.data_order) + " is neither 0 (sequential) nor 1 (random)");
    if (state.step < 0 || state.shard_index < 0 || state.shard_position < 0)
        reader.fail_here("negative step or data position (step " + std::to_string(state.step) + ", shard " +
                         std::to_string(state.shard_index) + ", position " + std::to_string(state.shard_position) +
                         ")");
    state.stamp = get_run_stamp(reader, header);
    if (state.stamp.stamped() && state.stamp.step != state.step)
        reader.fail_here("the run stamp's step " + std::to_string(state.stamp.step) + " is not the state's step " +
                         std::to_string(state.step));
    state.adam_m = read_payload<float>(reader, expected_num_parameters, "adam_m");
    state.adam_v = read_payload<float>(reader, expected_num_parameters, "adam_v");
    reader.expect_end();
    expect_moments(reader, state.adam_m, "adam_m", false);
    expect_moments(reader, state.adam_v, "adam_v", true);
    return state;
}

void write_training_state(const std::string& path, const TrainingState& state) {
    if (state.adam_m.size() != state.adam_v.size())
        fail(path + ": cannot write training state: adam_m has " + std::to_string(state.adam_m.size()) +
             " values, adam_v " + std::to_string(state.adam_v.size()));
    if (state.step < 0 || state.shard_index < 0 || state.shard_position < 0)
        fail(path + ": cannot write training state with a negative step or data position");
    LlmcHeader header = make_llmc_header(TRAINING_STATE_MAGIC, TRAINING_STATE_VERSION);
    set_header_int64(header, NUM_PARAMETERS_SLOT, int64_t(state.adam_m.size()));
    set_header_int64(header, STEP_SLOT, state.step);
    set_header_int64(header, SHARD_INDEX_SLOT, state.shard_index);
    set_header_int64(header, SHARD_POSITION_SLOT, state.shard_position);
    set_header_int64(header, RNG_STATE_SLOT, int64_t(state.rng_state));
    header[DATA_ORDER_SLOT] = state.data_order;
    if (state.stamp.stamped() && state.stamp.step != state.step)
        fail(path + ": cannot write training state of step " + std::to_string(state.step) + " stamped with step " +
             std::to_string(state.stamp.step));
    set_run_stamp(header, state.stamp, path);
    AtomicFileWriter writer(path);
    write_llmc_header(writer, header);
    writer.write_array(state.adam_m);
    writer.write_array(state.adam_v);
    writer.commit();
}
