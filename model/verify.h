// `train verify`: one forward and backward on a debug state's batch (llm.c's format, written by PyTorch),
// compared with the state's logits, loss and the 16 gradient tensors.
#pragma once
#include <string>
#include <vector>

struct VerifyRow {
    std::string name;       // "logits", "loss", or a parameter tensor's name
    double relative_error;  // ||ours - reference|| / ||reference||
    bool ok;
};

struct VerifyReport {
    std::vector<VerifyRow> rows;
    bool all_ok() const {
        for (const VerifyRow& row : rows)
            if (!row.ok) return false;
        return true;
    }
};

VerifyReport run_verify(const std::string& model_path, const std::string& state_path, const std::string& device,
                        double tolerance);
void print_verify_report(const VerifyReport& report, double tolerance);
