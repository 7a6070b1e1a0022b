// Scoring a continual-learning run (lora/METHODS.md sections 2 and 3): exact match after
// normalisation, and the metrics of the accuracy matrix a[j][i] = score on task i after training task j.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

// Lower-case, delete ASCII punctuation, collapse runs of whitespace to one space, trim the ends.
std::string normalize_answer(const std::string& text);
bool exact_match(const std::string& prediction, const std::string& reference);

// Label ranking's choice: the index of the highest score (the first of equal ones; a NaN score never wins unless
// every score is NaN, then 0). Fails on no scores.
size_t ranked_label(const std::vector<double>& scores);

struct ContinualMetrics {
    double average_accuracy = 0;     // AA: (1/T) sum_i a[T][i]
    double backward_transfer = 0;    // BWT: (1/(T-1)) sum_{i<T} (a[T][i] - a[i][i]); negative = forgetting
    double forgetting = 0;           // FT: (1/(T-1)) sum_{i<T} (max_{i<=j<T} a[j][i] - a[T][i])
    double diagonal_mean = 0;        // (1/T) sum_i a[i][i]: plasticity
};

// accuracy[j][i] for i <= j must be present (rows may be longer, with --eval-all); T = accuracy.size().
// Fails on a ragged or too-short matrix. With T = 1, BWT and FT are 0.
ContinualMetrics continual_metrics(const std::vector<std::vector<double>>& accuracy);
