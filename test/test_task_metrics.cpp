// The TRACE per-task metrics (lora/task_metrics.h): hand-computed cases, edge cases, and agreement with the Python
// packages TRACE uses on the committed fixture test/fixtures/task_metrics.json (dev/task_metrics_reference.py).
#include "lora/task_metrics.h"

#include <string>
#include <vector>

#include "lora/metrics.h"
#include "test/json_files.h"
#include "test/test_support.h"

namespace {
const char* const fixture_path = "test/fixtures/task_metrics.json";
constexpr double tolerance = 1e-6;  // on the 0-100 scale
}  // namespace

TEST_CASE("task metrics: each TRACE task is scored by its own metric, every other task by exact match") {
    for (const char* task : {"C-STANCE", "FOMC", "ScienceQA", "NumGLUE-cm", "NumGLUE-ds"})
        CHECK(trace_metric_for(task) == TaskMetric::first_line);
    CHECK(trace_metric_for("MeetingBank") == TaskMetric::rouge_l);
    CHECK(trace_metric_for("Py150") == TaskMetric::edit_similarity);
    CHECK(trace_metric_for("20Minuten") == TaskMetric::sari);
    for (const char* task : {"dbpedia", "amazon", "yahoo", "agnews", "BoolQA", "", "meetingbank", "py150"})
        CHECK(trace_metric_for(task) == TaskMetric::exact_match);

    CHECK(std::string(metric_name(TaskMetric::exact_match)) == "exact_match");
    CHECK(std::string(metric_name(TaskMetric::first_line)) == "first_line");
    CHECK(std::string(metric_name(TaskMetric::rouge_l)) == "rouge_l");
    CHECK(std::string(metric_name(TaskMetric::edit_similarity)) == "edit_similarity");
    CHECK(std::string(metric_name(TaskMetric::sari)) == "sari");
}

TEST_CASE("task metrics: exact match is the project's exact_match, in percent") {
    for (auto [prediction, reference] : std::vector<std::pair<std::string, std::string>>{
             {"Positive.", " positive"}, {"Sci/Tech", "scitech"}, {"negative", "positive"}, {"", "..."}, {"", "a"}})
        CHECK(exact_match_score(prediction, reference) == (exact_match(prediction, reference) ? 100 : 0));
    CHECK(score_example(TaskMetric::exact_match, "", "World", "world") == 100);
}

TEST_CASE("task metrics: first-line accuracy compares the normalised first lines") {
    CHECK(first_line("B\nA clause is a group of words.") == "B");
    CHECK(first_line("  \n\t B \r\nmore") == "B \r");
    CHECK(first_line(" \n ") == "");
    CHECK(first_line("") == "");

    // ScienceQA: the letter, then the explanation; only the letter counts
    CHECK(first_line_accuracy("B\nBecause the Bible says so.", "B\nAn allusion is a brief mention.") == 100);
    CHECK(first_line_accuracy("A\nAn allusion is a brief mention.", "B\nAn allusion is a brief mention.") == 0);
    CHECK(first_line_accuracy("\n b.", "B\n...") == 100);          // leading whitespace, case, punctuation
    CHECK(first_line_accuracy("B. the Bible", "B\nexplanation") == 0);  // the whole line must match
    // C-STANCE / FOMC letters, NumGLUE numbers and words
    CHECK(first_line_accuracy("B", "B") == 100);
    CHECK(first_line_accuracy("C", "A") == 0);
    CHECK(first_line_accuracy("13.5\nThe bus stops 13.5 minutes.", "13.5") == 100);
    CHECK(first_line_accuracy("6 frogs", "6") == 0);
    CHECK(first_line_accuracy("Friday", "friday") == 100);
    // an empty answer is never right, not even against an empty reference
    CHECK(first_line_accuracy("", "B") == 0);
    CHECK(first_line_accuracy("B", "") == 0);
    CHECK(first_line_accuracy("\n\n", "\n") == 0);
    CHECK(first_line_accuracy("...", "!") == 0);
    CHECK(score_example(TaskMetric::first_line, "", "A\nx", "A\ny") == 100);
}

TEST_CASE("task metrics: ROUGE-L on hand-computed cases") {
    // F = 2 P R / (P + R + 1e-8), P = |U| / |distinct reference words|, R = |U| / |distinct prediction words|,
    // U = the set of words in the sentence-pair LCSs.
    // "the cat sat on the mat" / "the cat is on the mat": 5 distinct words each; LCS "the cat on the mat",
    // U = {the, cat, on, mat}: P = R = 4/5, F = 0.8.
    CHECK(rouge_l("the cat sat on the mat", "the cat is on the mat") == Approx(80).margin(tolerance));
    // Two sentences each: prediction {A B C D}, {E F}; reference {A C}, {B D F G}; LCSs "A C", "B D", "", "F":
    // U = {A, B, C, D, F}, 6 distinct words each: P = R = 5/6.
    CHECK(rouge_l("A B C D. E F.", "A C. B D F G.") == Approx(500.0 / 6).margin(tolerance));
    // Repeated words: the LCS "the the the" has length 3 but U = {the}; distinct words 2 (prediction) and 3:
    // R = 1/2, P = 1/3, F = 2 (1/6) / (5/6) = 0.4.
    CHECK(rouge_l("the the the cat", "the cat the dog the") == Approx(40).margin(tolerance));
    // Case-sensitive: "The Council approved the budget" has 5 distinct words, the reference 4; LCS "approved the
    // budget": U has 3 words, R = 3/5, P = 3/4, F = 2/3.
    CHECK(rouge_l("The Council approved the budget.", "the council approved the budget") ==
          Approx(200.0 / 3).margin(tolerance));
    // German: "Über" != "über"; LCS "die Straße", 5 distinct words each: P = R = 2/5.
    CHECK(rouge_l("Über die Straße gehen Fußgänger.", "Fußgänger gehen über die Straße.") ==
          Approx(40).margin(tolerance));
    // Whitespace runs collapse; a piece of only whitespace between periods is the empty word "": prediction
    // words {x, "", y} (3), reference {y, x} (2), U = {x, y}: R = 2/3, P = 1, F = 0.8.
    CHECK(rouge_l("x. . y", "y x") == Approx(80).margin(tolerance));
    CHECK(rouge_l("a b  c\td\n e", "a  b c d e") == Approx(100).margin(tolerance));
}

TEST_CASE("task metrics: ROUGE-L edge cases") {
    CHECK(rouge_l("identical text", "identical text") == Approx(100).margin(tolerance));  // 100 (1 - 5e-9)
    CHECK(rouge_l("identical text", "identical text") < 100);
    CHECK(rouge_l("", "a reference") == 0);
    CHECK(rouge_l("a prediction", "") == 0);
    CHECK(rouge_l("", "") == 0);
    CHECK(rouge_l("...", "a reference") == 0);  // no sentence at all
    CHECK(rouge_l("no overlap at all", "completely different words") == 0);
    CHECK(score_example(TaskMetric::rouge_l, "", "the cat sat on the mat", "the cat is on the mat") ==
          rouge_l("the cat sat on the mat", "the cat is on the mat"));
}

TEST_CASE("task metrics: edit similarity on hand-computed cases") {
    // round(100 (1 - d / (|p| + |r|))), d = |p| + |r| - 2 LCS, over code points
    CHECK(edit_similarity("kitten", "sitting") == 62);  // LCS "ittn" = 4: d = 13 - 8 = 5, 1 - 5/13 = 0.615
    CHECK(edit_similarity("abcd", "abcdefgh") == 67);   // 8/12
    CHECK(edit_similarity("x", "xxx") == 50);           // 2/4
    CHECK(edit_similarity("a", "abbbbbbbbbbbbbb") == 12);  // 2/16 = 0.125: 12.5 rounds half to even
    // 1 - 74/80 is 0.07499999999999996 in doubles, so 7, not 8
    CHECK(edit_similarity("abc", "a" + std::string(37, 'z') + "b" + std::string(37, 'z') + "c") == 7);
    // code points, not bytes: G r e _ a u s _ Z r i c h = 13 of 16 + 19 = 35: d = 9, 1 - 9/35 = 0.743
    CHECK(edit_similarity("Grüße aus Zürich", "Gruesse aus Zuerich") == 74);
    CHECK(edit_similarity("xabcabc", "abcxabc") == 86);  // LCS "abcabc" = 6: 12/14
    CHECK(edit_similarity("same", "same") == 100);
    CHECK(edit_similarity("", "reference") == 0);
    CHECK(edit_similarity("prediction", "") == 0);
    CHECK(edit_similarity("", "") == 0);  // TRACE skips the example
    CHECK(edit_similarity("abc", "xyz") == 0);

    // difflib: the longest block first ("xabc" = 4), then nothing fits on either side: 2 * 4 / 14 = 0.571
    CHECK(edit_similarity_difflib("xabcabc", "abcxabc") == 57);
    CHECK(edit_similarity_difflib("kitten", "sitting") == 62);  // blocks "itt", "n": 2 * 4 / 13
    // 2 * 3 / 80 is 0.075 exactly enough that 100 times it is 7.5: half to even gives 8
    CHECK(edit_similarity_difflib("abc", "a" + std::string(37, 'z') + "b" + std::string(37, 'z') + "c") == 8);
    CHECK(edit_similarity_difflib("same", "same") == 100);
    CHECK(edit_similarity_difflib("", "x") == 0);
}

TEST_CASE("task metrics: Py150 literals are restored before the edit similarity") {
    CHECK(py150_restore_literals("x = <NUM_LIT> + <NUM_LIT:3>") == "x = 0 + 3");
    CHECK(py150_restore_literals("f ( '<STR_LIT>' , <CHAR_LIT> )") == "f ( '' ,  )");
    CHECK(py150_restore_literals("s = '<STR_LIT:a<b>' + '<STR_LIT:open") == "s = 'a<b' + '<STR_LIT:open");
    CHECK(py150_restore_literals("p = \"<STR_LIT:é/ü>\"") == "p = \"é/ü\"");
    CHECK(score_task_example("Py150", "", "return <NUM_LIT:200>", "return 200") == 100);
    CHECK(score_task_example("Py150", "", "kitten", "sitting") == 62);
    CHECK(score_example(TaskMetric::edit_similarity, "", "return <NUM_LIT:200>", "return 200") < 100);
}

TEST_CASE("task metrics: SARI on hand-computed cases") {
    // source "a b c", prediction "a b", reference "a c" (k = 1):
    //   1-grams S {a b c}, C {a b}, R {a c}: keep Kc {a b}, Kg {a}, Ka {a c}: P 1/2, R 1/2, F 1/2;
    //            delete Dc {c}, Dg {}: P 0; add A {}, Aa {}: F 1
    //   2-grams S {ab bc}, C {ab}, R {ac}: keep Kc {ab}, Kg {}, Ka {}: P 0, R 1, F 0; delete Dc {bc}, Dg {bc}: 1;
    //            add A {}, Aa {ac}: P 1, R 0, F 0
    //   3-grams S {abc}, C {}, R {}: keep 1, delete 1, add 1;   4-grams: all empty, 1 each
    //   keep (1/2 + 0 + 1 + 1) / 4 = 0.625, delete (0 + 1 + 1 + 1) / 4 = 0.75, add (1 + 0 + 1 + 1) / 4 = 0.75
    CHECK(sari("a b c", "a b", {"a c"}) == Approx(100 * (0.625 + 0.75 + 0.75) / 3).margin(tolerance));
    // the perfect edit "a b" -> "a c": every part is 1 (the empty n-gram sets count 1)
    CHECK(sari("a b", "a c", {"a c"}) == Approx(100).margin(tolerance));
    // an empty prediction is the single empty token "":
    //   1-grams: keep Kc {}, Ka {a c}: P 1, R 0, F 0; delete Dc {a b c}, Dg {b}: 1/3; add A {""}, Ag {}: P 0, F 0
    //   2-grams: keep 1; delete Dc {ab bc} = Dg: 1; add A {}, Aa {ac}: F 0;   3- and 4-grams: 1 each
    //   keep 3/4, delete (1/3 + 3) / 4 = 5/6, add 2/4
    CHECK(sari("a b c", "", {"a c"}) == Approx(100 * (0.75 + 5.0 / 6 + 0.5) / 3).margin(tolerance));
    // lower case and 13a tokens first: "Die Polizei." == "die polizei ."
    CHECK(sari("Die Polizei.", "die polizei .", {"DIE POLIZEI ."}) == Approx(100).margin(tolerance));
    CHECK(sari_normalize("ÄRGER über GRÖSSE: 3,5% (e.g.)") == "ärger über grösse : 3,5 % ( e . g . )");
    CHECK(sari_normalize("") == "");
    CHECK(score_example(TaskMetric::sari, "a b c", "a b", "a c") == sari("a b c", "a b", {"a c"}));
    CHECK_THROWS_WITH(sari("a", "a", {}), Catch::Contains("no references"));
}

TEST_CASE("task metrics: agree with TRACE's Python packages on the fixture") {
    const nlohmann::json fixture = read_json(fixture_path);
    INFO("generated with " << fixture["versions"].dump());
    for (const auto& c : fixture["rouge_l"]) {
        INFO("rouge_l(" << c["prediction"].dump() << ", " << c["reference"].dump() << ")");
        CHECK(rouge_l(c["prediction"], c["reference"]) == Approx(c["score"].get<double>()).margin(tolerance));
    }
    for (const auto& c : fixture["edit_similarity"]) {
        INFO("edit_similarity(" << c["prediction"].dump() << ", " << c["reference"].dump() << ")");
        CHECK(edit_similarity(c["prediction"], c["reference"]) == c["score"].get<double>());
    }
    for (const auto& c : fixture["edit_similarity_difflib"]) {
        INFO("edit_similarity_difflib(" << c["prediction"].dump() << ", " << c["reference"].dump() << ")");
        CHECK(edit_similarity_difflib(c["prediction"], c["reference"]) == c["score"].get<double>());
    }
    for (const auto& c : fixture["py150_restore_literals"])
        CHECK(py150_restore_literals(c["code"]) == c["restored"].get<std::string>());
    for (const auto& c : fixture["sari_normalize"])
        CHECK(sari_normalize(c["text"]) == c["normalized"].get<std::string>());
    for (const auto& c : fixture["sari"]) {
        INFO("sari(" << c["source"].dump() << ", " << c["prediction"].dump() << ", " << c["references"].dump() << ")");
        CHECK(sari(c["source"], c["prediction"], c["references"].get<std::vector<std::string>>()) ==
              Approx(c["score"].get<double>()).margin(tolerance));
    }
    CHECK(fixture["rouge_l"].size() >= 10);
    CHECK(fixture["sari"].size() >= 5);
}
