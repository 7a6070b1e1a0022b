// test/fixtures/peft_lora.txt (dev/peft_reference.py): PEFT's LoRA adapters on the tiny parity model, as clora's.
#pragma once
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model/lora_adapters.h"
#include "test/test_support.h"

const std::string PEFT_LORA = "test/fixtures/peft_lora.txt";

// "key v1 v2 ..." lines
inline std::map<std::string, std::vector<double>> read_key_values(const std::string& path) {
    std::ifstream file(path);
    REQUIRE(file.good());
    std::map<std::string, std::vector<double>> values;
    std::string line;
    while (std::getline(file, line)) {
        std::istringstream in(line);
        std::string key;
        if (!(in >> key)) continue;
        double value;
        while (in >> value) values[key].push_back(value);
    }
    return values;
}

// The fixture's configuration: r and alpha from the file, every linear, no dropout.
inline LoraConfig peft_fixture_config(const std::map<std::string, std::vector<double>>& values) {
    LoraConfig lora;
    lora.modules = parse_lora_modules("all");
    lora.rank = int(values.at("rank")[0]);
    lora.alpha = float(values.at("alpha")[0]);
    lora.dropout = 0.0f;
    return lora;
}

// The fixture's tensor `kind` (A, B, dA or dB) of one slot as PEFT holds it: A (r, in), B (out, r).
inline const std::vector<double>& peft_fixture_tensor(const std::map<std::string, std::vector<double>>& values,
                                                      const std::string& kind, const LoraSlot& s, int r) {
    const std::vector<double>& v = values.at(kind + "." + std::to_string(s.layer) + "." + lora_module_name(s.module));
    REQUIRE(v.size() == size_t(r) * (kind.back() == 'A' ? s.shape.in : s.shape.out));
    return v;
}

// The adapters' parameters in clora's layout (one branch): PEFT's lora_A (r, in) is clora's A; its lora_B (out, r)
// is clora's Bt (r, out) transposed.
inline std::vector<float> peft_fixture_parameters(const std::map<std::string, std::vector<double>>& values,
                                                  const std::vector<LoraSlot>& slots, size_t num_parameters, int r) {
    std::vector<float> parameters(num_parameters);
    for (const LoraSlot& s : slots) {
        const std::vector<double>& A = peft_fixture_tensor(values, "A", s, r);
        const std::vector<double>& B = peft_fixture_tensor(values, "B", s, r);
        for (size_t i = 0; i < A.size(); i++) parameters[s.A + i] = float(A[i]);
        for (int o = 0; o < s.shape.out; o++)
            for (int k = 0; k < r; k++) parameters[s.Bt + size_t(k) * s.shape.out + o] = float(B[size_t(o) * r + k]);
    }
    return parameters;
}
