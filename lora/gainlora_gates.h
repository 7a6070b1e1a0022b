// GainLoRA's gates and bases in backend memory (lora/METHODS.md section 7), used by
// lora/methods/gainlora.h:
//   GateKernels<Backend>  the gate kernels of one backend: lora/cpu/gate.h (.cpp) or lora/cuda/gate.cu
//   Basis<Backend>        an orthonormal basis M (dim, k): on the host in double (for GPM, lora/gpm.h) and in
//                         backend memory as Mt = M^T (k, dim) for the projected update
//   GainLoraGates<Backend> every task's gate (W1 (m,C), W2 (C,m), k (C)), the trained one's gradient and AdamW
//                         state, and the activations of one batch of prompts
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "model/backend_cpu.h"
#include "model/backend_cuda.h"
#include "lora/cuda/gate_kernels.h"
#include "model/gpt2.h"

// The gate kernels of one backend, as the model's come from model/backend_*.h: one specialisation per backend, the
// same names and arguments, pointers in the backend's memory. Shapes and math: lora/cpu/gate.h.
template <class Backend>
struct GateKernels;

// the CPU reference (lora/cpu/gate.h), compiled once for float and double in lora/cpu/gate.cpp
template <typename Real>
struct GateKernels<CpuBackend<Real>> {
    using real = Real;
    static void prompt_mean(real* p0, const real* wte, const int* tokens, const int* offsets, int S, int C);
    static void forward(real* g, real* z1, real* p1, real* z2, real* p2, const real* p0, const real* W1,
                        const real* W2, const real* k, int S, int C, int m);
    static void backward(real* dW1, real* dW2, real* dk, const real* dg, const real* p0, const real* z1,
                         const real* p1, const real* z2, const real* p2, const real* W2, const real* k, int S, int C,
                         int m);
    static void expand_rows(real* block_weights, const real* gates, int S, int T, int G);
    static void rows_backward(real* dg, const real* d_block_weights, int S, int T, int G, int branch);
    static void project_update(real* W, const real* W_old, const real* Mt, int rows, int D, int k, bool restore);
    static void copy(real* destination, const real* source, size_t count) {
        std::copy(source, source + count, destination);
    }
};

// the GPU kernels (lora/cuda/gate.cu)
template <>
struct GateKernels<CudaBackend> {
    using real = float;
    static void prompt_mean(real* p0, const real* wte, const int* tokens, const int* offsets, int S, int C) {
        cuda::gate_prompt_mean(p0, wte, tokens, offsets, S, C);
    }
    static void forward(real* g, real* z1, real* p1, real* z2, real* p2, const real* p0, const real* W1,
                        const real* W2, const real* k, int S, int C, int m) {
        cuda::gate_forward(g, z1, p1, z2, p2, p0, W1, W2, k, S, C, m);
    }
    static void backward(real* dW1, real* dW2, real* dk, const real* dg, const real* p0, const real* z1,
                         const real* p1, const real* z2, const real* p2, const real* W2, const real* k, int S, int C,
                         int m) {
        cuda::gate_backward(dW1, dW2, dk, dg, p0, z1, p1, z2, p2, W2, k, S, C, m);
    }
    static void expand_rows(real* block_weights, const real* gates, int S, int T, int G) {
        cuda::gate_expand_rows(block_weights, gates, S, T, G);
    }
    static void rows_backward(real* dg, const real* d_block_weights, int S, int T, int G, int branch) {
        cuda::gate_rows_backward(dg, d_block_weights, S, T, G, branch);
    }
    static void project_update(real* W, const real* W_old, const real* Mt, int rows, int D, int k, bool restore) {
        cuda::gate_project_update(W, W_old, Mt, rows, D, k, restore);
    }
    static void copy(real* destination, const real* source, size_t count) {
        cuda::gate_copy(destination, source, count);
    }
};

// An orthonormal basis M (dim, k) of old tasks' inputs to one layer: host M in double, backend Mt = M^T (k, dim).
template <class Backend>
struct Basis {
    using real = typename Backend::real;
    int dim = 0;
    Eigen::MatrixXd M;     // (dim, k)
    real* rows = nullptr;  // (k, dim) in backend memory; null while k = 0

    explicit Basis(int dim = 0) : dim(dim), M(dim, 0) {}
    Basis(const Basis&) = delete;
    Basis& operator=(const Basis&) = delete;
    Basis(Basis&& other) noexcept : dim(other.dim), M(std::move(other.M)), rows(other.rows) { other.rows = nullptr; }
    ~Basis() { Backend::release(rows); }

    int size() const { return int(M.cols()); }
    void reset(int new_dim) {
        dim = new_dim;
        set(Eigen::MatrixXd(dim, 0));
    }
    // Rounded to fp32, as the adapter file keeps it: a resumed run continues from the very same basis.
    void set(const Eigen::MatrixXd& basis) {
        M = basis.cast<float>().cast<double>();
        Backend::release(rows);
        rows = nullptr;
        if (size() == 0) return;
        const std::vector<float> values = to_floats();
        rows = Backend::template allocate<real>(values.size());
        Backend::upload(rows, values.data(), values.size());
    }
    // Mt (k, dim) row-major, as saved in the adapter file
    std::vector<float> to_floats() const {
        std::vector<float> values(size_t(size()) * dim);
        for (int i = 0; i < size(); i++)
            for (int d = 0; d < dim; d++) values[size_t(i) * dim + d] = float(M(d, i));
        return values;
    }
    void from_floats(const std::vector<float>& values, const std::string& what) {
        if (dim == 0 || values.size() % dim != 0)
            fail(what + ": " + std::to_string(values.size()) + " values are no whole number of rows of " +
                 std::to_string(dim));
        const int k = int(values.size() / dim);
        Eigen::MatrixXd basis(dim, k);
        for (int i = 0; i < k; i++)
            for (int d = 0; d < dim; d++) basis(d, i) = values[size_t(i) * dim + d];
        set(basis);
    }
};

// Every task's gate in one allocation, gate i at parameters + i * P, P = 2 m C + C:
//   W1 (m,C) | W2 (C,m) | k (C)
// Only the last gate (the current task's) trains: gradients, adam_m, adam_v and before (its values before the
// step, for the projected update) are (P) each.
template <class Backend>
struct GainLoraGates {
    using real = typename Backend::real;
    using Kernels = GateKernels<Backend>;
    int C = 0, m = 0;
    size_t P = 0;
    int count = 0;
    real* parameters = nullptr;  // (count * P)
    real* gradients = nullptr;   // (P)
    real* adam_m = nullptr;      // (P)
    real* adam_v = nullptr;      // (P)
    real* before = nullptr;      // (P)

    // one batch of S prompts
    int S = 0, capacity = 0, token_capacity = 0;
    real *p0 = nullptr, *z1 = nullptr, *p1 = nullptr, *z2 = nullptr, *p2 = nullptr;  // (S,C) (S,m) (S,m) (S,C) (S,C)
    real* values = nullptr;  // (count, S): gate i's value for each prompt, at i * S
    real* dg = nullptr;      // (S)
    int *tokens = nullptr, *offsets = nullptr;

    GainLoraGates(int C, int m) : C(C), m(m), P(2 * size_t(m) * C + C) {
        gradients = Backend::template allocate<real>(P);
        adam_m = Backend::template allocate<real>(P);
        adam_v = Backend::template allocate<real>(P);
        before = Backend::template allocate<real>(P);
    }
    GainLoraGates(const GainLoraGates&) = delete;
    GainLoraGates& operator=(const GainLoraGates&) = delete;
    ~GainLoraGates() {
        for (real* p : {parameters, gradients, adam_m, adam_v, before}) Backend::release(p);
        release_batch();
    }

    size_t W1(int i) const { return size_t(i) * P; }
    size_t W2(int i) const { return W1(i) + size_t(m) * C; }
    size_t k(int i) const { return W2(i) + size_t(C) * m; }
    real* current() { return parameters + W1(count - 1); }

    std::vector<float> to_host() const {
        std::vector<float> host(count * P);
        Backend::download(host.data(), parameters, host.size());
        return host;
    }
    // Replaces every gate by host values (a whole number of gates); fresh optimizer state.
    void from_host(const std::vector<float>& host) {
        if (host.size() % P != 0)
            fail("GainLoRA gates: " + std::to_string(host.size()) + " values are no whole number of gates of " +
                 std::to_string(P));
        Backend::release(parameters);
        count = int(host.size() / P);
        parameters = Backend::template allocate<real>(std::max<size_t>(host.size(), 1));
        Backend::upload(parameters, host.data(), host.size());
        release_batch();  // values is (count, S)
        reset_optimizer();
    }
    void add(const std::vector<float>& gate) {
        std::vector<float> host = to_host();
        host.insert(host.end(), gate.begin(), gate.end());
        from_host(host);
    }
    void reset_optimizer() {
        for (real* p : {gradients, adam_m, adam_v}) Backend::zero(p, P);
    }

    void release_batch() {
        for (real* p : {p0, z1, p1, z2, p2, values, dg}) Backend::release(p);
        Backend::release(tokens);
        Backend::release(offsets);
        p0 = z1 = p1 = z2 = p2 = values = dg = nullptr;
        tokens = offsets = nullptr;
        capacity = token_capacity = 0;
    }
    void ensure_batch(int sequences, int total_tokens) {
        if (sequences > capacity) {
            for (real* p : {p0, z1, p1, z2, p2, values, dg}) Backend::release(p);
            Backend::release(offsets);
            capacity = sequences;
            const size_t S_ = size_t(capacity);
            p0 = Backend::template allocate<real>(S_ * C);
            z1 = Backend::template allocate<real>(S_ * m);
            p1 = Backend::template allocate<real>(S_ * m);
            z2 = Backend::template allocate<real>(S_ * C);
            p2 = Backend::template allocate<real>(S_ * C);
            values = Backend::template allocate<real>(S_ * std::max(count, 1));
            dg = Backend::template allocate<real>(S_);
            offsets = Backend::template allocate<int>(S_ + 1);
        }
        if (total_tokens > token_capacity) {
            Backend::release(tokens);
            token_capacity = total_tokens;
            tokens = Backend::template allocate<int>(size_t(token_capacity));
        }
    }

    // values (count, S) = every gate on these prompts (token ids below vocab_size); the activations z1 .. p2 are the
    // last gate's, and p0 the prompts' mean embeddings (wte (Vp,C), backend memory).
    void forward(const real* wte, int vocab_size, const std::vector<const std::vector<int>*>& prompts) {
        S = int(prompts.size());
        std::vector<int> host_tokens, host_offsets{0};
        for (const std::vector<int>* prompt : prompts) {
            host_tokens.insert(host_tokens.end(), prompt->begin(), prompt->end());
            host_offsets.push_back(int(host_tokens.size()));
        }
        check_token_ids(host_tokens.data(), host_tokens.size(), vocab_size, "GainLoRA gate prompts");
        ensure_batch(S, std::max<int>(1, int(host_tokens.size())));
        if (S == 0) return;
        Backend::upload(tokens, host_tokens.data(), host_tokens.size());
        Backend::upload(offsets, host_offsets.data(), host_offsets.size());
        Kernels::prompt_mean(p0, wte, tokens, offsets, S, C);
        for (int i = 0; i < count; i++)  // the last gate last: its activations stay for the backward
            Kernels::forward(values + size_t(i) * S, z1, p1, z2, p2, p0, parameters + W1(i), parameters + W2(i),
                             parameters + k(i), S, C, m);
    }

    // The last gate's gradient (accumulated into gradients) from the block weights' gradient d_block_weights
    // (S*T, count) of the rows of the latest forward's prompts, T rows each.
    void backward(const real* d_block_weights, int T) {
        if (S == 0 || count == 0) return;
        const int i = count - 1;
        Kernels::rows_backward(dg, d_block_weights, S, T, count, i);
        Kernels::backward(gradients, gradients + size_t(m) * C, gradients + 2 * size_t(m) * C, dg, p0, z1, p1, z2,
                          p2, parameters + W2(i), parameters + k(i), S, C, m);
    }

    // host copies of the latest forward's gate values (count, S)
    std::vector<float> values_to_host() const {
        std::vector<float> host(size_t(count) * S);
        Backend::download(host.data(), values, host.size());
        return host;
    }
};
