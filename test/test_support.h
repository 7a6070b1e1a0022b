// Helpers shared by the tests: skipping with a reason, random tensors, relative errors,
// and a temporary directory per test.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

// Catch2 v2 has no skip: SKIP_TEST records the reason (printed, and counted as skipped in the closing
// "N passed, N failed, N skipped" line) and leaves the test case.
void mark_test_skipped(const std::string& reason);
#define SKIP_TEST(reason)              \
    do {                               \
        mark_test_skipped(reason);     \
        return;                        \
    } while (0)

// The shared data folder beside the checkout (../shared/data), or "" when absent.
std::string shared_data_dir();

// A fresh, empty directory under /tmp for one test; removed at the end of the run.
std::string make_temp_dir(const std::string& name);

// Deterministic uniform values in [low, high).
template <typename T>
std::vector<T> random_vector(size_t count, uint64_t seed, double low = -1.0, double high = 1.0) {
    std::vector<T> values(count);
    uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (auto& value : values) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        double unit = double(state >> 11) * (1.0 / 9007199254740992.0);
        value = T(low + (high - low) * unit);
    }
    return values;
}

// ||a - b|| / ||b|| (plain difference norm when b is zero).
template <typename A, typename B>
double relative_error(const A* a, const B* b, size_t count) {
    double difference = 0, reference = 0;
    for (size_t i = 0; i < count; i++) {
        double d = double(a[i]) - double(b[i]);
        difference += d * d;
        reference += double(b[i]) * double(b[i]);
    }
    return reference > 0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}
template <typename A, typename B>
double relative_error(const std::vector<A>& a, const std::vector<B>& b) {
    REQUIRE(a.size() == b.size());
    return relative_error(a.data(), b.data(), a.size());
}

// Same size and the same bytes: for results that must repeat bit for bit (determinism, CPU = GPU masks).
template <typename T>
bool bit_identical(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}
