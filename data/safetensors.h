// Hugging Face's safetensors format, read and written (https://huggingface.co/docs/safetensors):
//   8 bytes  N, the header's length (uint64, little-endian)
//   N bytes  a JSON object: {"<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]},
//            ..., "__metadata__": {"<key>": "<string>", ...}}, padded with spaces
//   then     the tensors' bytes; each tensor's [begin, end) is relative to the end of the header
// Reading widens F32, F16 and BF16 tensors to fp32 exactly (tensors of the format's other dtypes, such as a BOOL
// mask buffer, are checked but not read); writing writes F32 only, in the order of the names (as transformers
// does), the header padded to a multiple of 8 bytes.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct SafeTensor {
    std::string dtype;            // as stored: "F32", "F16", "BF16", ... (always "F32" when written)
    std::vector<int64_t> shape;   // () for a scalar
    std::vector<float> values;    // (product of shape,) fp32, row-major; empty for the dtypes that are not read

    bool is_float() const { return dtype == "F32" || dtype == "F16" || dtype == "BF16"; }
};

struct SafeTensors {
    std::map<std::string, SafeTensor> tensors;
    std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Fails with "<path>: ..." on a header length past the file's end, a header that is not a JSON object of tensor
// entries, an unknown dtype (naming the tensor), a shape and byte range that disagree, a range outside the data,
// overlapping ranges or bytes no tensor holds (trailing bytes too).
SafeTensors read_safetensors(const std::string& path);

// The tensors of a Hugging Face model folder: model.safetensors, or every shard that
// model.safetensors.index.json's "weight_map" names (each tensor read from the shard the map gives). Fails naming
// the folder when neither file is there, a tensor the map names is missing from its shard, or one is in two shards.
SafeTensors read_safetensors_folder(const std::string& dir);

// Writes atomically (data/file_io.h). Fails when a tensor's values disagree with its shape.
void write_safetensors(const std::string& path, const SafeTensors& file);

// IEEE half precision and bfloat16 to fp32, exactly.
float half_to_float(uint16_t value);
float bfloat16_to_float(uint16_t value);
