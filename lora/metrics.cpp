#include "lora/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "data/file_io.h"

std::string normalize_answer(const std::string& text) {
    std::string normalized;
    bool pending_space = false;
    for (unsigned char c : text) {
        if (c < 128 && std::ispunct(c)) continue;
        if (c < 128 && std::isspace(c)) {
            pending_space = !normalized.empty();
            continue;
        }
        if (pending_space) normalized += ' ';
        pending_space = false;
        normalized += char(c < 128 ? std::tolower(c) : c);
    }
    return normalized;
}

bool exact_match(const std::string& prediction, const std::string& reference) {
    return normalize_answer(prediction) == normalize_answer(reference);
}

size_t ranked_label(const std::vector<double>& scores) {
    if (scores.empty()) fail("ranked label: no scores");
    size_t best = 0;
    for (size_t i = 1; i < scores.size(); i++)
        if (scores[i] > scores[best] || (std::isnan(scores[best]) && !std::isnan(scores[i]))) best = i;
    return best;
}

ContinualMetrics continual_metrics(const std::vector<std::vector<double>>& a) {
    const size_t T = a.size();
    if (T == 0) fail("accuracy matrix: no tasks");
    for (size_t j = 0; j < T; j++)
        if (a[j].size() < j + 1 || a[j].size() > T)
            fail("accuracy matrix: row " + std::to_string(j) + " has " + std::to_string(a[j].size()) +
                 " scores, expected between " + std::to_string(j + 1) + " and " + std::to_string(T));
    if (a[T - 1].size() != T) fail("accuracy matrix: the last row must score every task");

    ContinualMetrics m;
    for (size_t i = 0; i < T; i++) {
        m.average_accuracy += a[T - 1][i] / T;
        m.diagonal_mean += a[i][i] / T;
    }
    if (T == 1) return m;
    for (size_t i = 0; i + 1 < T; i++) {
        m.backward_transfer += (a[T - 1][i] - a[i][i]) / (T - 1);
        double best = a[i][i];
        for (size_t j = i; j + 1 < T; j++) best = std::max(best, a[j][i]);
        m.forgetting += (best - a[T - 1][i]) / (T - 1);
    }
    return m;
}
