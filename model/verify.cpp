#include "model/verify.h"

#include <cmath>
#include <cstdio>

#include "model/backend.h"
#include "model/checkpoint.h"
#include "model/debug_state.h"
#include "model/device.h"
#include "model/gpt2.h"
#include "model/precision.h"

namespace {
double relative_error(const float* ours, const float* reference, size_t count) {
    double difference = 0, norm = 0;
    for (size_t i = 0; i < count; i++) {
        difference += (double(ours[i]) - reference[i]) * (double(ours[i]) - reference[i]);
        norm += double(reference[i]) * reference[i];
    }
    return norm > 0 ? std::sqrt(difference / norm) : std::sqrt(difference);
}

template <class Backend>
VerifyReport verify_on(const Checkpoint& checkpoint, const DebugState& state, double tolerance) {
    const GPT2Config& c = checkpoint.config;
    const int B = state.batch_size, T = state.seq_len, V = c.vocab_size, Vp = c.padded_vocab_size;
    GPT2<Backend> model(c, checkpoint.parameters.data());
    gpt2_forward(model, state.inputs.data(), state.targets.data(), nullptr, B, T);
    std::vector<float> padded_logits(size_t(B) * T * Vp), logits(size_t(B) * T * V);
    Backend::download(padded_logits.data(), model.acts.logits, padded_logits.size());  // the backward overwrites them
    gpt2_zero_grad(model);
    gpt2_backward(model);

    VerifyReport report;
    auto add = [&](const std::string& name, double error) {
        report.rows.push_back({name, error, std::isfinite(error) && error <= tolerance});
    };
    for (size_t i = 0; i < size_t(B) * T; i++)  // drop the padded vocabulary columns
        std::copy(&padded_logits[i * Vp], &padded_logits[i * Vp] + V, &logits[i * V]);
    add("logits", relative_error(logits.data(), state.logits.data(), logits.size()));
    add("loss", std::abs(double(model.mean_loss) - state.loss) / std::abs(double(state.loss)));
    std::vector<float> grads = model.gradients_to_host();
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        add(PARAMETER_NAMES[i], relative_error(&grads[offset], &state.grads[offset], model.parameter_sizes[i]));
        offset += model.parameter_sizes[i];
    }
    return report;
}
}  // namespace

VerifyReport run_verify(const std::string& model_path, const std::string& state_path, const std::string& device,
                        double tolerance) {
    Checkpoint checkpoint = read_checkpoint(model_path);
    DebugState state = read_debug_state(state_path, checkpoint.config);
    cuda::set_matmul_precision(MatmulPrecision::fp32);  // compared with fp32 PyTorch at an fp32 tolerance
    return with_backend(resolve_device(device), [&](auto backend) {
        return verify_on<typename decltype(backend)::type>(checkpoint, state, tolerance);
    });
}

void print_verify_report(const VerifyReport& report, double tolerance) {
    std::printf("%-10s %16s  %s\n", "tensor", "relative error", "within tolerance");
    for (const VerifyRow& row : report.rows)
        std::printf("%-10s %16.3e  %s\n", row.name.c_str(), row.relative_error, row.ok ? "ok" : "FAIL");
    std::printf("verify: %s (tolerance %.1e)\n", report.all_ok() ? "all within tolerance" : "FAILED", tolerance);
}
