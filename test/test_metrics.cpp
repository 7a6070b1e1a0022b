// Exact match and the continual-learning metrics on hand-made accuracy matrices.
#include "lora/metrics.h"
#include "test/test_support.h"

TEST_CASE("metrics: answers are normalised before exact match") {
    CHECK(normalize_answer("  The  Answer,\tis:\n42! ") == "the answer is 42");
    CHECK(normalize_answer("World") == "world");
    CHECK(normalize_answer("Café") == "café");  // non-ASCII bytes are kept as they are
    CHECK(exact_match("Sci/Tech", "scitech"));
    CHECK(exact_match("positive.", " Positive"));
    CHECK_FALSE(exact_match("negative", "positive"));
    CHECK_FALSE(exact_match("", "a"));
    CHECK(exact_match("", "..."));
}

TEST_CASE("metrics: AA, BWT, FT and the diagonal of a hand-made matrix") {
    // three tasks; a[j][i] = score on task i after training task j
    std::vector<std::vector<double>> a = {
        {80},
        {60, 90},
        {50, 70, 85},
    };
    ContinualMetrics m = continual_metrics(a);
    CHECK(m.average_accuracy == Approx((50 + 70 + 85) / 3.0));
    CHECK(m.diagonal_mean == Approx((80 + 90 + 85) / 3.0));
    CHECK(m.backward_transfer == Approx(((50 - 80) + (70 - 90)) / 2.0));  // -25
    CHECK(m.forgetting == Approx(((80 - 50) + (90 - 70)) / 2.0));        // 25

    // forgetting counts from the best earlier score, not from the diagonal
    std::vector<std::vector<double>> b = {{40}, {60, 90}, {30, 90, 70}};
    ContinualMetrics n = continual_metrics(b);
    CHECK(n.forgetting == Approx(((60 - 30) + (90 - 90)) / 2.0));
    CHECK(n.backward_transfer == Approx(((30 - 40) + (90 - 90)) / 2.0));

    CHECK(continual_metrics({{75}}).backward_transfer == 0);
    CHECK(continual_metrics({{75}}).average_accuracy == 75);
}

TEST_CASE("metrics: malformed matrices are rejected") {
    CHECK_THROWS_WITH(continual_metrics({}), Catch::Contains("no tasks"));
    CHECK_THROWS_WITH(continual_metrics({{1}, {2}}), Catch::Contains("row 1 has 1 scores"));
    CHECK_THROWS_WITH(continual_metrics({{1, 2}, {3}}), Catch::Contains("row 1"));
}
