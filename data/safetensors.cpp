// Reading and writing safetensors files; see safetensors.h.
#include "data/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "data/file_io.h"
#include "data/json_file.h"
#include "data/utf8.h"

using nlohmann::json;

namespace {

constexpr uint64_t MAX_HEADER_BYTES = 100u << 20;  // the format's own bound (100 MB)

// The bytes of one value of each of the format's dtypes (0: not a dtype of the format).
size_t dtype_bytes(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "BOOL" || dtype == "U8" || dtype == "I8" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
    return 0;
}

// The element count of a shape, failing (instead of wrapping) on a negative or overflowing dimension.
uint64_t element_count(const std::vector<int64_t>& shape, const std::string& where) {
    uint64_t count = 1;
    for (int64_t dimension : shape) {
        if (dimension < 0) fail(where + ": negative dimension " + std::to_string(dimension));
        if (dimension != 0 && count > (uint64_t(1) << 40) / uint64_t(dimension))
            fail(where + ": shape too large");
        count *= uint64_t(dimension);
    }
    return count;
}

// One header entry {"dtype", "shape", "data_offsets"} -> its tensor, values read from data (size data_size).
SafeTensor read_entry(const json& entry, const std::string& where, const uint8_t* data, uint64_t data_size,
                      uint64_t& begin, uint64_t& end) {
    if (!entry.is_object()) fail(where + ": expected an object, found " + describe_json_type(entry));
    auto dtype = entry.find("dtype"), shape = entry.find("shape"), offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string()) fail(where + ": \"dtype\" is missing or not a string");
    if (shape == entry.end() || !shape->is_array()) fail(where + ": \"shape\" is missing or not a list");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
        fail(where + ": \"data_offsets\" must be two non-negative integers [begin, end]");
    SafeTensor tensor;
    tensor.dtype = dtype->get<std::string>();
    const size_t item = dtype_bytes(tensor.dtype);
    if (item == 0) fail(where + ": unknown dtype " + printable(tensor.dtype));
    for (const json& dimension : *shape) {
        if (!dimension.is_number_integer()) fail(where + ": \"shape\" holds " + describe_json_type(dimension));
        tensor.shape.push_back(dimension.get<int64_t>());
    }
    const uint64_t count = element_count(tensor.shape, where);
    begin = (*offsets)[0].get<uint64_t>();
    end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > data_size)
        fail(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
             "] fall outside the file's " + std::to_string(data_size) + " data bytes");
    if (end - begin != count * item)
        fail(where + ": shape holds " + std::to_string(count) + " " + tensor.dtype + " values (" +
             std::to_string(count * item) + " bytes) but data_offsets span " + std::to_string(end - begin));
    if (!tensor.is_float()) return tensor;  // checked, not read: a reader that needs it fails naming its dtype
    tensor.values.resize(count);
    const uint8_t* bytes = data + begin;
    for (uint64_t i = 0; i < count; i++) {
        if (item == 4) {
            std::memcpy(&tensor.values[i], bytes + 4 * i, 4);
        } else {
            uint16_t half;
            std::memcpy(&half, bytes + 2 * i, 2);
            tensor.values[i] = tensor.dtype == "F16" ? half_to_float(half) : bfloat16_to_float(half);
        }
    }
    return tensor;
}

}  // namespace

float bfloat16_to_float(uint16_t value) {
    const uint32_t bits = uint32_t(value) << 16;
    float result;
    std::memcpy(&result, &bits, sizeof(result));
    return result;
}

float half_to_float(uint16_t value) {
    const uint32_t sign = uint32_t(value & 0x8000) << 16, exponent = (value >> 10) & 0x1F, mantissa = value & 0x3FF;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);  // Inf or NaN
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // normal: rebias 15 -> 127
    } else if (mantissa == 0) {
        bits = sign;  // zero
    } else {
        // subnormal: mantissa x 2^-24, normalised for fp32
        int shift = 0;
        uint32_t m = mantissa;
        while (!(m & 0x400)) {
            m <<= 1;
            shift++;
        }
        bits = sign | (uint32_t(113 - shift) << 23) | ((m & 0x3FF) << 13);
    }
    float result;
    std::memcpy(&result, &bits, sizeof(result));
    return result;
}

SafeTensors read_safetensors(const std::string& path) {
    FileReader reader(path);
    uint64_t header_bytes = 0;
    reader.read(&header_bytes, sizeof(header_bytes), "the header's length");
    if (header_bytes > reader.remaining())
        reader.fail_here("the header's length " + std::to_string(header_bytes) + " runs past the file's end (" +
                         std::to_string(reader.remaining()) + " bytes follow it)");
    if (header_bytes > MAX_HEADER_BYTES) reader.fail_here("header of " + std::to_string(header_bytes) + " bytes");
    json header;
    try {
        const uint8_t* text = reader.bytes.data() + reader.offset;
        header = json::parse(text, text + header_bytes);
    } catch (const json::exception& error) {
        reader.fail_here("malformed JSON header: " + printable(error.what()));
    }
    if (!header.is_object()) reader.fail_here("the header is " + describe_json_type(header) + ", expected an object");
    const uint8_t* data = reader.bytes.data() + reader.offset + header_bytes;
    const uint64_t data_size = reader.remaining() - header_bytes;

    SafeTensors file;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (auto item = header.begin(); item != header.end(); ++item) {
        const std::string where = printable(path) + ": tensor " + printable(item.key());
        if (item.key() == "__metadata__") {
            if (!item->is_object()) reader.fail_here("\"__metadata__\" is " + describe_json_type(*item));
            for (auto meta = item->begin(); meta != item->end(); ++meta) {
                if (!meta->is_string()) reader.fail_here("metadata " + printable(meta.key()) + " is not a string");
                file.metadata[meta.key()] = meta->get<std::string>();
            }
            continue;
        }
        uint64_t begin = 0, end = 0;
        file.tensors[item.key()] = read_entry(*item, where, data, data_size, begin, end);
        ranges.emplace_back(begin, end);
    }
    // the tensors tile the data: no overlap, no gap, nothing after the last
    std::sort(ranges.begin(), ranges.end());
    uint64_t covered = 0;
    for (const auto& range : ranges) {
        if (range.first != covered)
            reader.fail_here(range.first < covered ? "tensors overlap at data byte " + std::to_string(range.first)
                                                   : "no tensor holds data bytes " + std::to_string(covered) + ".." +
                                                         std::to_string(range.first));
        covered = range.second;
    }
    if (covered != data_size)
        reader.fail_here(std::to_string(data_size - covered) + " unexpected trailing bytes after the last tensor");
    return file;
}

SafeTensors read_safetensors_folder(const std::string& dir) {
    const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
    if (file_exists(single)) return read_safetensors(single);
    if (!file_exists(index))
        fail(printable(dir) + ": neither model.safetensors nor model.safetensors.index.json is there");
    const json map = parse_json_file(index);
    auto weight_map = map.find("weight_map");
    if (!map.is_object() || weight_map == map.end() || !weight_map->is_object())
        fail(printable(index) + ": expected an object with a \"weight_map\" object");
    std::map<std::string, std::vector<std::string>> names_by_shard;
    for (auto item = weight_map->begin(); item != weight_map->end(); ++item) {
        if (!item->is_string()) fail(printable(index) + ": weight_map[" + printable(item.key()) + "] is not a string");
        const std::string shard = item->get<std::string>();
        if (shard.empty() || shard.find('/') != std::string::npos || shard.rfind("..", 0) == 0)
            fail(printable(index) + ": shard name " + printable(shard) + " is not a file name in the folder");
        names_by_shard[shard].push_back(item.key());
    }
    SafeTensors file;
    for (const auto& [shard, names] : names_by_shard) {
        SafeTensors part = read_safetensors(dir + "/" + shard);
        for (const std::string& name : names) {
            auto tensor = part.tensors.find(name);
            if (tensor == part.tensors.end())
                fail(printable(dir + "/" + shard) + ": tensor " + printable(name) + " is missing (the index puts it here)");
            file.tensors[name] = std::move(tensor->second);
            part.tensors.erase(tensor);
        }
        for (const auto& extra : part.tensors)
            if (weight_map->contains(extra.first))
                fail(printable(index) + ": tensor " + printable(extra.first) + " is in more than one shard");
    }
    return file;
}

void write_safetensors(const std::string& path, const SafeTensors& file) {
    json header = json::object();
    if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
    uint64_t offset = 0;
    for (const auto& [name, tensor] : file.tensors) {
        if (element_count(tensor.shape, path + ": tensor " + name) != tensor.values.size())
            fail(path + ": tensor " + name + " has " + std::to_string(tensor.values.size()) +
                 " values, its shape another count");
        const uint64_t bytes = tensor.values.size() * sizeof(float);
        header[name] = {{"dtype", "F32"}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    const uint64_t header_bytes = text.size();
    AtomicFileWriter writer(path);
    writer.write(&header_bytes, sizeof(header_bytes));
    writer.write(text.data(), text.size());
    for (const auto& entry : file.tensors) writer.write_array(entry.second.values);
    writer.commit();
}
