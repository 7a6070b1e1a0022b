// I-LoRA (lora/methods/ilora.h, lora/METHODS.md section 8): its kernels (the consistency loss and the EMA,
// lora/cpu/consistency.h against lora/cuda/consistency.cu), the slow adapter as the EMA of the fast one, the
// consistency loss's gradient through the whole model against finite differences, and runs on the synthetic
// benchmark: I-LoRA forgets less than SeqLoRA, and a resumed run ends bit-identical to an uninterrupted one.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "lora/adapter_file.h"
#include "lora/continual.h"
#include "lora/cpu/consistency.h"
#include "lora/methods/ilora.h"
#include "model/backend_cpu.h"
#include "lora/cuda/consistency_kernels.h"
#include "model/initialisation.h"
#include "test/cl_test_support.h"
#include "test/cuda_test_support.h"
#include "test/gradient_check.h"
#include "test/small_model.h"

namespace {

using Cpu = CpuBackend<double>;

// A task of `count` training examples with prompts of 1..6 tokens and answers of 1..8 (eot = 28 included), so that
// batches mix short rows (padding) with rows longer than the context of 12 (truncated).
EncodedTask random_task(const std::string& name, int count, uint64_t seed) {
    EncodedTask task;
    task.name = name;
    std::vector<double> unit = random_vector<double>(size_t(count) * 20, seed, 0.0, 1.0);
    size_t k = 0;
    for (int i = 0; i < count; i++) {
        EncodedExample e;
        const int prompt = 1 + int(unit[k++] * 6), answer = 1 + int(unit[k++] * 7);
        for (int j = 0; j < prompt; j++) e.prompt.push_back(int(unit[k++] * 28));
        for (int j = 0; j < answer; j++) e.answer.push_back(int(unit[k++] * 28));
        e.answer.push_back(28);
        task.train.push_back(e);
    }
    task.test = task.train;
    return task;
}

MethodOptions ilora_options(float ema, float gamma) {
    MethodOptions options;
    options.ilora_ema = ema;
    options.ilora_gamma = gamma;
    return options;
}

}  // namespace

TEST_CASE("ilora kernels: the consistency loss's gradient matches finite differences (CPU, double)", "[consistency]") {
    const int N = 5, C = 7;
    std::vector<double> fast = random_vector<double>(size_t(N) * C, 1), slow = random_vector<double>(size_t(N) * C, 2);
    std::vector<double> weights = {0.0, 0.3, 1.5, 0.0, 0.7};  // zero rows: positions outside the loss
    std::vector<double> dh(size_t(N) * C), row_losses(N);
    auto loss = [&] {
        cpu::consistency_loss(dh.data(), row_losses.data(), fast.data(), slow.data(), weights.data(), N, C);
        double total = 0;
        for (double l : row_losses) total += l;
        return total;
    };
    const double value = loss();
    const std::vector<double> analytic = dh;
    // L = sum_n w[n] sum_c (f - s)^2, written out
    double expected = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) expected += weights[n] * std::pow(fast[n * C + c] - slow[n * C + c], 2);
    CHECK(std::abs(value - expected) < 1e-12);
    std::vector<double> numerical = numerical_gradient(fast, loss);
    CHECK(relative_error(analytic, numerical) < GRADIENT_TOLERANCE);
    for (int c = 0; c < C; c++) CHECK(analytic[c] == 0.0);  // row 0 weighs 0
}

TEST_CASE("ilora: the slow adapter is the EMA of the fast one after every step; evaluation uses the slow one") {
    const GPT2Config config = small_config();
    std::vector<float> base = lively_base(config, 3);
    GPT2<Cpu> model(config, base.data());
    LoraAdapters<Cpu> adapters(config, every_module(2));
    model.lora = &adapters;
    model.frozen_base = true;
    std::vector<EncodedTask> tasks = {random_task("one", 6, 1), random_task("two", 6, 2)};
    ContinualContext<Cpu> context{model, adapters, tasks, 0, 11, nullptr, 0};
    const double lambda = double(0.9f);  // the method keeps options in fp32
    ILora<Cpu> method(ilora_options(float(lambda), 1.0f), 4, 5);

    method.task_start(context);
    REQUIRE(adapters.branches == 1);
    REQUIRE(adapters.first_trainable == 0);  // the one shared adapter trains whole
    REQUIRE(method.slow);
    const size_t P = adapters.num_parameters;
    REQUIRE(method.slow->num_parameters == P);
    const std::vector<double> slow0(method.slow->parameters, method.slow->parameters + P);
    CHECK(std::equal(slow0.begin(), slow0.end(), adapters.parameters));  // theta_l(0) = theta_w(0), exactly
    CHECK(method.buffer.size() == 4);                                      // task 1 offered at its start

    // k "optimizer steps": theta_w(j) set to fresh values, then after_step; the closed form of the EMA is
    //   theta_l(k) = lambda^k theta_l(0) + (1 - lambda) sum_{j=1..k} lambda^(k-j) theta_w(j)
    const int k = 7;
    std::vector<std::vector<double>> fast(k + 1);
    for (int j = 1; j <= k; j++) {
        fast[j] = random_vector<double>(P, 100 + j);
        std::copy(fast[j].begin(), fast[j].end(), adapters.parameters);
        method.after_step(context);
    }
    double error = 0, scale = 0;
    for (size_t i = 0; i < P; i++) {
        double expected = std::pow(lambda, k) * slow0[i];
        for (int j = 1; j <= k; j++) expected += (1 - lambda) * std::pow(lambda, k - j) * fast[j][i];
        error = std::max(error, std::abs(method.slow->parameters[i] - expected));
        scale = std::max(scale, std::abs(expected));
    }
    CHECK(error < 1e-12 * scale);

    // the diagnostic distance ||theta_w - theta_l|| (from fp32 copies)
    double distance = 0;
    for (size_t i = 0; i < P; i++) distance += std::pow(adapters.parameters[i] - method.slow->parameters[i], 2);
    distance = std::sqrt(distance);
    Diagnostics d = method.diagnostics(context);
    REQUIRE(d.size() == 3);
    CHECK(d[0].first == "ilora_fast_slow_distance");
    CHECK(std::abs(d[0].second - distance) < 1e-5 * distance);
    CHECK(d[2].first == "replay_buffer_size");
    CHECK(d[2].second == 4);

    // evaluation (no batch) runs the slow adapter by default, the fast one with --ilora-eval fast; training the fast
    std::vector<const EncodedExample*> rows = {&tasks[0].test[0]};
    method.before_forward(context, rows, 1);
    CHECK(model.lora == method.slow.get());
    MethodOptions fast_eval = ilora_options(float(lambda), 1.0f);
    fast_eval.ilora_eval = "fast";
    ILora<Cpu> other(fast_eval, 4, 5);
    other.task_start(context);
    other.before_forward(context, rows, 1);
    CHECK(model.lora == &adapters);
    method.before_forward(context, rows, 1);
    CHECK(model.lora == method.slow.get());
    method.task_start(context);  // training resumes with the fast adapter
    CHECK(model.lora == &adapters);

    // task 1 trains on the current batch alone; task 2 adds a replay batch of equal size
    std::vector<std::vector<const EncodedExample*>> groups(1);
    groups[0] = {&tasks[0].train[0], &tasks[0].train[1]};
    method.extend_batch(context, groups, 1);
    CHECK(groups.size() == 1);
    context.task = 1;
    method.task_start(context);
    CHECK(method.buffer.seen() == 6 + 6 + 6);  // task 1 offered twice above (two task_start calls), then task 2
    method.extend_batch(context, groups, 1);
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].size() == 2);
}

TEST_CASE("ilora: the consistency loss's gradient through the whole model matches finite differences") {
    const GPT2Config config = small_config();
    std::vector<float> base = lively_base(config, 3);
    for (float dropout : {0.0f, 0.25f}) {
        INFO("dropout " << dropout);
        GPT2<Cpu> model(config, base.data());
        LoraAdapters<Cpu> adapters(config, every_module(2, dropout));
        model.lora = &adapters;
        model.frozen_base = true;
        std::vector<EncodedTask> tasks = {random_task("one", 8, 1), random_task("two", 8, 2)};
        ContinualContext<Cpu> context{model, adapters, tasks, 0, 11, nullptr, 0};
        const double gamma = double(0.7f);  // the method keeps options in fp32
        ILora<Cpu> method(ilora_options(0.99f, float(gamma)), 8, 5);

        method.task_start(context);
        // fast and slow adapters far apart, every parameter non-zero
        adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 21, -0.3, 0.3));
        method.slow->parameters_from_host(random_vector<float>(adapters.num_parameters, 22, -0.3, 0.3));
        context.task = 1;
        context.step = 4;
        method.task_start(context);
        std::vector<std::vector<const EncodedExample*>> groups(1);
        for (int i = 0; i < 3; i++) groups[0].push_back(&tasks[1].train[i]);
        method.extend_batch(context, groups, 7);
        REQUIRE(groups.size() == 2);
        REQUIRE(groups[1].size() == 3);
        std::vector<const EncodedExample*> rows = groups[0];
        rows.insert(rows.end(), groups[1].begin(), groups[1].end());
        TrainingBatch batch = make_training_batch(rows, config.max_seq_len);
        const int B = batch.B, T = batch.T, C = config.channels;
        // the replay rows must include padding (a short row) for the mask to matter
        int shortest = T;
        for (int b = 3; b < B; b++) shortest = std::min(shortest, training_length(*rows[b]));
        INFO("T " << T << ", shortest replay row " << shortest);
        REQUIRE(shortest < T);
        std::fill(batch.loss_weights.begin(), batch.loss_weights.end(), 0.0f);  // no cross-entropy: L = gamma L_cons
        context.batch = &batch;
        // the loop's training forward: dropout on, with the step's seed (the slow forward uses the same masks)
        const uint64_t step_seed = 0x5eed;

        // the step as the loop runs it: before_forward (the slow forward), the fast forward, before_backward
        auto forward = [&] {
            adapters.training = true;
            adapters.dropout_seed = step_seed;
            method.before_forward(context, rows, T);
            REQUIRE(model.lora == &adapters);
            gpt2_forward(model, batch.inputs.data(), batch.targets.data(), batch.loss_weights.data(), B, T);
            method.before_backward(context);
        };
        forward();
        lora_zero_grad(adapters);
        gpt2_backward(model);
        model.extra_dlnf = nullptr;
        const double value = model.mean_loss + method.extra_loss(context);
        std::vector<double> analytic(adapters.gradients, adapters.gradients + adapters.num_parameters);

        // the value, independently: gamma / (count C) sum over the replay rows' real positions of
        // (h_fast - h_slow)^2, the slow forward with the fast one's dropout masks
        std::vector<double> h_fast(model.acts.lnf, model.acts.lnf + size_t(B) * T * C);
        model.lora = method.slow.get();
        method.slow->training = true;
        method.slow->dropout_seed = step_seed;
        gpt2_forward(model, batch.inputs.data(), nullptr, nullptr, B, T);
        method.slow->training = false;
        std::vector<double> h_slow(model.acts.lnf, model.acts.lnf + size_t(B) * T * C);
        model.lora = &adapters;
        double sum = 0;
        size_t count = 0;
        for (int b = 3; b < B; b++)
            for (int t = 0; t < std::min(T, training_length(*rows[b])); t++, count++)
                for (int c = 0; c < C; c++) {
                    const size_t i = (size_t(b) * T + t) * C + c;
                    sum += (h_fast[i] - h_slow[i]) * (h_fast[i] - h_slow[i]);
                }
        const double expected = gamma * sum / (double(count) * C);
        CHECK(expected > 1e-3);
        CHECK(std::abs(value - expected) < 1e-12 * expected);

        // a fast forward whose dropout seed is not the step's is refused
        adapters.training = true;
        adapters.dropout_seed = step_seed;
        method.before_forward(context, rows, T);
        adapters.dropout_seed = step_seed + 1;
        gpt2_forward(model, batch.inputs.data(), batch.targets.data(), batch.loss_weights.data(), B, T);
        if (dropout > 0) CHECK_THROWS_WITH(method.before_backward(context), Catch::Contains("dropout seed"));

        std::vector<double> values(adapters.parameters, adapters.parameters + adapters.num_parameters);
        auto loss = [&] {
            std::copy(values.begin(), values.end(), adapters.parameters);
            forward();
            model.extra_dlnf = nullptr;
            return model.mean_loss + method.extra_loss(context);
        };
        std::vector<double> numerical = numerical_gradient(values, loss);
        double norm = 0;
        for (double g : analytic) norm += g * g;
        CHECK(norm > 0);
        CHECK(relative_error(analytic, numerical) < GRADIENT_TOLERANCE);
    }
}

TEST_CASE("ilora: on the synthetic benchmark I-LoRA forgets less than SeqLoRA") {
    const ContinualOptions options = synthetic_options("ilora_forgetting", {"seqlora", "ilora"});
    std::vector<MethodResult> results = run_continual(options);
    REQUIRE(results.size() == 2);
    const MethodResult &seq = results[0], &ilora = results[1];
    for (const MethodResult& r : results) {
        INFO(r.method << ": a = " << r.accuracy[0][0] << " / " << r.accuracy[1][0] << " " << r.accuracy[1][1]
                      << ", AA " << r.metrics.average_accuracy << ", BWT " << r.metrics.backward_transfer);
        REQUIRE(r.accuracy.size() == 2);
        CHECK(r.accuracy[1][1] >= 80);  // both learn task 2
    }
    INFO("seqlora AA " << seq.metrics.average_accuracy << " BWT " << seq.metrics.backward_transfer << "; ilora AA "
                       << ilora.metrics.average_accuracy << " BWT " << ilora.metrics.backward_transfer);
    CHECK(ilora.accuracy[1][0] > seq.accuracy[1][0] + 30);  // task 1 after task 2: kept far better
    CHECK(ilora.metrics.average_accuracy > seq.metrics.average_accuracy + 15);
    CHECK(ilora.metrics.backward_transfer > seq.metrics.backward_transfer + 30);
    // the slow adapter is in the adapter file
    AdapterFile file = read_adapter_file(options.out_dir + "/ilora/adapters_task02.bin");
    CHECK(file.has("ilora/slow"));
    CHECK(file.tensor("ilora/slow").size() == file.tensor("lora").size());
    CHECK(file.tensor("ilora/slow") != file.tensor("lora"));
}

TEST_CASE("ilora: a run stopped after task 1 and resumed ends bit-identical to an uninterrupted run") {
    ContinualOptions whole = synthetic_options("ilora_whole", {"ilora"});
    whole.epochs = 2;
    MethodResult uninterrupted = run_continual(whole)[0];

    ContinualOptions staged = whole;
    staged.out_dir = make_temp_dir("ilora_staged");
    staged.stop_after = 1;
    MethodResult first = run_continual(staged)[0];
    CHECK(first.accuracy.size() == 1);
    staged.stop_after = 0;
    staged.start = StartMode::resume;
    MethodResult resumed = run_continual(staged)[0];
    CHECK(resumed.accuracy == uninterrupted.accuracy);
    CHECK(bit_identical(resumed.final_adapters, uninterrupted.final_adapters));
    AdapterFile a = read_adapter_file(whole.out_dir + "/ilora/adapters_task02.bin");
    AdapterFile b = read_adapter_file(staged.out_dir + "/ilora/adapters_task02.bin");
    CHECK(bit_identical(a.tensor("ilora/slow"), b.tensor("ilora/slow")));
}

// ---------------------------------------------------------------------------------------------------------------
// GPU: lora/cuda/consistency.cu against lora/cpu/consistency.h

GPU_TEST_CASE("cuda kernels: I-LoRA's consistency loss matches the CPU reference, deterministically", "[consistency]") {
    struct Shape {
        int N, C;
    } shapes[] = {{1, 1}, {1, 36}, {7, 771}, {64 * 33, 768}, {300, 33}};
    for (const Shape& s : shapes) {
        INFO("N=" << s.N << " C=" << s.C);
        const size_t NC = size_t(s.N) * s.C;
        std::vector<float> fast = random_vector<float>(NC, 1), slow = random_vector<float>(NC, 2);
        std::vector<float> weights = random_vector<float>(size_t(s.N), 3, 0.0, 1.0);
        for (int n = 0; n < s.N; n += 3) weights[n] = 0.0f;  // rows outside the loss
        std::vector<float> dh(NC), row_losses(s.N);
        cpu::consistency_loss(dh.data(), row_losses.data(), fast.data(), slow.data(), weights.data(), s.N, s.C);

        DeviceBuffer<float> d_fast(fast), d_slow(slow), d_weights(weights), d_dh(NC), d_losses(size_t(s.N));
        d_dh.poison();
        d_losses.poison();
        cuda::consistency_loss(d_dh.data, d_losses.data, d_fast.data, d_slow.data, d_weights.data, s.N, s.C);
        const std::vector<float> gpu_dh = d_dh.download(), gpu_losses = d_losses.download();
        CHECK(relative_error(gpu_dh, dh) < FP32_TOLERANCE);
        CHECK(relative_error(gpu_losses, row_losses) < FP32_TOLERANCE);
        d_dh.poison();
        d_losses.poison();
        cuda::consistency_loss(d_dh.data, d_losses.data, d_fast.data, d_slow.data, d_weights.data, s.N, s.C);
        CHECK(bit_identical(d_dh.download(), gpu_dh));
        CHECK(bit_identical(d_losses.download(), gpu_losses));
    }
}

GPU_TEST_CASE("cuda kernels: I-LoRA's EMA update and device copy match the CPU reference", "[consistency]") {
    for (size_t count : {size_t(1), size_t(7), size_t(64 * 33), size_t(4 * 768 * 33 + 5)}) {
        INFO("count " << count);
        std::vector<float> slow = random_vector<float>(count, 1), fast = random_vector<float>(count, 2);
        for (float lambda : {0.99f, 0.25f, 1.0f, 0.0f}) {
            INFO("lambda " << lambda);
            std::vector<float> expected = slow;
            cpu::ema_update(expected.data(), fast.data(), count, lambda);
            DeviceBuffer<float> d_slow(slow), d_fast(fast);
            cuda::ema_update(d_slow.data, d_fast.data, count, lambda);
            CHECK(relative_error(d_slow.download(), expected) < FP32_TOLERANCE);
        }
        DeviceBuffer<float> d_fast(fast), d_copy(count);
        d_copy.poison();
        cuda::copy_on_device(d_copy.data, d_fast.data, count);
        CHECK(bit_identical(d_copy.download(), fast));
    }
}

GPU_TEST_CASE("cuda model: I-LoRA on the GPU matches the CPU run on the synthetic benchmark, and repeats bit for bit") {
    ContinualOptions o = synthetic_options("ilora_cuda_cpu", {"ilora"});
    o.epochs = 2;
    MethodResult cpu = run_continual(o)[0];
    o.device = "cuda";
    o.out_dir = make_temp_dir("ilora_cuda_gpu");
    MethodResult gpu = run_continual(o)[0];
    CHECK(relative_error(gpu.final_adapters, cpu.final_adapters) < 1e-3);
    for (size_t j = 0; j < cpu.accuracy.size(); j++)
        for (size_t i = 0; i < cpu.accuracy[j].size(); i++)
            CHECK(std::abs(gpu.accuracy[j][i] - cpu.accuracy[j][i]) <= 3.0);
    o.out_dir = make_temp_dir("ilora_cuda_gpu_again");
    MethodResult again = run_continual(o)[0];
    CHECK(bit_identical(again.final_adapters, gpu.final_adapters));
    CHECK(again.accuracy == gpu.accuracy);
}
