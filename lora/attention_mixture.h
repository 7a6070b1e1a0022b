// AM-LoRA's attention over the branches (lora/METHODS.md section 9) at every adapted linear, in backend
// memory, used by lora/methods/amlora.h:
//   MixtureKernels<Backend>    the kernels of one backend: lora/cpu/attention_mixture.h (.cpp) or
//                              lora/cuda/attention_mixture.cu (shapes and math there)
//   AttentionMixture<Backend>  every linear's attention modules (D_i, v_i per branch), the gradients and AdamW
//                              state of the newest branch's, the activations of one forward, and the LoraMixture
//                              path (model/lora_adapters.h) the adapters take through each adapted linear:
//     forward   hidden = h~ A^T (lora_down_forward); P = s Bt D^T; z, w = the attention on hidden; out += s (hidden
//               .* w) Bt (lora_up_forward)
//     backward  d_hidden, dBt, dw from dout (lora_up_backward); dw += the penalty's gradient; d_hidden, dv, dP from
//               dw; dBt, dD from dP; dinp, dA from d_hidden (lora_down_backward)
// Parameters of slot k at offset(k), for its `branches` branches: D (branches*d_a, OC) | v (branches*d_a). Only
// the newest branch trains: its D_t, v_t rows are what AdamW updates; the gradients of the others stay 0.
#pragma once
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "model/lora_adapters.h"
#include "lora/mixture_shape.h"
#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "model/growing_buffer.h"
#include "lora/cuda/attention_mixture_kernels.h"
#include "data/random.h"

// The attention mixture's kernels of one backend, as the model's come from model/backend_*.h: one specialisation per
// backend, the same names and arguments, pointers in the backend's memory. Shapes and math:
// lora/cpu/attention_mixture.h.
template <class Backend>
struct MixtureKernels;

// the CPU reference (lora/cpu/attention_mixture.h), compiled once for float and double in
// lora/cpu/attention_mixture.cpp
template <typename Real>
struct MixtureKernels<CpuBackend<Real>> {
    using real = Real;
    static void project(real* P, const real* Bt, const real* D, real scale, MixtureShape s);
    static void forward(real* w, real* z, const real* hidden, const real* P, const real* v, MixtureShape s);
    static double penalty(real* dw, const real* w, const real* row_weights, float lambda, MixtureShape s);
    static void backward(real* d_hidden, real* dP, real* dv, const real* dw, const real* w, const real* z,
                         const real* hidden, const real* P, const real* v, MixtureShape s);
    static void project_backward(real* dBt, real* dD, const real* dP, const real* Bt, const real* D, real scale,
                                 MixtureShape s);
};

// the GPU kernels (lora/cuda/attention_mixture.cu)
template <>
struct MixtureKernels<CudaBackend> {
    using real = float;
    static void project(real* P, const real* Bt, const real* D, real scale, MixtureShape s) {
        cuda::mixture_project(P, Bt, D, scale, s);
    }
    static void forward(real* w, real* z, const real* hidden, const real* P, const real* v, MixtureShape s) {
        cuda::mixture_forward(w, z, hidden, P, v, s);
    }
    static double penalty(real* dw, const real* w, const real* row_weights, float lambda, MixtureShape s) {
        return cuda::mixture_penalty(dw, w, row_weights, lambda, s);
    }
    static void backward(real* d_hidden, real* dP, real* dv, const real* dw, const real* w, const real* z,
                         const real* hidden, const real* P, const real* v, MixtureShape s) {
        cuda::mixture_backward(d_hidden, dP, dv, dw, w, z, hidden, P, v, s);
    }
    static void project_backward(real* dBt, real* dD, const real* dP, const real* Bt, const real* D, real scale,
                                 MixtureShape s) {
        cuda::mixture_project_backward(dBt, dD, dP, Bt, D, scale, s);
    }
};

// What the forwards saw while statistics were on: per branch the sum of w over rows and linears, and how many
// weights fell below 0.1 (AM-LoRA's sparsity). Rows whose entry of row_mask is 0 (padding) are not counted; an
// empty row_mask counts every row.
struct MixtureStatistics {
    std::vector<float> row_mask;      // (N) of the forwards to come, set by the caller
    std::vector<double> weight_sums;  // (branches)
    double rows = 0;                  // rows x linears counted
    double weights = 0, below_tenth = 0;
};

template <class Backend>
struct AttentionMixture : LoraMixture<Backend> {
    using real = typename Backend::real;
    using Kernels = MixtureKernels<Backend>;

    int dim = 64;             // d_a
    bool softmax = false;     // the softmax + entropy variant
    float lambda = 0.01f;     // lambda_sp
    int branches = 0;
    std::vector<size_t> offsets;  // per slot: D at offsets[k], v after its branches*d_a rows of OC
    size_t num_parameters = 0;
    real* parameters = nullptr;  // (num_parameters)
    real* gradients = nullptr;   // (num_parameters)
    real* adam_m = nullptr;
    real* adam_v = nullptr;

    // the current step's penalty: row weights (N) set by the method (null: no penalty), its total over the linears
    real* row_weights = nullptr;
    double penalty_total = 0;
    MixtureStatistics* statistics = nullptr;  // accumulated by every forward while set (diagnostics)

    AttentionMixture(int dim, bool softmax, float lambda) : dim(dim), softmax(softmax), lambda(lambda) {}
    AttentionMixture(const AttentionMixture&) = delete;
    AttentionMixture& operator=(const AttentionMixture&) = delete;
    ~AttentionMixture() override {
        release_parameters();
        release_activations();
        Backend::release(row_weights);
    }

    size_t slot_size(const LoraSlot& s, int count) const { return size_t(count) * dim * (s.shape.out + 1); }
    MixtureShape shape(const LoraAdapters<Backend>& a, const LoraSlot& s, int N) const {
        return {N, s.shape.out, a.branches, a.config.rank, dim, a.first_trainable, softmax};
    }

    std::vector<float> to_host() const {
        std::vector<float> host(num_parameters);
        Backend::download(host.data(), parameters, num_parameters);
        return host;
    }
    // Replaces every parameter by host values laid out for `count` branches at the adapters' slots; fresh optimizer.
    void from_host(const LoraAdapters<Backend>& a, int count, const std::vector<float>& host) {
        std::vector<size_t> new_offsets;
        size_t total = 0;
        for (const LoraSlot& s : a.slots) {
            new_offsets.push_back(total);
            total += slot_size(s, count);
        }
        if (host.size() != total)
            fail("amlora: " + std::to_string(host.size()) + " attention values given, " + std::to_string(total) +
                 " expected for " + std::to_string(count) + " branches");
        release_parameters();
        release_activations();
        branches = count;
        offsets = new_offsets;
        num_parameters = total;
        for (real** p : {&parameters, &gradients, &adam_m, &adam_v})
            *p = Backend::template allocate<real>(std::max<size_t>(total, 1));
        Backend::upload(parameters, host.data(), total);
    }

    // Appends a branch's attention module at every linear: D ~ U(-1/sqrt(OC), 1/sqrt(OC)) (PyTorch's Linear init)
    // and v = 0, so that the new branch starts with the same weight on every token (sigmoid(0) = 1/2; softmax: the
    // old branches' scores are then unchanged next to a new 0) and its attention learns from there, as a new LoRA
    // branch starts at B = 0. (A random v makes each token's weight a random function of the branch's own output
    // from the first step on: on the synthetic benchmark, at lambda 0, task 1 then reaches 60% instead of 90%.) The
    // adapters must already hold the new branch.
    void add_branch(const LoraAdapters<Backend>& a, uint64_t seed) {
        const std::vector<float> old = branches ? to_host() : std::vector<float>();
        std::vector<float> host;
        Random random(seed);
        for (size_t k = 0; k < a.slots.size(); k++) {
            const int OC = a.slots[k].shape.out;
            const float* D = old.empty() ? nullptr : old.data() + offsets[k];
            const float* v = D ? D + size_t(branches) * dim * OC : nullptr;
            if (D) host.insert(host.end(), D, D + size_t(branches) * dim * OC);
            for (size_t i = 0; i < size_t(dim) * OC; i++)
                host.push_back(float((2 * random.uniform() - 1) / std::sqrt(double(OC))));
            if (v) host.insert(host.end(), v, v + size_t(branches) * dim);
            host.insert(host.end(), size_t(dim), 0.0f);
        }
        from_host(a, branches + 1, host);
    }

    void reset_optimizer() {
        for (real* p : {gradients, adam_m, adam_v}) Backend::zero(p, num_parameters);
    }
    void zero_grad() { Backend::zero(gradients, num_parameters); }

    // AdamW on the trainable branches' D and v at every linear (weight decay on D only: v is a vector).
    template <class Settings>
    void update(const LoraAdapters<Backend>& a, const Settings& settings, int t, float grad_scale) {
        const int first = a.first_trainable, count = branches - first;
        if (count <= 0) return;
        for (size_t k = 0; k < a.slots.size(); k++) {
            const size_t OC = a.slots[k].shape.out;
            const size_t D_start = offsets[k] + size_t(first) * dim * OC;
            const size_t v_start = v_offset(k) + size_t(first) * dim;
            for (auto [start, n, decay] : {std::tuple<size_t, size_t, float>{D_start, size_t(count) * dim * OC,
                                                                             settings.weight_decay},
                                           {v_start, size_t(count) * dim, 0.0f}})
                Backend::adamw_update(parameters + start, gradients + start, adam_m + start, adam_v + start, n,
                                      settings.learning_rate, settings.beta1, settings.beta2, settings.eps, decay, t,
                                      grad_scale);
        }
    }

    // Row weights of the penalty for the next forwards (host (N)); empty: no penalty.
    void set_row_weights(const std::vector<float>& host) {
        Backend::release(row_weights);
        row_weights = nullptr;
        if (host.empty()) return;
        row_weights = Backend::template allocate<real>(host.size());
        Backend::upload(row_weights, host.data(), host.size());
    }

    // ---- the LoraMixture path ----

    void forward(LoraAdapters<Backend>& a, size_t k, real* out, const real* inp, const real* dropout_mask,
                 int N) override {
        const LoraSlot& slot = a.slots[k];
        const LoraShape ls = a.shape(slot, N);
        const MixtureShape ms = shape(a, slot, N);
        ensure_activations(a, N);
        real* hidden = a.hidden_memory.data() + slot.hidden;
        const real* Bt = a.parameters + slot.Bt;
        const real scale = real(a.config.scale());
        Backend::lora_down_forward(hidden, inp, a.parameters + slot.A, dropout_mask, ls);
        Kernels::project(P(k), Bt, D(k), scale, ms);
        Kernels::forward(w(k), z(k), hidden, P(k), v(k), ms);
        if (statistics) record(w(k), N);
        Backend::lora_up_forward(out, hidden, Bt, w(k), scale, ls);
    }

    void backward(LoraAdapters<Backend>& a, size_t k, real* dinp, const real* dout, const real* inp,
                  const real* dropout_mask, int N) override {
        const LoraSlot& slot = a.slots[k];
        const LoraShape ls = a.shape(slot, N);
        const MixtureShape ms = shape(a, slot, N);
        const real* hidden = a.hidden_memory.data() + slot.hidden;
        const real* Bt = a.parameters + slot.Bt;
        real* dBt = a.gradients + slot.Bt;
        const real scale = real(a.config.scale());
        real *dw = dw_memory.data(), *dP = dP_memory.data(), *d_hidden = d_hidden_memory.data();
        Backend::zero(dw, size_t(N) * branches);
        Backend::lora_up_backward(d_hidden, dBt, dw, dout, hidden, Bt, w(k), scale, ls);
        if (row_weights && lambda != 0) penalty_total += Kernels::penalty(dw, w(k), row_weights, lambda, ms);
        Kernels::backward(d_hidden, dP, gradients + v_offset(k), dw, w(k), z(k), hidden, P(k), v(k), ms);
        Kernels::project_backward(dBt, gradients + offsets[k], dP, Bt, D(k), scale, ms);
        Backend::lora_down_backward(dinp, a.gradients + slot.A, d_hidden, inp, a.parameters + slot.A,
                                    dropout_mask, ls);
    }

private:
    // activations of one forward over N rows: per slot P (branches*r, d_a), z (N, branches*d_a), w (N, branches);
    // shared scratch dw (N, branches), dP (branches*r, d_a), d_hidden (N, branches*r)
    int rows = 0, activation_branches = 0;
    std::vector<size_t> P_at, z_at, w_at;
    GrowingBuffer<Backend, real> activations, dw_memory, dP_memory, d_hidden_memory;

    size_t v_offset(size_t k) const {
        const size_t next = k + 1 < offsets.size() ? offsets[k + 1] : num_parameters;
        return next - size_t(branches) * dim;
    }
    real* D(size_t k) { return parameters + offsets[k]; }
    real* v(size_t k) { return parameters + v_offset(k); }
    real* P(size_t k) { return activations.data() + P_at[k]; }
    real* z(size_t k) { return activations.data() + z_at[k]; }
    real* w(size_t k) { return activations.data() + w_at[k]; }

    void release_parameters() {
        for (real* p : {parameters, gradients, adam_m, adam_v}) Backend::release(p);
        parameters = gradients = adam_m = adam_v = nullptr;
    }
    void release_activations() {
        for (auto* buffer : {&activations, &dw_memory, &dP_memory, &d_hidden_memory}) buffer->release();
        rows = 0;
    }
    void ensure_activations(const LoraAdapters<Backend>& a, int N) {
        if (activations.data() && N == rows && activation_branches == branches) return;
        const size_t r = a.config.rank;
        P_at.clear(), z_at.clear(), w_at.clear();
        size_t total = 0;
        for (size_t k = 0; k < a.slots.size(); k++) {
            P_at.push_back(total);
            total += size_t(branches) * r * dim;
            z_at.push_back(total);
            total += size_t(N) * branches * dim;
            w_at.push_back(total);
            total += size_t(N) * branches;
        }
        activations.reserve(total);
        dw_memory.reserve(size_t(N) * branches);
        dP_memory.reserve(size_t(branches) * r * dim);
        d_hidden_memory.reserve(size_t(N) * branches * r);
        rows = N;
        activation_branches = branches;
    }

    void record(const real* weights, int N) {
        std::vector<float> host(size_t(N) * branches);
        Backend::download(host.data(), weights, host.size());
        MixtureStatistics& s = *statistics;
        s.weight_sums.resize(branches, 0.0);
        for (int n = 0; n < N; n++) {
            if (!s.row_mask.empty() && s.row_mask.at(n) == 0) continue;
            for (int i = 0; i < branches; i++) {
                const double value = host[size_t(n) * branches + i];
                s.weight_sums[i] += value;
                s.below_tenth += value < 0.1;
            }
            s.rows += 1;
            s.weights += branches;
        }
    }
};
