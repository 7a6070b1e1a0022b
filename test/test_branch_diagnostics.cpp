// Tests of the branch diagnostics (lora/diagnostics.h) on hand-made adapters whose answers are known: branches with
// disjoint supports (no collision, orthogonal), identical or proportional branches (collision, cosine 1), one
// branch (nothing reported), and the LoraAdapters overload against the explicit one.
#include <cmath>
#include <map>

#include "lora/diagnostics.h"
#include "model/backend_cpu.h"
#include "test/test_support.h"

namespace {

// One adapted linear, in 4 -> out 3, `branches` branches of rank 1: A (branches,4) then Bt (branches,3).
std::vector<LoraSlot> one_slot(int branches) {
    LoraSlot slot{0, LORA_QKV, {4, 3}, 0, size_t(branches) * 4, 0, 0};
    return {slot};
}

// Parameters of one_slot(branches) from each branch's A row (4) and B column (3): DW_i = s b_i a_i^T (3,4).
std::vector<float> parameters(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    std::vector<float> values;
    for (const auto& row : a) values.insert(values.end(), row.begin(), row.end());
    for (const auto& column : b) values.insert(values.end(), column.begin(), column.end());
    return values;
}

std::map<std::string, double> as_map(const Diagnostics& diagnostics) {
    return std::map<std::string, double>(diagnostics.begin(), diagnostics.end());
}

}  // namespace

TEST_CASE("diagnostics: branches with disjoint supports do not collide and are orthogonal") {
    // DW_0 lives in row 0, columns 0-1; DW_1 in rows 1-2, columns 2-3
    const std::vector<float> values = parameters({{1, -2, 0, 0}, {0, 0, 3, 1}}, {{1, 0, 0}, {0, 2, -1}});
    auto d = as_map(branch_diagnostics(values, one_slot(2), 2, 1, 4.0));
    REQUIRE(d.size() == 5);
    CHECK(d.at("collision_1e-3") == 0);
    CHECK(d.at("collision_1e-2") == 0);
    CHECK(d.at("collision_1e-1") == 0);
    CHECK(d.at("orthogonality_A") == 0);
    CHECK(d.at("update_cosine") == 0);
}

TEST_CASE("diagnostics: identical branches collide wherever their entries pass the threshold; cosine 1") {
    // DW = s b a^T with b = (1, 0.05, 0.005), a = (1, 0, 0, 0): column 0 holds s, s/20, s/200, the rest is 0.
    // Entries above tau * s: 3 of 12 at 1e-3, 2 at 1e-2, 1 at 1e-1.
    const std::vector<float> a = {1, 0, 0, 0}, b = {1, 0.05f, 0.005f};
    const std::vector<float> values = parameters({a, a}, {b, b});
    auto d = as_map(branch_diagnostics(values, one_slot(2), 2, 1, 4.0));
    CHECK(d.at("collision_1e-3") == Approx(3.0 / 12));
    CHECK(d.at("collision_1e-2") == Approx(2.0 / 12));
    CHECK(d.at("collision_1e-1") == Approx(1.0 / 12));
    CHECK(d.at("orthogonality_A") == Approx(1.0));  // ||a a^T||_F^2 = ||a||^4
    CHECK(d.at("update_cosine") == Approx(1.0));

    // DW_1 = -2 DW_0: the same support and |cosine| 1; the threshold follows the larger one (2s): entries of DW_0
    // above tau * 2s are s (all three taus), s/20 (1e-3, 1e-2), s/200 (1e-3)
    const std::vector<float> b2 = {-2, -0.1f, -0.01f};
    auto scaled = as_map(branch_diagnostics(parameters({a, a}, {b, b2}), one_slot(2), 2, 1, 4.0));
    CHECK(scaled.at("collision_1e-3") == Approx(3.0 / 12));
    CHECK(scaled.at("collision_1e-2") == Approx(2.0 / 12));
    CHECK(scaled.at("collision_1e-1") == Approx(1.0 / 12));
    CHECK(scaled.at("update_cosine") == Approx(1.0));
}

TEST_CASE("diagnostics: averages over pairs, sums the orthogonality; nothing for one branch; a zero branch") {
    // three branches: 0 and 2 identical, 1 disjoint from both
    const std::vector<float> a = {1, 0, 0, 0}, b = {1, 0.05f, 0.005f};
    const std::vector<float> values = parameters({a, {0, 0, 0, 2}, a}, {b, {0, 0, 1}, b});
    auto d = as_map(branch_diagnostics(values, one_slot(3), 3, 1, 4.0));
    CHECK(d.at("collision_1e-3") == Approx(3.0 / 12 / 3));  // pairs (0,1), (0,2), (1,2): only (0,2) collides
    CHECK(d.at("update_cosine") == Approx(1.0 / 3));
    CHECK(d.at("orthogonality_A") == Approx(1.0));  // only (0,2): ||a a^T||^2 = 1

    CHECK(branch_diagnostics(parameters({a}, {b}), one_slot(1), 1, 1, 4.0).empty());

    // a branch that has not moved (B = 0): no collision, cosine counted as 0
    auto fresh = as_map(branch_diagnostics(parameters({a, a}, {b, {0, 0, 0}}), one_slot(2), 2, 1, 4.0));
    CHECK(fresh.at("collision_1e-3") == 0);
    CHECK(fresh.at("update_cosine") == 0);
}

TEST_CASE("diagnostics: the adapters overload reads every slot of real adapters") {
    GPT2Config config;
    config.num_layers = 2, config.channels = 8, config.num_heads = 2, config.vocab_size = 16;
    config.padded_vocab_size = padded_vocab(16), config.max_seq_len = 8;
    LoraConfig lora;
    lora.rank = 2;
    lora.modules = parse_lora_modules("all");
    LoraAdapters<CpuBackend<float>> adapters(config, lora);
    CHECK(branch_diagnostics(adapters).empty());  // no branch
    lora_add_branch(adapters, 1);
    CHECK(branch_diagnostics(adapters).empty());  // one branch: no pair
    lora_add_branch(adapters, 2);
    adapters.parameters_from_host(random_vector<float>(adapters.num_parameters, 3));
    const Diagnostics d = branch_diagnostics(adapters);
    CHECK(d == branch_diagnostics(adapters.parameters_to_host(), adapters.slots, 2, 2, lora.scale()));
    auto m = as_map(d);
    CHECK(m.at("collision_1e-3") > m.at("collision_1e-2"));
    CHECK(m.at("collision_1e-2") >= m.at("collision_1e-1"));
    CHECK(m.at("orthogonality_A") > 0);
    CHECK(m.at("update_cosine") > 0);
    CHECK(m.at("update_cosine") < 1);
}
