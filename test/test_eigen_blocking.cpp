// The CPU reference gives the same bits on every machine: Eigen's product blocking, which it would size from the
// cache sizes of the machine it runs on, is pinned (model/cpu/eigen_views.h). Shown here: the pin is in place
// before any test runs, and other cache sizes would round the same product differently (so the pin matters).
#include <cstring>

#include "model/cpu/matmul.h"
#include "test/test_support.h"

namespace {
// out (N,OC) = inp (N,C) W^T for GPT-2's fc_proj shape (C = 3072: a sum long enough to be split into blocks)
std::vector<float> fc_proj_product() {
    const int N = 64, C = 3072, OC = 768;
    const std::vector<float> inp = random_vector<float>(size_t(N) * C, 1);
    const std::vector<float> weight = random_vector<float>(size_t(OC) * C, 2);
    std::vector<float> out(size_t(N) * OC);
    cpu::matmul_forward(out.data(), inp.data(), weight.data(), static_cast<const float*>(nullptr), N, C, OC);
    return out;
}
}  // namespace

TEST_CASE("cpu kernels: Eigen's product blocking is pinned, so the reference rounds alike on every machine") {
    CHECK(Eigen::l1CacheSize() == 48 * 1024);
    CHECK(Eigen::l2CacheSize() == 2 * 1024 * 1024);
    CHECK(Eigen::l3CacheSize() == 260 * 1024 * 1024);
    const std::vector<float> pinned = fc_proj_product();

    Eigen::setCpuCacheSizes(16 * 1024, 256 * 1024, 8 * 1024 * 1024);  // a smaller machine's caches
    const std::vector<float> smaller = fc_proj_product();
    Eigen::setCpuCacheSizes(48 * 1024, 2 * 1024 * 1024, 260 * 1024 * 1024);  // the pin again
    const std::vector<float> again = fc_proj_product();

    CHECK(std::memcmp(again.data(), pinned.data(), pinned.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(smaller.data(), pinned.data(), pinned.size() * sizeof(float)) != 0);  // blocking moves bits
    CHECK(relative_error(smaller, pinned) < 1e-6);  // and only the rounding
}
