// LoRA inside the model (model/lora_adapters.h wired into model/gpt2.h), greedy decoding with the KV cache
// (model/generate.h) and the adapter file (lora/adapter_file.h), on the CPU backend.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "data/llmc_header.h"
#include "lora/adapter_file.h"
#include "model/backend_cpu.h"
#include "model/generate.h"
#include "model/initialisation.h"
#include "test/gradient_check.h"
#include "test/small_model.h"

namespace {

// Adapters with `branches` branches (the last one trainable) whose parameters are all random and non-zero.
template <class Backend>
void add_random_branches(LoraAdapters<Backend>& adapters, int branches, uint64_t seed) {
    for (int b = 0; b < branches; b++) lora_add_branch(adapters, seed + b);
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, seed + 100, -0.3, 0.3));
}

}  // namespace

TEST_CASE("lora model: adapter gradients match finite differences; the frozen base gets none") {
    const GPT2Config config = small_config();
    const int B = 2, T = 6;
    std::vector<float> base = lively_base(config, 3);
    for (float dropout : {0.0f, 0.25f}) {
        INFO("dropout " << dropout);
        GPT2<CpuBackend<double>> model(config, base.data());
        LoraAdapters<CpuBackend<double>> adapters(config, every_module(2, dropout));
        add_random_branches(adapters, 2, 5);  // branch 0 frozen, branch 1 trainable
        model.lora = &adapters;
        model.frozen_base = true;
        adapters.training = true;
        adapters.dropout_seed = 99;  // the same masks in every forward below
        std::vector<int> inputs = {1, 28, 3, 3, 17, 9, 0, 5, 5, 21, 2, 11};
        std::vector<int> targets = {28, 3, 3, 17, 9, 4, 5, 5, 21, 2, 11, 27};
        std::vector<float> weights = {0, 0, 1, 1, 1, 1, 0, 1, 1, 0.5f, 1, 1};

        gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
        gpt2_zero_grad(model);
        lora_zero_grad(adapters);
        gpt2_backward(model);
        std::vector<double> analytic(adapters.gradients, adapters.gradients + adapters.num_parameters);
        CHECK(model.gradients_memory == nullptr);  // a frozen base holds no parameter gradients

        std::vector<double> values(adapters.parameters, adapters.parameters + adapters.num_parameters);
        auto loss = [&] {
            std::copy(values.begin(), values.end(), adapters.parameters);
            gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
            double total = 0, weight_sum = 0;
            for (int i = 0; i < B * T; i++) total += weights[i] * model.acts.losses[i], weight_sum += weights[i];
            return total / weight_sum;
        };
        std::vector<double> numeric = numerical_gradient(values, loss);
        // per slot: the trainable rows (branch 1) match, the frozen rows (branch 0) got exactly 0
        const int rank = adapters.config.rank;
        for (const LoraSlot& s : adapters.slots) {
            INFO("layer " << s.layer << " module " << lora_module_name(s.module));
            for (auto [offset, width] : {std::pair<size_t, int>{s.A, s.shape.in}, {s.Bt, s.shape.out}}) {
                const size_t frozen = size_t(rank) * width, all = size_t(2 * rank) * width;
                CHECK(relative_error(analytic.data() + offset + frozen, numeric.data() + offset + frozen,
                                     all - frozen) < GRADIENT_TOLERANCE);
                for (size_t k = 0; k < frozen; k++) REQUIRE(analytic[offset + k] == 0.0);
                double frozen_numeric = 0;
                for (size_t k = 0; k < frozen; k++) frozen_numeric += std::abs(numeric[offset + k]);
                CHECK(frozen_numeric > 0);  // the frozen branch does affect the loss: its zero is a choice
            }
        }
    }
}

TEST_CASE("lora model: sparse logits (answer positions only) give the same loss and gradients as the full ones") {
    const GPT2Config config = small_config();
    const int B = 2, T = 6;
    std::vector<float> base = lively_base(config, 7);
    std::vector<int> inputs = {1, 28, 3, 3, 17, 9, 0, 5, 5, 21, 2, 11};
    std::vector<int> targets = {28, 3, 3, 17, 9, 4, 5, 5, 21, 2, 11, 27};
    std::vector<float> weights = {0, 0, 0, 0, 1, 1, 0, 0, 0, 0.5f, 1, 0};
    std::vector<double> extra = random_vector<double>(size_t(B) * T * config.channels, 8, -0.1, 0.1);
    auto run = [&](bool sparse, const std::vector<float>& w, bool with_extra) {
        GPT2<CpuBackend<double>> model(config, base.data());
        LoraAdapters<CpuBackend<double>> adapters(config, every_module(2, 0.25f));
        add_random_branches(adapters, 2, 9);
        model.lora = &adapters;
        model.frozen_base = true;
        model.sparse_logits = sparse;
        adapters.training = true;
        adapters.dropout_seed = 5;
        gpt2_forward(model, inputs.data(), targets.data(), w.data(), B, T);
        lora_zero_grad(adapters);
        if (with_extra) model.extra_dlnf = extra.data();
        gpt2_backward(model);
        std::vector<double> out(adapters.gradients, adapters.gradients + adapters.num_parameters);
        out.push_back(model.mean_loss);
        return out;
    };
    for (bool with_extra : {false, true}) {
        INFO("extra dlnf " << with_extra);
        std::vector<double> full = run(false, weights, with_extra), sparse = run(true, weights, with_extra);
        REQUIRE(full.size() == sparse.size());
        CHECK(full.back() > 0);
        for (size_t i = 0; i < full.size(); i++) CHECK(std::abs(full[i] - sparse[i]) <= 1e-12 * (1 + std::abs(full[i])));
    }
    // no weighted position at all: loss 0, and no gradient from the classifier
    std::vector<double> none = run(true, std::vector<float>(size_t(B) * T, 0.0f), false);
    for (double g : none) CHECK(g == 0.0);
}

TEST_CASE("lora model: a frozen base keeps only the linear inputs its adapters read; the gradients are the same") {
    // activations_to_keep: with a frozen base, ln1 / ln2 / fch_gelu are one layer's scratch unless an adapter sits on
    // qkv / fc / fc_proj. The adapters' gradients must be bit-identical to a run that trains the base (and so keeps
    // every layer's inputs), for each adapted linear alone: a scratch read where a kept input is needed would differ.
    GPT2Config config = small_config();
    config.num_layers = 3;
    const int B = 2, T = 6;
    std::vector<float> base = lively_base(config, 11);
    std::vector<int> inputs = {1, 28, 3, 3, 17, 9, 0, 5, 5, 21, 2, 11};
    std::vector<int> targets = {28, 3, 3, 17, 9, 4, 5, 5, 21, 2, 11, 27};
    std::vector<float> weights = {0, 1, 1, 1, 1, 1, 0, 0, 1, 0.5f, 1, 1};
    for (int module = 0; module < NUM_LORA_MODULES; module++) {
        INFO("adapter on " << lora_module_name(module));
        LoraConfig lora_config = every_module(2, 0.25f);
        lora_config.modules = 1u << module;
        auto run = [&](bool frozen, size_t* activations) {
            GPT2<CpuBackend<float>> model(config, base.data());
            LoraAdapters<CpuBackend<float>> adapters(config, lora_config);
            add_random_branches(adapters, 1, 13);
            model.lora = &adapters;
            model.frozen_base = frozen;
            adapters.training = true;
            adapters.dropout_seed = 17;
            std::vector<float> out;
            for (int step = 0; step < 2; step++) {  // the second step reuses the buffers the first one left behind
                gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
                out.push_back(model.mean_loss);
                gpt2_zero_grad(model);
                lora_zero_grad(adapters);
                gpt2_backward(model);
                out.insert(out.end(), adapters.gradients, adapters.gradients + adapters.num_parameters);
            }
            *activations = num_activations<CpuBackend<float>>(config, B, T, model.kept);
            CHECK(model.keeps_input(module));
            for (int m = 0; m < NUM_LORA_MODULES; m++)  // atty is kept always: the attention backward reads it
                CHECK(model.keeps_input(m) == (!frozen || m == module || m == LORA_ATTN_PROJ));
            if (frozen && module != LORA_QKV) CHECK_THROWS_WITH(model.linear_input(0, LORA_QKV),
                                                                Catch::Contains("is not kept"));
            return out;
        };
        size_t trained_size = 0, frozen_size = 0;
        const std::vector<float> trained = run(false, &trained_size), frozen = run(true, &frozen_size);
        REQUIRE(trained.size() == frozen.size());
        CHECK(std::memcmp(trained.data(), frozen.data(), trained.size() * sizeof(float)) == 0);
        CHECK(*std::max_element(frozen.begin() + 1, frozen.end()) > 0);
        // two of the three linear inputs are one layer's instead of L layers'
        const size_t BTC = size_t(B) * T * config.channels, L = config.num_layers;
        const size_t saved = (module == LORA_QKV ? 5 : module == LORA_FC ? 5 : module == LORA_FC_PROJ ? 2 : 6) *
                             (L - 1) * BTC;
        CHECK(trained_size - frozen_size == saved);
    }
}

TEST_CASE("model: the backward overwrites the logits with their gradient, so a second backward is refused") {
    const GPT2Config config = small_config();
    std::vector<float> base = lively_base(config, 4);
    GPT2<CpuBackend<float>> model(config, base.data());
    std::vector<int> inputs = {1, 28, 3, 3, 17, 9}, targets = {28, 3, 3, 17, 9, 4};
    gpt2_forward(model, inputs.data(), targets.data(), nullptr, 1, 6);
    const std::vector<float> logits(model.acts.logits, model.acts.logits + 6 * config.padded_vocab_size);
    gpt2_zero_grad(model);
    gpt2_backward(model);
    // row 0 of dlogits: softmax(logits_0) - onehot(target) over 6 positions, summing to 0 over the vocabulary
    double row_sum = 0;
    for (int v = 0; v < config.vocab_size; v++) row_sum += model.acts.logits[v];
    CHECK(std::abs(row_sum) < 1e-6);
    CHECK(model.acts.logits[targets[0]] < 0);
    CHECK(model.acts.logits[targets[0]] != logits[targets[0]]);
    CHECK_THROWS_WITH(gpt2_backward(model), Catch::Contains("run the forward again"));
    gpt2_forward(model, inputs.data(), targets.data(), nullptr, 1, 6);  // a new forward restores both
    CHECK(std::vector<float>(model.acts.logits, model.acts.logits + logits.size()) == logits);
    CHECK_NOTHROW(gpt2_backward(model));
}

TEST_CASE("model: the classifier in chunks gives the whole logits' loss and gradients, holding one chunk of logits") {
    // N = 12 rows in chunks of 5 (the last one short) for full training, a frozen base with adapters, and the answer
    // rows gathered (sparse logits, 9 rows); each also with the weight sum doubled after the forward, as
    // gpt2_global_loss does over two ranks, so that the backward rescales the chunks' gradient
    const GPT2Config config = small_config();
    const int B = 2, T = 6, N = B * T, chunk = 5;
    std::vector<float> base = lively_base(config, 21);
    std::vector<int> inputs = {1, 28, 3, 3, 17, 9, 0, 5, 5, 21, 2, 11};
    std::vector<int> targets = {28, 3, 3, 17, 9, 4, 5, 5, 21, 2, 11, 27};
    std::vector<float> weights = {0, 1, 1, 1, 1, 1, 0, 0, 1, 0.5f, 1, 1};
    enum Mode { full, lora, gathered };
    for (int mode : {full, lora, gathered})
        for (bool two_ranks : {false, true}) {
            INFO("mode " << mode << (two_ranks ? ", weight sum doubled" : ""));
            auto run = [&](int chunk_rows, size_t* activations) {
                GPT2<CpuBackend<double>> model(config, base.data());
                LoraAdapters<CpuBackend<double>> adapters(config, every_module(2, 0.25f));
                add_random_branches(adapters, 1, 22);
                if (mode != full) model.lora = &adapters, model.frozen_base = true;
                model.sparse_logits = mode == gathered;
                model.logits_chunk_rows = chunk_rows;
                gpt2_forward(model, inputs.data(), targets.data(), weights.data(), B, T);
                std::vector<double> out = {model.mean_loss};
                if (two_ranks) model.weight_sum *= 2;
                gpt2_zero_grad(model);
                lora_zero_grad(adapters);
                gpt2_backward(model);
                const double* gradients = mode == full ? model.gradients_memory : adapters.gradients;
                out.insert(out.end(), gradients,
                           gradients + (mode == full ? model.num_parameters : adapters.num_parameters));
                *activations = num_activations<CpuBackend<double>>(config, B, T, model.kept);
                return out;
            };
            size_t whole_size = 0, chunked_size = 0;
            const std::vector<double> whole = run(0, &whole_size), chunked = run(chunk, &chunked_size);
            CHECK(relative_error(chunked, whole) < 1e-12);
            CHECK(*std::max_element(whole.begin() + 1, whole.end()) > 0);
            CHECK(whole_size - chunked_size == size_t(N - chunk) * config.padded_vocab_size);
        }

    // without targets, the chunked classifier computes no logits: there is nothing to go backward from
    GPT2<CpuBackend<double>> model(config, base.data());
    model.logits_chunk_rows = chunk;
    gpt2_forward(model, inputs.data(), nullptr, nullptr, B, T);
    CHECK(model.mean_loss == -1);
    CHECK_THROWS_WITH(gpt2_backward(model), Catch::Contains("no targets"));
}

TEST_CASE("model: a frozen base allocates no parameter gradients; training the base allocates them zeroed") {
    const GPT2Config config = small_config();
    std::vector<float> base = lively_base(config, 5);
    GPT2<CpuBackend<float>> model(config, base.data());
    LoraAdapters<CpuBackend<float>> adapters(config, every_module(2, 0.25f));
    add_random_branches(adapters, 1, 6);
    model.lora = &adapters;
    model.frozen_base = true;
    std::vector<int> inputs = {1, 28, 3, 3, 17, 9}, targets = {28, 3, 3, 17, 9, 4};
    gpt2_forward(model, inputs.data(), targets.data(), nullptr, 1, 6);
    gpt2_zero_grad(model);
    gpt2_backward(model);
    CHECK(model.gradients_memory == nullptr);
    AdamWSettings settings;
    CHECK_THROWS_WITH(gpt2_update(model, settings, 1), Catch::Contains("no parameter gradients"));
    CHECK_THROWS_WITH(model.gradients_to_host(), Catch::Contains("base is frozen"));

    // the same batch with the base trained: a backward without zero_grad accumulates into zeros
    model.frozen_base = false;
    gpt2_forward(model, inputs.data(), targets.data(), nullptr, 1, 6);
    gpt2_backward(model);
    REQUIRE(model.gradients_memory != nullptr);
    const std::vector<float> first = model.gradients_to_host();
    CHECK(*std::max_element(first.begin(), first.end()) > 0);
    gpt2_forward(model, inputs.data(), targets.data(), nullptr, 1, 6);
    gpt2_zero_grad(model);
    gpt2_backward(model);
    CHECK(model.gradients_to_host() == first);
    CHECK_NOTHROW(gpt2_update(model, settings, 1));
}

TEST_CASE("lora model: a new branch leaves the output unchanged, and the adapters change it") {
    const GPT2Config config = small_config();
    std::vector<float> base = lively_base(config, 4);
    GPT2<CpuBackend<float>> model(config, base.data());
    LoraAdapters<CpuBackend<float>> adapters(config, every_module(3, 0.1f));
    std::vector<int> inputs = {1, 28, 3, 3, 17, 9, 0, 5};
    auto logits = [&] {
        gpt2_forward(model, inputs.data(), nullptr, nullptr, 1, 8);
        return std::vector<float>(model.acts.logits, model.acts.logits + 8 * config.padded_vocab_size);
    };
    const std::vector<float> plain = logits();
    model.lora = &adapters;
    CHECK(logits() == plain);  // no branch yet
    lora_add_branch(adapters, 1);
    CHECK(logits() == plain);  // B = 0: a no-op
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 8, -0.3, 0.3));
    const std::vector<float> adapted = logits();
    CHECK(relative_error(adapted, plain) > 1e-3);
    lora_add_branch(adapters, 2);  // keeps branch 0, adds a no-op
    CHECK(adapters.branches == 2);
    CHECK(adapters.first_trainable == 1);
    CHECK(relative_error(logits(), adapted) < 1e-6);
}

TEST_CASE("generate: greedy decoding with the KV cache equals the argmax of full forward passes") {
    const GPT2Config config = small_config();
    std::vector<float> base = lively_base(config, 5);
    GPT2<CpuBackend<float>> model(config, base.data());
    LoraAdapters<CpuBackend<float>> adapters(config, every_module(2, 0.1f));
    add_random_branches(adapters, 2, 6);
    model.lora = &adapters;
    const std::vector<std::vector<int>> prompts = {{3}, {1, 2, 3, 4, 5}, {7, 7}, {20, 1, 9, 4}, {28, 0, 0}};
    GenerationSettings settings;
    settings.max_new_tokens = 5;
    settings.batch_size = 3;  // two batches, with sequences of different lengths in lockstep
    settings.stops.assign(config.vocab_size, false);
    settings.stops[13] = true;
    for (bool bf16 : {false, true}) {  // and on a frozen base stored in bf16 (GPT2::bf16_base)
        INFO("bf16 base " << bf16);
        model.frozen_base = model.bf16_base = bf16;
        std::vector<std::vector<int>> generated = greedy_generate(model, prompts, settings, [](auto&) {});
        REQUIRE(generated.size() == prompts.size());
        for (size_t i = 0; i < prompts.size(); i++) {
            // the reference: a full forward over the sequence so far, argmax of the last position, until a stop
            std::vector<int> sequence = prompts[i], expected;
            while (int(expected.size()) < settings.max_new_tokens) {
                const int T = int(sequence.size());
                gpt2_forward(model, sequence.data(), nullptr, nullptr, 1, T);
                const float* last = model.acts.logits + size_t(T - 1) * config.padded_vocab_size;
                const int next = int(std::max_element(last, last + config.vocab_size) - last);
                if (settings.stops[next]) break;
                expected.push_back(next);
                sequence.push_back(next);
            }
            INFO("prompt " << i);
            CHECK(generated[i] == expected);
        }
    }
}

TEST_CASE("adapter file: round trip, and corrupt files are rejected naming the problem") {
    const std::string dir = make_temp_dir("adapter_file");
    AdapterFile file;
    file.num_layers = 2;
    file.channels = 12;
    file.config = every_module(3, 0.1f);
    file.branches = 2;
    file.first_trainable = 1;
    file.tasks_completed = 2;
    file.set("lora", random_vector<float>(lora_num_parameters(file.config, 2, 12, 2), 1));
    file.set("accuracy/0", {100.0f});
    file.set("gate/1", {0.5f, -2.0f});
    const std::string path = dir + "/adapters.bin";
    write_adapter_file(path, file);
    AdapterFile read = read_adapter_file(path);
    CHECK(read.num_layers == 2);
    CHECK(read.channels == 12);
    CHECK(read.config.rank == 3);
    CHECK(read.config.alpha == 6.0f);
    CHECK(read.config.dropout == 0.1f);
    CHECK(read.config.modules == file.config.modules);
    CHECK(read.branches == 2);
    CHECK(read.first_trainable == 1);
    CHECK(read.tasks_completed == 2);
    CHECK(read.tensors == file.tensors);

    // the 'lora' tensor must fit the header's shape
    AdapterFile wrong = file;
    wrong.branches = 3;
    CHECK_THROWS_WITH(write_adapter_file(dir + "/wrong.bin", wrong), Catch::Contains("must hold"));
    CHECK_FALSE(file_exists(dir + "/wrong.bin"));

    std::vector<uint8_t> bytes = read_file_bytes(path);
    auto write_bytes = [&](std::vector<uint8_t> content) {  // re-sealed: the reader's own checks must reject it
        if (content.size() >= 1024) seal_llmc_checksum(content);
        FILE* out = std::fopen((dir + "/bad.bin").c_str(), "wb");
        std::fwrite(content.data(), 1, content.size(), out);
        std::fclose(out);
        return dir + "/bad.bin";
    };
    std::vector<uint8_t> truncated(bytes.begin(), bytes.end() - 5);
    CHECK_THROWS_WITH(read_adapter_file(write_bytes(truncated)), Catch::Contains("truncated"));
    std::vector<uint8_t> bad_magic = bytes;
    bad_magic[0] ^= 1;
    CHECK_THROWS_WITH(read_adapter_file(write_bytes(bad_magic)), Catch::Contains("not a clora adapter file"));
    std::vector<uint8_t> trailing = bytes;
    trailing.push_back(0);
    CHECK_THROWS_WITH(read_adapter_file(write_bytes(trailing)), Catch::Contains("trailing"));
    std::vector<uint8_t> nan = bytes;
    const float not_a_number = NAN;
    std::memcpy(nan.data() + nan.size() - sizeof(float), &not_a_number, sizeof(float));
    CHECK_THROWS_WITH(read_adapter_file(write_bytes(nan)), Catch::Contains("gate/1"));
    std::vector<uint8_t> rank_zero = bytes;
    std::memset(rank_zero.data() + 4 * 4, 0, 4);  // header[4] = rank
    CHECK_THROWS_WITH(read_adapter_file(write_bytes(rank_zero)), Catch::Contains("rank"));
}

TEST_CASE("lora config: module lists parse, and bad values are rejected") {
    CHECK(parse_lora_modules("qkv") == 1u);
    CHECK(parse_lora_modules("fc_proj,qkv") == 9u);
    CHECK(lora_modules_string(parse_lora_modules("all")) == "qkv,attn_proj,fc,fc_proj");
    CHECK_THROWS_WITH(parse_lora_modules("qkv,mlp"), Catch::Contains("unknown LoRA module 'mlp'"));
    LoraConfig config;
    config.dropout = 1.0f;
    CHECK_THROWS_WITH(validate_lora_config(config), Catch::Contains("dropout"));
}
