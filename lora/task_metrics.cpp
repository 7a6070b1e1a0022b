// The TRACE per-task metrics; the definitions and their sources are in task_metrics.h.
#include "lora/task_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "data/file_io.h"
#include "data/python_text.h"
#include "lora/metrics.h"

namespace {

using namespace python_text;

// Python's round() of a float: to the nearest integer, half to even (the default floating-point rounding mode).
double round_half_even(double x) { return std::nearbyint(x); }

// ---- ROUGE-L of the `rouge` package 1.0.1 ----

using Word = std::u32string;
using WordSet = std::unordered_set<Word>;

// Rouge._get_scores' preparation: the pieces between '.', empty ones dropped, whitespace collapsed.
std::vector<Word> rouge_sentences(const std::string& text) {
    std::vector<Word> sentences;
    for (const std::u32string& piece : split_exactly(decode_utf8(text), U'.'))
        if (!piece.empty()) sentences.push_back(join(split_on_whitespace(piece), U' '));
    return sentences;
}

WordSet distinct_words(const std::vector<Word>& sentences) {
    WordSet words;
    for (const Word& sentence : sentences)
        for (Word& word : split_exactly(sentence, U' ')) words.insert(std::move(word));
    return words;
}

// Adds to `found` the words of the one LCS of x and y that the package's _recon_lcs reconstructs.
// table[i][j] = LCS length of x[:i] and y[:j]; shape (|x| + 1, |y| + 1).
void add_lcs_words(const std::vector<Word>& x, const std::vector<Word>& y, WordSet& found) {
    const size_t rows = x.size() + 1, columns = y.size() + 1;
    std::vector<int> table(rows * columns, 0);
    for (size_t i = 1; i < rows; i++)
        for (size_t j = 1; j < columns; j++)
            table[i * columns + j] = x[i - 1] == y[j - 1]
                                         ? table[(i - 1) * columns + j - 1] + 1
                                         : std::max(table[(i - 1) * columns + j], table[i * columns + j - 1]);
    for (size_t i = x.size(), j = y.size(); i > 0 && j > 0;) {
        if (x[i - 1] == y[j - 1]) {
            found.insert(x[i - 1]);
            i--, j--;
        } else if (table[(i - 1) * columns + j] > table[i * columns + j - 1]) {
            i--;
        } else {
            j--;
        }
    }
}

// ---- difflib.SequenceMatcher(None, a, b): the characters in its matching blocks ----

struct DifflibMatch {
    size_t a_start, b_start, size;
};

struct DifflibMatcher {
    const std::u32string& a;
    const std::u32string& b;
    std::unordered_map<char32_t, std::vector<size_t>> b_positions;  // b2j: where each character occurs in b

    DifflibMatcher(const std::u32string& a_text, const std::u32string& b_text) : a(a_text), b(b_text) {
        for (size_t j = 0; j < b.size(); j++) b_positions[b[j]].push_back(j);
        if (b.size() >= 200) {  // autojunk: the popular characters never start a match
            const size_t most = b.size() / 100 + 1;
            for (auto it = b_positions.begin(); it != b_positions.end();)
                it = it->second.size() > most ? b_positions.erase(it) : std::next(it);
        }
    }

    // The longest a[a_low:a_high] == b[b_low:b_high] block (earliest in a, then in b), extended over equal
    // neighbours (popular characters included); find_longest_match.
    DifflibMatch longest_match(size_t a_low, size_t a_high, size_t b_low, size_t b_high) const {
        DifflibMatch best{a_low, b_low, 0};
        std::unordered_map<size_t, size_t> run_ending_at, next_run_ending_at;  // j -> length of a match ending at j
        for (size_t i = a_low; i < a_high; i++) {
            next_run_ending_at.clear();
            auto found = b_positions.find(a[i]);
            if (found != b_positions.end()) {
                for (size_t j : found->second) {
                    if (j < b_low) continue;
                    if (j >= b_high) break;
                    auto previous = j > 0 ? run_ending_at.find(j - 1) : run_ending_at.end();
                    const size_t k = (previous != run_ending_at.end() ? previous->second : 0) + 1;
                    next_run_ending_at[j] = k;
                    if (k > best.size) best = {i + 1 - k, j + 1 - k, k};
                }
            }
            std::swap(run_ending_at, next_run_ending_at);
        }
        while (best.a_start > a_low && best.b_start > b_low && a[best.a_start - 1] == b[best.b_start - 1])
            best.a_start--, best.b_start--, best.size++;
        while (best.a_start + best.size < a_high && best.b_start + best.size < b_high &&
               a[best.a_start + best.size] == b[best.b_start + best.size])
            best.size++;
        return best;
    }

    // get_matching_blocks: the longest match, then the same on each side of it; the sum of the block sizes.
    size_t matching_characters() const {
        struct Range {
            size_t a_low, a_high, b_low, b_high;
        };
        size_t matches = 0;
        std::vector<Range> ranges = {{0, a.size(), 0, b.size()}};
        while (!ranges.empty()) {
            const Range r = ranges.back();
            ranges.pop_back();
            const DifflibMatch m = longest_match(r.a_low, r.a_high, r.b_low, r.b_high);
            if (m.size == 0) continue;
            matches += m.size;
            if (r.a_low < m.a_start && r.b_low < m.b_start) ranges.push_back({r.a_low, m.a_start, r.b_low, m.b_start});
            if (m.a_start + m.size < r.a_high && m.b_start + m.size < r.b_high)
                ranges.push_back({m.a_start + m.size, r.a_high, m.b_start + m.size, r.b_high});
        }
        return matches;
    }
};

// LCS length of two code-point strings; one rolling row of the DP table.
size_t lcs_length(const std::u32string& a, const std::u32string& b) {
    std::vector<size_t> row(b.size() + 1, 0);
    for (char32_t c : a) {
        size_t diagonal = 0;  // row[j - 1] of the previous row
        for (size_t j = 1; j <= b.size(); j++) {
            const size_t above = row[j];
            row[j] = c == b[j - 1] ? diagonal + 1 : std::max(above, row[j - 1]);
            diagonal = above;
        }
    }
    return row[b.size()];
}

// ---- sacrebleu's 13a tokeniser and SARI ----

void replace_all(std::u32string& text, const std::u32string& from, const std::u32string& to) {
    std::u32string replaced;
    size_t start = 0;
    for (size_t found; (found = text.find(from, start)) != std::u32string::npos; start = found + from.size())
        replaced.append(text, start, found - start).append(to);
    text = replaced.append(text, start, std::u32string::npos);
}

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char32_t c) { return c == '.' || c == ','; }

// The 13a character class [{-~ [-` space-& (-+ :-@ /]: each such character becomes " c ".
bool is_13a_symbol(char32_t c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

// One left-to-right pass of re.sub over a two-character pattern: where first(t[i]) and second(t[i + 1]), emit
// emit(t[i], t[i + 1]) and continue after both; else copy t[i].
template <typename First, typename Second, typename Emit>
std::u32string substitute_pairs(const std::u32string& text, First first, Second second, Emit emit) {
    std::u32string out;
    for (size_t i = 0; i < text.size();) {
        if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
            emit(out, text[i], text[i + 1]);
            i += 2;
        } else {
            out += text[i++];
        }
    }
    return out;
}

std::u32string tokenize_13a(std::u32string line) {
    replace_all(line, U"<skipped>", U"");
    replace_all(line, U"-\n", U"");
    replace_all(line, U"\n", U" ");
    if (line.find(U'&') != std::u32string::npos) {
        replace_all(line, U"&quot;", U"\"");
        replace_all(line, U"&amp;", U"&");
        replace_all(line, U"&lt;", U"<");
        replace_all(line, U"&gt;", U">");
    }
    std::u32string spaced = U" ";
    for (char32_t c : line) {
        if (is_13a_symbol(c)) spaced += {U' ', c, U' '};
        else spaced += c;
    }
    spaced += U' ';
    auto not_digit = [](char32_t c) { return !is_digit(c); };
    auto is_dash = [](char32_t c) { return c == '-'; };
    // period and comma split off unless preceded by a digit: "\1 \2 "
    spaced = substitute_pairs(spaced, not_digit, is_period_or_comma,
                              [](std::u32string& out, char32_t a, char32_t b) { out += {a, U' ', b, U' '}; });
    // ... unless followed by a digit: " \1 \2"
    spaced = substitute_pairs(spaced, is_period_or_comma, not_digit,
                              [](std::u32string& out, char32_t a, char32_t b) { out += {U' ', a, U' ', b}; });
    // a dash after a digit: "\1 \2 "
    spaced = substitute_pairs(spaced, is_digit, is_dash,
                              [](std::u32string& out, char32_t a, char32_t b) { out += {a, U' ', b, U' '}; });
    return join(split_on_whitespace(spaced), U' ');
}

// A multiset of n-grams that remembers the order in which they first came (Python's Counter iterates so).
struct GramCounts {
    std::vector<std::string> order;
    std::unordered_map<std::string, long> count;

    void add(const std::string& gram, long times) {
        if (times <= 0) return;
        auto [it, inserted] = count.emplace(gram, 0);
        if (inserted) order.push_back(gram);
        it->second += times;
    }
    long operator[](const std::string& gram) const {
        auto it = count.find(gram);
        return it == count.end() ? 0 : it->second;
    }
    size_t size() const { return order.size(); }
    long total() const {
        long sum = 0;
        for (const auto& gram : order) sum += count.at(gram);
        return sum;
    }
};

// Counter & other (the smaller count, kept when positive) and Counter - other (the difference, kept when positive).
GramCounts counts_min(const GramCounts& a, const GramCounts& b) {
    GramCounts result;
    for (const auto& gram : a.order) result.add(gram, std::min(a[gram], b[gram]));
    return result;
}
GramCounts counts_minus(const GramCounts& a, const GramCounts& b) {
    GramCounts result;
    for (const auto& gram : a.order) result.add(gram, a[gram] - b[gram]);
    return result;
}

// The n-grams of tokens, as strings joined by ' '.
std::vector<std::string> ngrams(const std::vector<std::string>& tokens, size_t n) {
    std::vector<std::string> grams;
    for (size_t i = 0; i + n <= tokens.size(); i++) {
        std::string gram = tokens[i];
        for (size_t k = 1; k < n; k++) gram += " " + tokens[i + k];
        grams.push_back(gram);
    }
    return grams;
}

double f1(double precision, double recall) {
    return precision > 0 || recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
}

struct SariParts {
    double keep, deletion, addition;  // F_keep, P_del, F_add of one n-gram order
};

// SARIngram: source, candidate (the prediction) and each reference's n-grams of one order.
SariParts sari_ngram(const std::vector<std::string>& source, const std::vector<std::string>& candidate,
                     const std::vector<std::vector<std::string>>& references) {
    const long k = long(references.size());
    GramCounts s, c, r;  // s and c with each count times k
    for (const auto& gram : source) s.add(gram, k);
    for (const auto& gram : candidate) c.add(gram, k);
    for (const auto& reference : references)
        for (const auto& gram : reference) r.add(gram, 1);

    const GramCounts kept = counts_min(s, c), kept_good = counts_min(kept, r), kept_all = counts_min(s, r);
    double keep_ratio_sum = 0, keep_good_sum = 0;
    for (const auto& gram : kept_good.order) {
        keep_ratio_sum += double(kept_good[gram]) / double(kept[gram]);
        keep_good_sum += double(kept_good[gram]);
    }
    const double keep_precision = kept.size() > 0 ? keep_ratio_sum / double(kept.size()) : 1;
    const double keep_recall = kept_all.size() > 0 ? keep_good_sum / double(kept_all.total()) : 1;

    const GramCounts deleted = counts_minus(s, c), deleted_good = counts_minus(deleted, r);
    double delete_ratio_sum = 0;
    for (const auto& gram : deleted_good.order)
        delete_ratio_sum += double(deleted_good[gram]) / double(deleted[gram]);
    const double delete_precision = deleted.size() > 0 ? delete_ratio_sum / double(deleted.size()) : 1;

    size_t added = 0, added_good = 0, addable = 0;  // |C \ S|, |(C \ S) n R|, |R \ S| as sets
    for (const auto& gram : c.order)
        if (s[gram] == 0) added++, added_good += r[gram] > 0;
    for (const auto& gram : r.order) addable += s[gram] == 0;
    const double add_precision = added > 0 ? double(added_good) / double(added) : 1;
    const double add_recall = addable > 0 ? double(added_good) / double(addable) : 1;

    return {f1(keep_precision, keep_recall), delete_precision, f1(add_precision, add_recall)};
}

}  // namespace

TaskMetric trace_metric_for(const std::string& task_name) {
    for (const char* name : {"C-STANCE", "FOMC", "ScienceQA", "NumGLUE-cm", "NumGLUE-ds"})
        if (task_name == name) return TaskMetric::first_line;
    if (task_name == "MeetingBank") return TaskMetric::rouge_l;
    if (task_name == "Py150") return TaskMetric::edit_similarity;
    if (task_name == "20Minuten") return TaskMetric::sari;
    return TaskMetric::exact_match;
}

const char* metric_name(TaskMetric metric) {
    switch (metric) {
        case TaskMetric::exact_match: return "exact_match";
        case TaskMetric::first_line: return "first_line";
        case TaskMetric::rouge_l: return "rouge_l";
        case TaskMetric::edit_similarity: return "edit_similarity";
        case TaskMetric::sari: return "sari";
    }
    fail("unknown task metric " + std::to_string(int(metric)));
}

double exact_match_score(const std::string& prediction, const std::string& reference) {
    return exact_match(prediction, reference) ? 100 : 0;
}

std::string first_line(const std::string& text) {
    const size_t start = text.find_first_not_of(" \t\r\n\v\f");
    if (start == std::string::npos) return "";
    const size_t end = text.find('\n', start);
    return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

double first_line_accuracy(const std::string& prediction, const std::string& reference) {
    const std::string predicted = first_line(prediction), expected = first_line(reference);
    // an empty answer is never right (TRACE scores "" as 0), not even against an empty reference
    if (normalize_answer(predicted).empty() || normalize_answer(expected).empty()) return 0;
    return exact_match_score(predicted, expected);
}

double rouge_l(const std::string& prediction, const std::string& reference) {
    if (prediction.empty() || reference.empty()) return 0;  // TRACE skips the example
    // TRACE passes the reference as the package's hypothesis and the prediction as its reference (see the header).
    const std::vector<Word> predicted = rouge_sentences(prediction), expected = rouge_sentences(reference);
    if (predicted.empty() || expected.empty()) return 0;  // only periods: the package raises
    WordSet lcs_words;  // U
    for (const Word& predicted_sentence : predicted) {
        const std::vector<Word> x = split_exactly(predicted_sentence, U' ');
        for (const Word& expected_sentence : expected)
            add_lcs_words(x, split_exactly(expected_sentence, U' '), lcs_words);
    }
    const double overlap = double(lcs_words.size());
    const double recall = overlap / double(distinct_words(predicted).size());
    const double precision = overlap / double(distinct_words(expected).size());
    return 100.0 * (2.0 * ((precision * recall) / (precision + recall + 1e-8)));
}

double edit_similarity(const std::string& prediction, const std::string& reference) {
    if (prediction.empty() || reference.empty()) return 0;
    if (prediction == reference) return 100;
    const std::u32string a = decode_utf8(prediction), b = decode_utf8(reference);
    const double length_sum = double(a.size() + b.size());
    const double indel_distance = length_sum - 2.0 * double(lcs_length(a, b));
    return round_half_even(100 * (1.0 - indel_distance / length_sum));
}

double edit_similarity_difflib(const std::string& prediction, const std::string& reference) {
    if (prediction.empty() || reference.empty()) return 0;
    if (prediction == reference) return 100;
    const std::u32string a = decode_utf8(prediction), b = decode_utf8(reference);
    const size_t matches = DifflibMatcher(a, b).matching_characters();
    return round_half_even(100 * (2.0 * double(matches) / double(a.size() + b.size())));
}

std::string py150_restore_literals(const std::string& code) {
    std::u32string text = decode_utf8(code);
    replace_all(text, U"<NUM_LIT>", U"0");
    replace_all(text, U"<STR_LIT>", U"");
    replace_all(text, U"<CHAR_LIT>", U"");
    // re.findall(r"<(STR|NUM|CHAR)_LIT:(.*?)>") on the text as it is now, then each found placeholder replaced
    // everywhere by its value, in the order found.
    std::vector<std::pair<std::u32string, std::u32string>> literals;  // (placeholder, value)
    for (size_t i = 0; i < text.size();) {
        size_t value_start = std::u32string::npos;
        for (const std::u32string prefix : {U"<STR_LIT:", U"<NUM_LIT:", U"<CHAR_LIT:"})
            if (text.compare(i, prefix.size(), prefix) == 0) value_start = i + prefix.size();
        const size_t close = value_start == std::u32string::npos ? value_start : text.find(U'>', value_start);
        if (close == std::u32string::npos) {
            i++;
            continue;
        }
        literals.push_back({text.substr(i, close + 1 - i), text.substr(value_start, close - value_start)});
        i = close + 1;
    }
    for (const auto& [placeholder, value] : literals) replace_all(text, placeholder, value);
    return encode_utf8(text);
}

std::string sari_normalize(const std::string& text) {
    return encode_utf8(tokenize_13a(python_lower(decode_utf8(text))));
}

double sari(const std::string& source, const std::string& prediction, const std::vector<std::string>& references) {
    if (references.empty()) fail("sari: no references");
    const std::vector<std::string> source_tokens = split_exactly(sari_normalize(source), ' ');
    const std::vector<std::string> prediction_tokens = split_exactly(sari_normalize(prediction), ' ');
    std::vector<std::vector<std::string>> reference_tokens;
    for (const std::string& reference : references)
        reference_tokens.push_back(split_exactly(sari_normalize(reference), ' '));

    double keep = 0, deletion = 0, addition = 0;  // summed over n = 1..4, in that order as Python's sum()
    for (size_t n = 1; n <= 4; n++) {
        std::vector<std::vector<std::string>> reference_grams;
        for (const auto& tokens : reference_tokens) reference_grams.push_back(ngrams(tokens, n));
        const SariParts parts = sari_ngram(ngrams(source_tokens, n), ngrams(prediction_tokens, n), reference_grams);
        keep += parts.keep, deletion += parts.deletion, addition += parts.addition;
    }
    return 100 * ((keep / 4 + deletion / 4 + addition / 4) / 3);
}

double score_example(TaskMetric metric, const std::string& source, const std::string& prediction,
                     const std::string& reference) {
    switch (metric) {
        case TaskMetric::exact_match: return exact_match_score(prediction, reference);
        case TaskMetric::first_line: return first_line_accuracy(prediction, reference);
        case TaskMetric::rouge_l: return rouge_l(prediction, reference);
        case TaskMetric::edit_similarity: return edit_similarity(prediction, reference);
        case TaskMetric::sari: return sari(source, prediction, {reference});
    }
    fail("unknown task metric " + std::to_string(int(metric)));
}

double score_task_example(const std::string& task_name, const std::string& source, const std::string& prediction,
                          const std::string& reference) {
    const TaskMetric metric = trace_metric_for(task_name);
    if (task_name == "Py150")
        return score_example(metric, source, py150_restore_literals(prediction), py150_restore_literals(reference));
    return score_example(metric, source, prediction, reference);
}
