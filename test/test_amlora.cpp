// AM-LoRA (lora/methods/amlora.h): the attention over the branches (lora/cpu/attention_mixture.h) checked by finite
// differences in double, alone and through the whole model; the CUDA kernels against the CPU reference; and, end to
// end on the synthetic benchmark, that the sparsity penalty lowers the attention weights and that a resumed run is
// bit-identical. Without a GPU the "cuda kernels: " tests report themselves as skipped.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lora/attention_mixture.h"
#include "lora/cpu/attention_mixture.h"
#include "model/cpu/lora_linear.h"
#include "lora/methods/amlora.h"
#include "model/backend_cpu.h"
#include "lora/cuda/attention_mixture_kernels.h"
#include "model/initialisation.h"
#include "test/cl_test_support.h"
#include "test/cuda_test_support.h"
#include "test/gradient_check.h"

namespace {

using Vec = std::vector<double>;

// One adapted linear with `branches` branches and their attention modules, random: inp (N,C), A (R,C), Bt (R,OC),
// D (branches*d_a, OC), v (branches*d_a), row weights (N) in [0,1) (a padding row at 0).
template <typename T>
struct MixtureInputs {
    LoraShape ls;
    MixtureShape ms;
    T scale = T(2);
    std::vector<T> inp, A, Bt, D, v, row_weights;

    MixtureInputs(LoraShape l, int dim, bool softmax, uint64_t seed)
        : ls(l), ms{l.N, l.OC, l.branches, l.rank, dim, l.first_trainable_branch, softmax} {
        const size_t R = size_t(l.branches) * l.rank;
        inp = random_vector<T>(size_t(l.N) * l.C, seed);
        A = random_vector<T>(R * l.C, seed + 1);
        Bt = random_vector<T>(R * l.OC, seed + 2);
        D = random_vector<T>(size_t(l.branches) * dim * l.OC, seed + 3);
        v = random_vector<T>(size_t(l.branches) * dim, seed + 4, -2, 2);
        row_weights = random_vector<T>(size_t(l.N), seed + 5, 0, 1);
        row_weights[0] = T(0);
    }
};

// The adapted linear's output (N,OC) with the attention's weights, and the penalty: what a step computes.
struct MixtureOutput {
    Vec out, w;
    double penalty = 0;
};
MixtureOutput mixture_linear_forward(const MixtureInputs<double>& x, double lambda) {
    const LoraShape& s = x.ls;
    const int R = s.branches * s.rank;
    Vec hidden(size_t(s.N) * R), P(size_t(R) * x.ms.dim), z(size_t(s.N) * s.branches * x.ms.dim);
    MixtureOutput o{Vec(size_t(s.N) * s.OC, 0.0), Vec(size_t(s.N) * s.branches), 0};
    cpu::lora_down_forward(hidden.data(), x.inp.data(), x.A.data(), static_cast<const double*>(nullptr), s);
    cpu::mixture_project(P.data(), x.Bt.data(), x.D.data(), x.scale, x.ms);
    cpu::mixture_forward(o.w.data(), z.data(), hidden.data(), P.data(), x.v.data(), x.ms);
    cpu::lora_up_forward(o.out.data(), hidden.data(), x.Bt.data(), o.w.data(), x.scale, s);
    Vec scratch(o.w.size(), 0.0);
    o.penalty = cpu::mixture_penalty(scratch.data(), o.w.data(), x.row_weights.data(), lambda, x.ms);
    return o;
}

const bool variants[] = {false, true};  // sigmoid + L1, softmax + entropy

// The attention's parameters sit deepest in the whole model's chain (D enters through P = s Bt D^T, then tanh, the
// score, the weight, every later layer): there the double-precision differences agree to a few 1e-6, independent
// of the step (1e-5 and 1e-6 give the same error), while each kernel alone agrees to GRADIENT_TOLERANCE.
constexpr double WHOLE_MODEL_TOLERANCE = 2e-5;

}  // namespace

TEST_CASE("amlora kernels: forward matches the formula; weights are sigmoids, or a softmax over the branches",
          "[attention_mixture]") {
    const LoraShape s{5, 6, 7, 3, 2, 0};
    for (bool softmax : variants) {
        INFO("softmax " << softmax);
        MixtureInputs<double> x(s, 4, softmax, 1);
        const MixtureOutput o = mixture_linear_forward(x, 0.5);
        double expected_penalty = 0;
        for (int n = 0; n < s.N; n++) {
            Vec e(s.branches), w(s.branches), y(s.OC, 0.0);
            std::vector<Vec> outputs(s.branches, Vec(s.OC, 0.0));
            for (int i = 0; i < s.branches; i++) {
                // o_i = scale B_i A_i h; e_i = v_i . tanh(D_i o_i)
                for (int j = 0; j < s.OC; j++)
                    for (int k = 0; k < s.rank; k++) {
                        const int row = i * s.rank + k;
                        double a = 0;
                        for (int c = 0; c < s.C; c++) a += x.A[size_t(row) * s.C + c] * x.inp[size_t(n) * s.C + c];
                        outputs[i][j] += x.scale * x.Bt[size_t(row) * s.OC + j] * a;
                    }
                e[i] = 0;
                for (int d = 0; d < x.ms.dim; d++) {
                    double u = 0;
                    for (int j = 0; j < s.OC; j++) u += x.D[(size_t(i) * x.ms.dim + d) * s.OC + j] * outputs[i][j];
                    e[i] += x.v[size_t(i) * x.ms.dim + d] * std::tanh(u);
                }
            }
            double total = 0;
            for (int i = 0; i < s.branches; i++) total += std::exp(e[i]);
            for (int i = 0; i < s.branches; i++) {
                w[i] = softmax ? std::exp(e[i]) / total : 1 / (1 + std::exp(-e[i]));
                CHECK(o.w[size_t(n) * s.branches + i] == Approx(w[i]).epsilon(1e-12));
                for (int j = 0; j < s.OC; j++) y[j] += w[i] * outputs[i][j];
                expected_penalty += 0.5 * x.row_weights[n] * (softmax ? -w[i] * std::log(w[i]) : w[i]);
            }
            for (int j = 0; j < s.OC; j++) CHECK(o.out[size_t(n) * s.OC + j] == Approx(y[j]).epsilon(1e-12));
        }
        CHECK(o.penalty == Approx(expected_penalty).epsilon(1e-12));
    }
}

TEST_CASE("amlora kernels: every gradient of the attention path matches finite differences (double)",
          "[attention_mixture]") {
    // three branches; all trainable, then only the last (the frozen ones' D, v, A, Bt get nothing)
    for (int first_trainable : {0, 2})
        for (bool softmax : variants) {
            INFO("softmax " << softmax << ", first trainable branch " << first_trainable);
            const LoraShape s{6, 5, 7, 3, 2, first_trainable};
            MixtureInputs<double> x(s, 3, softmax, 11);
            const double lambda = 0.7;
            const Vec r = random_vector<double>(size_t(s.N) * s.OC, 40);  // loss = r . out + penalty
            const int R = s.branches * s.rank, Z = s.branches * x.ms.dim;

            // analytic: the backward chain of lora/attention_mixture.h
            Vec hidden(size_t(s.N) * R), P(size_t(R) * x.ms.dim), z(size_t(s.N) * Z), w(size_t(s.N) * s.branches);
            cpu::lora_down_forward(hidden.data(), x.inp.data(), x.A.data(), static_cast<const double*>(nullptr), s);
            cpu::mixture_project(P.data(), x.Bt.data(), x.D.data(), x.scale, x.ms);
            cpu::mixture_forward(w.data(), z.data(), hidden.data(), P.data(), x.v.data(), x.ms);
            Vec d_hidden(hidden.size()), dw(w.size(), 0.0), dP(P.size(), 0.0);
            Vec dinp(x.inp.size(), 0.0), dA(x.A.size(), 0.0), dBt(x.Bt.size(), 0.0), dD(x.D.size(), 0.0),
                dv(x.v.size(), 0.0);
            cpu::lora_up_backward(d_hidden.data(), dBt.data(), dw.data(), r.data(), hidden.data(), x.Bt.data(),
                                  w.data(), x.scale, s);
            cpu::mixture_penalty(dw.data(), w.data(), x.row_weights.data(), lambda, x.ms);
            cpu::mixture_backward(d_hidden.data(), dP.data(), dv.data(), dw.data(), w.data(), z.data(), hidden.data(),
                                  P.data(), x.v.data(), x.ms);
            cpu::mixture_project_backward(dBt.data(), dD.data(), dP.data(), x.Bt.data(), x.D.data(), x.scale, x.ms);
            cpu::lora_down_backward(dinp.data(), dA.data(), d_hidden.data(), x.inp.data(), x.A.data(),
                                    static_cast<const double*>(nullptr), s);

            auto loss = [&] {
                const MixtureOutput o = mixture_linear_forward(x, lambda);
                return project(o.out, r) + o.penalty;
            };
            CHECK(relative_error(dinp, numerical_gradient(x.inp, loss)) < GRADIENT_TOLERANCE);
            // per tensor: the trainable branches' rows match; the frozen ones' are exactly 0
            struct Tensor {
                const char* name;
                std::vector<double>& values;
                const Vec& analytic;
                size_t per_branch;
            };
            for (Tensor t : {Tensor{"A", x.A, dA, size_t(s.rank) * s.C}, Tensor{"Bt", x.Bt, dBt, size_t(s.rank) * s.OC},
                             Tensor{"D", x.D, dD, size_t(x.ms.dim) * s.OC}, Tensor{"v", x.v, dv, size_t(x.ms.dim)}}) {
                INFO(t.name);
                const Vec numeric = numerical_gradient(t.values, loss);
                const size_t frozen = size_t(first_trainable) * t.per_branch;
                CHECK(relative_error(t.analytic.data() + frozen, numeric.data() + frozen, numeric.size() - frozen) <
                      GRADIENT_TOLERANCE);
                for (size_t k = 0; k < frozen; k++) REQUIRE(t.analytic[k] == 0.0);
            }
        }
}

TEST_CASE("amlora model: gradients through the whole model match finite differences; the base gets none") {
    GPT2Config config;
    config.max_seq_len = 8, config.vocab_size = 19, config.padded_vocab_size = padded_vocab(19);
    config.num_layers = 2, config.num_heads = 2, config.channels = 8;
    std::vector<float> base = gpt2_random_parameters(config, 3);
    for (float& p : base) p *= 4;  // a lively base: every path carries a real gradient
    const int B = 2, T = 5;
    const std::vector<int> inputs = {1, 18, 3, 3, 17, 9, 0, 5, 5, 2};
    const std::vector<int> targets = {18, 3, 3, 17, 9, 0, 5, 5, 2, 11};
    const std::vector<float> weights = {0, 0, 1, 1, 1, 0, 1, 1, 0.5f, 1};
    for (bool softmax : variants) {
        INFO("softmax " << softmax);
        using Backend = CpuBackend<double>;
        GPT2<Backend> model(config, base.data());
        LoraConfig lora;
        lora.rank = 2, lora.alpha = 4, lora.dropout = 0, lora.modules = parse_lora_modules("all");
        LoraAdapters<Backend> adapters(config, lora);
        AttentionMixture<Backend> mixture(3, softmax, 0.3f);
        for (int b = 0; b < 2; b++) {  // branch 0 frozen, branch 1 trainable
            lora_add_branch(adapters, 5 + b);
            mixture.add_branch(adapters, 9 + b);
        }
        adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 21, -0.5, 0.5));
        mixture.from_host(adapters, 2, random_vector<float>(mixture.num_parameters, 22, -1, 1));
        adapters.mixture = &mixture;
        model.lora = &adapters;
        model.frozen_base = true;
        std::vector<float> row_weights(size_t(B) * T);
        for (size_t i = 0; i < row_weights.size(); i++) row_weights[i] = float(i % T < 4) / 8.0f;
        mixture.set_row_weights(row_weights);

        gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
        gpt2_zero_grad(model);
        lora_zero_grad(adapters);
        mixture.zero_grad();
        mixture.penalty_total = 0;
        gpt2_backward(model);
        const Vec adapter_analytic(adapters.gradients, adapters.gradients + adapters.num_parameters);
        const Vec mixture_analytic(mixture.gradients, mixture.gradients + mixture.num_parameters);
        CHECK(model.gradients_memory == nullptr);  // a frozen base holds no parameter gradients
        CHECK(mixture.penalty_total > 0);

        // loss = the weighted mean cross-entropy + the penalty, as a function of the adapters' or the mixture's values
        auto loss_of = [&](double* target, std::vector<double>& values) {
            return [&, target] {
                std::copy(values.begin(), values.end(), target);
                gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
                double total = 0, weight_sum = 0;
                for (int i = 0; i < B * T; i++) total += weights[i] * model.acts.losses[i], weight_sum += weights[i];
                mixture.penalty_total = 0;
                gpt2_zero_grad(model);
                lora_zero_grad(adapters);
                gpt2_backward(model);  // the penalty is computed in the backward
                return total / weight_sum + mixture.penalty_total;
            };
        };
        std::vector<double> adapter_values(adapters.parameters, adapters.parameters + adapters.num_parameters);
        std::vector<double> mixture_values(mixture.parameters, mixture.parameters + mixture.num_parameters);
        const Vec adapter_numeric = numerical_gradient(adapter_values, loss_of(adapters.parameters, adapter_values));
        const Vec mixture_numeric = numerical_gradient(mixture_values, loss_of(mixture.parameters, mixture_values));
        // the trainable rows (branch 1) match; the frozen rows got exactly 0
        for (const LoraSlot& s : adapters.slots)
            for (auto [offset, width] : {std::pair<size_t, int>{s.A, s.shape.in}, {s.Bt, s.shape.out}}) {
                const size_t frozen = size_t(lora.rank) * width, all = 2 * frozen;
                CHECK(relative_error(adapter_analytic.data() + offset + frozen, adapter_numeric.data() + offset + frozen,
                                     all - frozen) < GRADIENT_TOLERANCE);
                for (size_t k = 0; k < frozen; k++) REQUIRE(adapter_analytic[offset + k] == 0.0);
            }
        // per slot: D (2 d_a, OC) | v (2 d_a); branch 1's rows match, branch 0's got exactly 0
        const size_t dim = size_t(mixture.dim);
        for (size_t k = 0; k < adapters.slots.size(); k++) {
            const size_t OC = adapters.slots[k].shape.out, D = mixture.offsets[k], v = D + 2 * dim * OC;
            for (auto [start, count] : {std::pair<size_t, size_t>{D, dim * OC}, {v, dim}}) {
                INFO("slot " << k << (count == dim ? " v" : " D"));
                CHECK(relative_error(mixture_analytic.data() + start + count, mixture_numeric.data() + start + count,
                                     count) < WHOLE_MODEL_TOLERANCE);
                for (size_t i = 0; i < count; i++) REQUIRE(mixture_analytic[start + i] == 0.0);
            }
        }
    }
}

namespace {

// The attention's diagnostics of the last task boundary in <out>/<method>/metrics.jsonl.
nlohmann::json last_diagnostics(const std::string& out_dir, const std::string& method) {
    std::ifstream file(out_dir + "/" + method + "/metrics.jsonl");
    std::string line, last;
    while (std::getline(file, line))
        if (!line.empty()) last = line;
    REQUIRE(!last.empty());
    return nlohmann::json::parse(last).at("diagnostics");
}

}  // namespace

TEST_CASE("amlora: the sparsity penalty lowers the mean attention weight, and the diagnostics cover every branch") {
    double mean_weight[2], sparsity[2];
    const float lambdas[] = {0.0f, 0.01f};  // none, and METHODS.md's default
    for (int k = 0; k < 2; k++) {
        ContinualOptions options = synthetic_options("amlora_penalty_" + std::to_string(k), {"amlora"});
        options.method.amlora_lambda = lambdas[k];
        options.epochs = 2;
        const std::vector<MethodResult> results = run_continual(options);
        REQUIRE(results.size() == 1);
        const nlohmann::json d = last_diagnostics(options.out_dir, "amlora");
        INFO("lambda " << lambdas[k] << ": " << d.dump());
        for (const char* key : {"attention_1_on_1", "attention_1_on_2", "attention_2_on_1", "attention_2_on_2",
                                "attention_mean", "attention_sparsity", "collision_1e-2", "orthogonality_A"})
            REQUIRE(d.contains(key));
        mean_weight[k] = d["attention_mean"].get<double>();
        sparsity[k] = d["attention_sparsity"].get<double>();
        CHECK(mean_weight[k] > 0);
        CHECK(mean_weight[k] < 1);
    }
    INFO("mean weight " << mean_weight[0] << " -> " << mean_weight[1] << ", sparsity " << sparsity[0] << " -> "
                        << sparsity[1]);
    CHECK(mean_weight[1] < mean_weight[0] - 0.1);
    CHECK(sparsity[1] > sparsity[0]);
}

TEST_CASE("amlora: a run stopped after task 1 and resumed ends bit-identical to an uninterrupted run") {
    ContinualOptions options = synthetic_options("amlora_resume_full", {"amlora"});
    options.epochs = 1;
    const MethodResult full = run_continual(options)[0];
    ContinualOptions staged = options;
    staged.out_dir = make_temp_dir("amlora_resume_staged");
    staged.stop_after = 1;
    run_continual(staged);
    staged.stop_after = 0;
    staged.start = StartMode::resume;
    const MethodResult resumed = run_continual(staged)[0];
    CHECK(resumed.accuracy == full.accuracy);
    CHECK(bit_identical(resumed.final_adapters, full.final_adapters));
    const AdapterFile a = read_adapter_file(options.out_dir + "/amlora/adapters_task02.bin");
    const AdapterFile b = read_adapter_file(staged.out_dir + "/amlora/adapters_task02.bin");
    REQUIRE(a.has("amlora/attention"));
    CHECK(bit_identical(a.tensor("amlora/attention"), b.tensor("amlora/attention")));
}

GPU_TEST_CASE("cuda kernels: attention mixture forward, penalty and backward match the CPU reference",
              "[attention_mixture]") {
    // odd sizes, and GPT-2-like ones (qkv 768 -> 2304, r 8, d_a 64, 15 branches)
    const LoraShape shapes[] = {{37, 5, 11, 3, 2, 2}, {300, 16, 48, 4, 8, 0}, {512, 768, 2304, 15, 8, 14}};
    const int dims[] = {3, 16, 64};
    for (int k = 0; k < 3; k++)
        for (bool softmax : variants) {
            const LoraShape& s = shapes[k];
            INFO("N " << s.N << " OC " << s.OC << " branches " << s.branches << " softmax " << softmax);
            MixtureInputs<float> x(s, dims[k], softmax, 70 + k);
            const MixtureShape& ms = x.ms;
            const size_t R = size_t(s.branches) * s.rank, Z = size_t(s.branches) * ms.dim;
            const std::vector<float> hidden = random_vector<float>(size_t(s.N) * R, 80 + k);
            const std::vector<float> dw_in = random_vector<float>(size_t(s.N) * s.branches, 81 + k);
            const std::vector<float> dh_start = random_vector<float>(size_t(s.N) * R, 82 + k);
            const std::vector<float> dv_start = random_vector<float>(x.v.size(), 83 + k);
            const std::vector<float> dBt_start = random_vector<float>(x.Bt.size(), 84 + k);
            const std::vector<float> dD_start = random_vector<float>(x.D.size(), 85 + k);

            // CPU reference
            std::vector<float> P(R * ms.dim), z(size_t(s.N) * Z), w(size_t(s.N) * s.branches);
            cpu::mixture_project(P.data(), x.Bt.data(), x.D.data(), x.scale, ms);
            cpu::mixture_forward(w.data(), z.data(), hidden.data(), P.data(), x.v.data(), ms);
            std::vector<float> dw = dw_in;
            const double penalty = cpu::mixture_penalty(dw.data(), w.data(), x.row_weights.data(), 0.3f, ms);
            std::vector<float> dh = dh_start, dP(P.size(), 0.0f), dv = dv_start, dBt = dBt_start, dD = dD_start;
            cpu::mixture_backward(dh.data(), dP.data(), dv.data(), dw.data(), w.data(), z.data(), hidden.data(),
                                  P.data(), x.v.data(), ms);
            cpu::mixture_project_backward(dBt.data(), dD.data(), dP.data(), x.Bt.data(), x.D.data(), x.scale, ms);

            // GPU, outputs poisoned, accumulated ones from the same start
            DeviceBuffer<float> g_Bt(x.Bt), g_D(x.D), g_v(x.v), g_hidden(hidden), g_rows(x.row_weights);
            DeviceBuffer<float> g_P(P.size()), g_z(z.size()), g_w(w.size()), g_dw(dw_in), g_dP(P.size());
            DeviceBuffer<float> g_dh(dh_start), g_dv(dv_start), g_dBt(dBt_start), g_dD(dD_start);
            for (DeviceBuffer<float>* b : {&g_P, &g_z, &g_w, &g_dP}) b->poison();
            cuda::mixture_project(g_P.data, g_Bt.data, g_D.data, x.scale, ms);
            cuda::mixture_forward(g_w.data, g_z.data, g_hidden.data, g_P.data, g_v.data, ms);
            const double g_penalty = cuda::mixture_penalty(g_dw.data, g_w.data, g_rows.data, 0.3f, ms);
            cuda::mixture_backward(g_dh.data, g_dP.data, g_dv.data, g_dw.data, g_w.data, g_z.data, g_hidden.data,
                                   g_P.data, g_v.data, ms);
            cuda::mixture_project_backward(g_dBt.data, g_dD.data, g_dP.data, g_Bt.data, g_D.data, x.scale, ms);
            const std::vector<float> first_w = g_w.download(), first_dh = g_dh.download(), first_dv = g_dv.download();
            CHECK(relative_error(g_P.download(), P) < FP32_TOLERANCE);
            CHECK(relative_error(g_z.download(), z) < FP32_TOLERANCE);
            CHECK(relative_error(first_w, w) < FP32_TOLERANCE);
            CHECK(std::abs(g_penalty - penalty) <= FP32_TOLERANCE * std::abs(penalty));
            CHECK(relative_error(g_dw.download(), dw) < FP32_TOLERANCE);
            CHECK(relative_error(first_dh, dh) < FP32_TOLERANCE);
            CHECK(relative_error(first_dv, dv) < FP32_TOLERANCE);
            CHECK(relative_error(g_dBt.download(), dBt) < FP32_TOLERANCE);
            CHECK(relative_error(g_dD.download(), dD) < FP32_TOLERANCE);
            // the trainable rows of dP (the frozen ones are not written)
            const size_t frozen = size_t(s.first_trainable_branch) * s.rank * ms.dim;
            const std::vector<float> g_dP_host = g_dP.download();
            CHECK(relative_error(g_dP_host.data() + frozen, dP.data() + frozen, dP.size() - frozen) < FP32_TOLERANCE);
            // deterministic: the same inputs again give the same bits
            g_dh.upload(dh_start);
            g_dv.upload(dv_start);
            g_dw.upload(dw_in);
            g_w.poison();
            cuda::mixture_forward(g_w.data, g_z.data, g_hidden.data, g_P.data, g_v.data, ms);
            const double again = cuda::mixture_penalty(g_dw.data, g_w.data, g_rows.data, 0.3f, ms);
            cuda::mixture_backward(g_dh.data, g_dP.data, g_dv.data, g_dw.data, g_w.data, g_z.data, g_hidden.data,
                                   g_P.data, g_v.data, ms);
            CHECK(again == g_penalty);
            CHECK(bit_identical(g_w.download(), first_w));
            CHECK(bit_identical(g_dh.download(), first_dh));
            CHECK(bit_identical(g_dv.download(), first_dv));
        }
}

GPU_TEST_CASE("cuda model: AM-LoRA on the GPU matches the CPU run on the synthetic benchmark, and repeats bit for"
              " bit") {
    for (const char* norm : {"sigmoid", "softmax"}) {
        INFO(norm);
        ContinualOptions o = synthetic_options(std::string("amlora_cuda_cpu_") + norm, {"amlora"});
        o.epochs = 2;
        o.method.amlora_norm = norm;
        const MethodResult cpu = run_continual(o)[0];
        o.device = "cuda";
        o.out_dir = make_temp_dir(std::string("amlora_cuda_gpu_") + norm);
        const MethodResult gpu = run_continual(o)[0];
        CHECK(relative_error(gpu.final_adapters, cpu.final_adapters) < 1e-3);
        for (size_t j = 0; j < cpu.accuracy.size(); j++)
            for (size_t i = 0; i < cpu.accuracy[j].size(); i++)
                CHECK(std::abs(gpu.accuracy[j][i] - cpu.accuracy[j][i]) <= 3.0);
        o.out_dir = make_temp_dir(std::string("amlora_cuda_gpu_again_") + norm);
        const MethodResult again = run_continual(o)[0];
        CHECK(bit_identical(again.final_adapters, gpu.final_adapters));
        CHECK(again.accuracy == gpu.accuracy);
    }
}
