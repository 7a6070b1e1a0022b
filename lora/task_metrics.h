// The per-task metrics of the TRACE benchmark (BeyonderXX/TRACE, "TRACE: A Comprehensive Benchmark for Continual
// Learning in Large Language Models"), one function per metric, each scoring ONE example in [0, 100]. Pure
// functions over UTF-8 strings (Python str semantics: code points; an invalid byte reads as U+FFFD).
//
// Which task gets which metric (TRACE: inference/infer_single.py picks evaluations/eval_<task>.py, whose helpers
// are in metrics.py):
//   C-STANCE, FOMC, NumGLUE-cm, NumGLUE-ds, ScienceQA -> first_line   MeetingBank -> rouge_l
//   Py150 -> edit_similarity (after py150_restore_literals)           20Minuten -> sari
//   every other task (the O-LoRA / LLM-CL benchmark tasks)            -> exact_match (lora/metrics.h)
//
// The task score is, for every metric here, the mean of the per-example scores over ALL test examples: TRACE's
// metrics.py sums the scores of the examples it keeps and divides by the number of predictions, and skips an
// example whose prediction or reference is "" (so it counts 0; the functions below return 0 for it). For SARI the
// Hugging Face metric TRACE calls is itself the mean of sentence-level SARI (no corpus-level statistics).
//
// Definitions (p = prediction, r = reference, s = source):
//
// first_line(p, r) = 100 * [ exact_match(L(p), L(r)) ], L(t) = the first line of t after leading whitespace,
//   0 when either line is empty after normalisation. exact_match is lora/metrics.h's (lower-case, no ASCII punctuation, whitespace
//   runs collapsed). TRACE's caculate_accuracy (metrics.py) compares the whole strings exactly, and for ScienceQA
//   (evaluations/eval_ScienceQA.py) only their first characters (the option letter before "\n<explanation>");
//   here both use the normalised first line, which is the letter for ScienceQA's "B\n..." answers. So " B" or
//   "b" count as right here and wrong in TRACE, and "B. the Bible" counts wrong here and right in TRACE.
//
// rouge_l(p, r): ROUGE-L F as TRACE's score_rouge (metrics.py) gets it from the `rouge` package 1.0.1 (pinned in
//   TRACE's requirements.txt; NOT Google's rouge-score), called as Rouge(["rouge-l"]).get_scores(r, p): the
//   reference is the package's "hypothesis" and the prediction its "reference". That package's summary-level
//   ROUGE-L with its default exclusive=True works on SETS of words:
//     sentences(t) = the pieces of t between '.', empty pieces dropped, whitespace runs in a piece joined by one
//                    space and the ends trimmed (a piece of only whitespace stays, as the empty word "");
//     words = sentence.split(' '); case-sensitive, no stemming, punctuation other than '.' stays on the words;
//     U = the set of words that occur in LCS(x, y) for x a sentence of p and y a sentence of r, where LCS is the
//         one common subsequence found by walking the DP table back from the end (match -> diagonal; else up if
//         table[i-1][j] > table[i][j-1]; else left), x indexing the rows;
//     P = |U| / |distinct words of r|,  R = |U| / |distinct words of p|,  F = 2 P R / (P + R + 1e-8).
//   rouge_l = 100 F (so identical texts give 100 (1 - 5e-9), not exactly 100). A text with no sentence ("...")
//   makes the package raise; here it scores 0.
//
// edit_similarity(p, r) = fuzzywuzzy's fuzz.ratio(p, r) as TRACE's caculate_fuzz (metrics.py) calls it, with
//   python-Levenshtein installed (fuzzywuzzy then uses Levenshtein.ratio, the normalised InDel similarity):
//     100 if p == r; 0 if either is empty; else round(100 (1 - d / (|p| + |r|))), d = |p| + |r| - 2 LCS(p, r)
//   over code points, d = the edit distance with insertions and deletions only; round() is Python's, half to
//   even, so the per-example score is an integer. TRACE's requirements.txt does not list python-Levenshtein;
//   without it fuzzywuzzy falls back to difflib, which edit_similarity_difflib gives. Before scoring, TRACE's
//   eval_Py150.py rewrites the literal placeholders of both strings (py150_restore_literals).
//
// sari(s, p, refs): Hugging Face's SARI (datasets' metrics/sari/sari.py, the same code as evaluate's
//   metrics/sari/sari.py), which TRACE's caculate_sari (metrics.py) loads with datasets.load_metric("sari")
//   and calls with sources = the records' prompts (the instruction and the text), references = [[answer]]:
//     every text is normalised: Python str.lower(), then sacrebleu's 13a tokeniser (sari_normalize);
//     tokens = text.split(' '); for n = 1..4, with S, C, R the n-gram multisets of s, p and the references
//     (S and C multiplied by k = the number of references, R summed over the references), & = min, - = clipped:
//       KEEP: Kc = S & C, Kg = Kc & R, Ka = S & R;
//             P_keep = mean over g in Kc of Kg(g) / Kc(g)  (1 if Kc is empty),
//             R_keep = sum Kg / sum Ka (1 if Ka is empty), F_keep = 2 P R / (P + R) (0 if both are 0);
//       DEL:  Dc = S - C, Dg = Dc - R;  P_del = mean over g in Dc of Dg(g) / Dc(g)  (1 if Dc is empty);
//       ADD (sets): A = C \ S, Ag = A n R, Aa = R \ S; P_add = |Ag| / |A| (1 if A is empty),
//             R_add = |Ag| / |Aa| (1 if Aa is empty), F_add = 2 P R / (P + R) (0 if both are 0);
//     sari = 100 * (mean_n F_keep + mean_n P_del + mean_n F_add) / 3.
//   Python's str.lower() is followed for ASCII, Latin-1, Latin Extended-A, U+1E9E and basic Cyrillic; other
//   letters (Greek, Armenian, ...) are left as they are.
#pragma once
#include <string>
#include <vector>

enum class TaskMetric { exact_match, first_line, rouge_l, edit_similarity, sari };

// The metric TRACE scores a task by, from the task directory's name ("C-STANCE", "FOMC", "ScienceQA",
// "NumGLUE-cm", "NumGLUE-ds", "MeetingBank", "Py150", "20Minuten"); exact_match for every other name.
TaskMetric trace_metric_for(const std::string& task_name);
// "exact_match", "first_line", "rouge_l", "edit_similarity", "sari".
const char* metric_name(TaskMetric metric);

// 100 * exact_match(prediction, reference) of lora/metrics.h.
double exact_match_score(const std::string& prediction, const std::string& reference);

// The first line of text after its leading whitespace, without the line break ("" for blank text).
std::string first_line(const std::string& text);
double first_line_accuracy(const std::string& prediction, const std::string& reference);

double rouge_l(const std::string& prediction, const std::string& reference);

double edit_similarity(const std::string& prediction, const std::string& reference);
// fuzz.ratio without python-Levenshtein: round(100 * 2 M / (|p| + |r|)), M = the characters in the matching
// blocks of difflib.SequenceMatcher(None, p, r) (longest match first, then recursively left and right of it; with
// |r| >= 200 the characters that occur more than |r| / 100 + 1 times in r are left out of the search for the
// longest match, which may still extend over them).
double edit_similarity_difflib(const std::string& prediction, const std::string& reference);

// TRACE's Py150 post-processing: "<NUM_LIT>" -> "0", "<STR_LIT>" and "<CHAR_LIT>" -> "", and each
// "<STR_LIT:v>", "<NUM_LIT:v>", "<CHAR_LIT:v>" (v up to the first '>') -> v.
std::string py150_restore_literals(const std::string& code);

// SARI's normalisation of one text: lower-cased and tokenised by sacrebleu's 13a, tokens joined by one space.
std::string sari_normalize(const std::string& text);
double sari(const std::string& source, const std::string& prediction, const std::vector<std::string>& references);

// One example's score by the given metric; source is used by sari only (TRACE's single reference).
double score_example(TaskMetric metric, const std::string& source, const std::string& prediction,
                     const std::string& reference);
// One example of a task as TRACE scores it: trace_metric_for(task_name), with Py150's literals restored first.
double score_task_example(const std::string& task_name, const std::string& source, const std::string& prediction,
                          const std::string& reference);
