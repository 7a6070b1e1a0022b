// Continual-learning task files: both formats (LLM-CL-Benchmark {"prompt","answer"} and O-LoRA
// {"label","sentence"} + labels.json + instruction config) parse exactly, unlabelled "-" rows are skipped, and
// malformed files fail naming the file and the record. Task orders and the real benchmark: test_task_orders.cpp.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "data/file_io.h"
#include "data/task_data.h"
#include "test/task_files.h"
#include "test/test_support.h"

using Catch::Contains;


TEST_CASE("task data: reads the LLM-CL-Benchmark prompt/answer format with unicode and escapes") {
    std::string dir = make_temp_dir("task_data") + "/bench/qa";
    // Raw UTF-8 (naïve, 日本語), \u escapes (é, a surrogate pair for U+1F600), escaped quote, backslash, tab and
    // newline.
    write_text(dir + "/train.json", R"([
        {"prompt": "Caf\u00e9 na\u00efve \"quoted\" back\\slash\ttab\nnaïve 日本語 \ud83d\ude00\nAnswer:",
         "answer": "yes"},
        {"answer": "no", "prompt": "Second\nAnswer:", "extra": 7}
    ])");
    write_text(dir + "/test.json", R"([{"prompt": "Test\nAnswer:", "answer": "no"}])");
    write_text(dir + "/labels.json", R"(["yes", "no"])");

    Task task = load_task(dir);
    CHECK(task.name == "qa");
    CHECK(task.format == TaskFormat::prompt_answer);
    CHECK(task.type.empty());
    REQUIRE(task.train.size() == 2);
    CHECK(task.train[0].prompt ==
          "Caf\xC3\xA9 na\xC3\xAFve \"quoted\" back\\slash\ttab\nna\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E "
          "\xF0\x9F\x98\x80\nAnswer:");
    CHECK(task.train[0].answer == "yes");
    CHECK(task.train[1].prompt == "Second\nAnswer:");
    CHECK(task.train[1].answer == "no");
    REQUIRE(task.test.size() == 1);
    CHECK(task.test[0].prompt == "Test\nAnswer:");
    CHECK(task.labels == std::vector<std::string>{"yes", "no"});
    CHECK(task.skipped_train == 0);
    CHECK(task.skipped_test == 0);
    CHECK(describe_task(task) == "qa (LLM-CL-Benchmark): 2 train, 1 test, 2 labels");

    // labels.json is optional in this format (the TRACE tasks have none); answers are then free text.
    std::remove((dir + "/labels.json").c_str());
    write_text(dir + "/test.json", R"([{"prompt": "Test\nAnswer:", "answer": "free text answer"}])");
    Task unlabelled = load_task(dir);
    CHECK(unlabelled.labels.empty());
    CHECK(unlabelled.test[0].answer == "free text answer");
}

TEST_CASE("task data: builds O-LoRA prompts from the labels and the instruction config") {
    std::string dir = make_temp_dir("task_data");
    const std::string train = R"([
        {"label": "Sports", "sentence": "Title: Caf\u00e9 \"wins\"\nText: 日本語 team wins.\n"},
        {"sentence": "Title: Rocket\nText: launch", "label": "Science or Technology"}
    ])";
    const std::string test = R"([{"label": "World", "sentence": "Title: Summit\nText: leaders meet"}])";
    std::string task_dir =
        write_olora_task(dir, "TC", "news", R"(["World", "Sports", "Science or Technology"])", train, test);
    const std::string instruction = "What is the topic of the following paragraph? Choose one from the option.\n";
    const std::string options_line = "Option: World, Sports, Science or Technology \n";

    Task task = load_task(task_dir);
    CHECK(task.name == "news");
    CHECK(task.type == "TC");
    CHECK(task.format == TaskFormat::olora);
    CHECK(task.labels == std::vector<std::string>{"World", "Sports", "Science or Technology"});
    REQUIRE(task.train.size() == 2);
    // The sentence is kept as it is, trailing newline included, as O-LoRA does.
    CHECK(task.train[0].prompt ==
          instruction + options_line +
              "Title: Caf\xC3\xA9 \"wins\"\nText: \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E team wins.\n"
              "\nAnswer:");
    CHECK(task.train[0].answer == "Sports");
    CHECK(task.train[1].prompt == instruction + options_line + "Title: Rocket\nText: launch\nAnswer:");
    CHECK(task.train[1].answer == "Science or Technology");
    REQUIRE(task.test.size() == 1);
    CHECK(task.test[0].prompt == instruction + options_line + "Title: Summit\nText: leaders meet\nAnswer:");
    CHECK(describe_task(task) == "news (O-LoRA TC): 2 train, 1 test, 3 labels");

    TaskLoadOptions options;
    options.prefix_task_and_dataset = true;
    options.strip_sentence_trailing_newlines = true;
    Task prefixed = load_task(task_dir, options);
    CHECK(prefixed.train[0].prompt ==
          "Task:TC\nDataset:news\n" + instruction + options_line +
              "Title: Caf\xC3\xA9 \"wins\"\nText: \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E team wins.\nAnswer:");

    // A task outside an olora tree takes its config from the options; the type is still the parent's name.
    std::string elsewhere = dir + "/elsewhere/NLI/pairs";
    write_text(elsewhere + "/labels.json", R"(["entailment", "neutral"])");
    write_text(elsewhere + "/train.json", R"([{"label": "neutral", "sentence": "sentence 1: a\nsentence 2: b"}])");
    write_text(elsewhere + "/test.json", "[]");
    REQUIRE_THROWS_WITH(load_task(elsewhere), Contains(elsewhere) && Contains("instruction_config.json"));
    TaskLoadOptions explicit_config;
    explicit_config.instruction_config = dir + "/olora/configs/instruction_config.json";
    Task pairs = load_task(elsewhere, explicit_config);
    CHECK(pairs.train[0].prompt ==
          "What is the logical relationship? Choose one from the option.\n"
          "Option: entailment, neutral \nsentence 1: a\nsentence 2: b\nAnswer:");
    CHECK(pairs.test.empty());
}

TEST_CASE("task data: COPA, which has no instruction, gets the bare O-LoRA template") {
    std::string dir = make_temp_dir("task_data");
    const std::string sentence =
        "Which sentence is the cause of \"The host cancelled the party.\"? Choose one between "
        "A and B.\nA: She was certain she had the flu.\nB: She worried she would catch the flu.";
    std::string task_dir = write_olora_task(
        dir, "COPA", "COPA", R"(["A", "B"])",
        R"([{"label": "A", "sentence": "Which sentence is the cause of \"The host cancelled the party.\"? )"
        R"(Choose one between A and B.\nA: She was certain she had the flu.\n)"
        R"(B: She worried she would catch the flu."}])",
        R"([{"label": "B", "sentence": "x"}])");
    Task task = load_task(task_dir);
    CHECK(task.type == "COPA");
    CHECK(task.train[0].prompt == sentence + "\nAnswer:");
    CHECK(task.train[0].answer == "A");
    CHECK(task.test[0].prompt == "x\nAnswer:");

    TaskLoadOptions options;
    options.prefix_task_and_dataset = true;
    CHECK(load_task(task_dir, options).test[0].prompt == "Task:COPA\nDataset:COPA\nx\nAnswer:");

    // Any other type missing from the config is an error that lists the types the config has.
    std::string unknown =
        write_olora_task(dir, "XYZ", "mystery", R"(["A"])", R"([{"label": "A", "sentence": "s"}])", "[]");
    REQUIRE_THROWS_WITH(load_task(unknown), Contains("instruction_config.json") && Contains("\"XYZ\"") &&
                                                Contains("TC") && Contains("NLI"));
}

TEST_CASE("task data: MNLI-style unlabelled '-' rows are skipped and counted") {
    std::string dir = make_temp_dir("task_data");
    std::string olora = write_olora_task(
        dir, "NLI", "MNLI", R"(["neutral", "entailment", "contradiction"])",
        R"([{"label": "neutral", "sentence": "a"}, {"label": "-", "sentence": "b"},
            {"label": "entailment", "sentence": "c"}])",
        R"([{"label": "-", "sentence": "d"}, {"label": "-", "sentence": "e"},
            {"label": "contradiction", "sentence": "f"}])");
    Task task = load_task(olora);
    REQUIRE(task.train.size() == 2);
    CHECK(task.train[1].answer == "entailment");
    REQUIRE(task.test.size() == 1);
    CHECK(task.test[0].answer == "contradiction");
    CHECK(task.skipped_train == 1);
    CHECK(task.skipped_test == 2);
    CHECK(describe_task(task) ==
          "MNLI (O-LoRA NLI): 2 train, 1 test, 3 labels, "
          "skipped 1 unlabelled train rows, skipped 2 unlabelled test rows");

    TaskLoadOptions keep;
    keep.skip_unlabelled = false;
    Task kept = load_task(olora, keep);
    CHECK(kept.train.size() == 3);
    CHECK(kept.test.size() == 3);
    CHECK(kept.test[0].answer == "-");
    CHECK(kept.skipped_test == 0);

    // The same in the LLM-CL-Benchmark format (its MNLI test has two "-" answers).
    std::string bench = dir + "/bench/MNLI";
    write_text(bench + "/labels.json", R"(["neutral", "entailment"])");
    write_text(bench + "/train.json", R"([{"prompt": "p\nAnswer:", "answer": "neutral"}])");
    write_text(bench + "/test.json",
               R"([{"prompt": "q\nAnswer:", "answer": "-"}, {"prompt": "r", "answer": "entailment"}])");
    Task benchmark = load_task(bench);
    CHECK(benchmark.skipped_test == 1);
    REQUIRE(benchmark.test.size() == 1);
    CHECK(benchmark.test[0].prompt == "r");

    // A train set of only unlabelled rows is empty.
    write_text(bench + "/train.json", R"([{"prompt": "p", "answer": "-"}])");
    REQUIRE_THROWS_WITH(load_task(bench), Contains(bench + "/train.json") && Contains("empty train set"));
}

TEST_CASE("task data: max_train and max_test keep the first labelled examples") {
    std::string dir = make_temp_dir("task_data") + "/bench/counting";
    std::string train = "[", test = "[";
    for (int i = 0; i < 10; i++) {
        train += std::string(i ? "," : "") + R"({"prompt": "train )" + std::to_string(i) + R"(", "answer": ")" +
                 (i == 1 ? "-" : "a") + R"("})";
        test += std::string(i ? "," : "") + R"({"prompt": "test )" + std::to_string(i) + R"(", "answer": "b"})";
    }
    write_text(dir + "/train.json", train + "]");
    write_text(dir + "/test.json", test + "]");

    TaskLoadOptions options;
    options.max_train = 3;
    options.max_test = 4;
    Task task = load_task(dir, options);
    REQUIRE(task.train.size() == 3);
    CHECK(task.train[0].prompt == "train 0");
    CHECK(task.train[1].prompt == "train 2");  // row 1 is unlabelled
    CHECK(task.train[2].prompt == "train 3");
    REQUIRE(task.test.size() == 4);
    CHECK(task.test[3].prompt == "test 3");
    CHECK(task.skipped_train == 1);  // counted over the whole file

    options.max_train = 0;
    options.max_test = 100;
    Task all = load_task(dir, options);
    CHECK(all.train.size() == 9);
    CHECK(all.test.size() == 10);
}

TEST_CASE("task data: malformed task files fail naming the file and the record") {
    std::string dir = make_temp_dir("task_data");
    const std::string good_train = R"([{"prompt": "p", "answer": "a"}])";
    const std::string good_test = R"([{"prompt": "q", "answer": "a"}])";

    struct Case {
        const char* name;
        std::string train, test;       // "" = leave the file out
        std::string bad_file;          // the file the message must name
        std::string part, other_part;  // and these pieces of the message ("" matches anything)
    };
    std::vector<Case> cases = {
        {"missing_train", "", good_test, "train.json", "missing file", ""},
        {"missing_test", good_train, "", "test.json", "missing file", ""},
        {"truncated_json", R"([{"prompt": "p", "answer": )", good_test, "train.json", "malformed JSON", "parse error"},
        {"bad_test_json", good_train, "[{\"prompt\": \"q\" \"answer\": \"a\"}]", "test.json", "malformed JSON", ""},
        {"not_a_list", R"({"prompt": "p", "answer": "a"})", good_test, "train.json", "expected a JSON list", "object"},
        {"empty_train", "[]", good_test, "train.json", "empty train set", ""},
        {"record_not_object", good_train, R"([{"prompt": "q", "answer": "a"}, {"prompt": "r", "answer": "a"}, "text"])",
         "test.json", "record 2", "is a string, expected an object"},
        {"first_record_not_object", R"([42])", good_test, "train.json", "record 0", "is a number"},
        {"missing_prompt", R"([{"prompt": "p", "answer": "a"}, {"answer": "a"}])", good_test, "train.json", "record 1",
         "missing \"prompt\""},
        {"answer_not_string", good_train, R"([{"prompt": "q", "answer": 3}])", "test.json", "record 0",
         "\"answer\" is a number, expected a string"},
        {"answer_null", R"([{"prompt": "p", "answer": "a"}, {"prompt": "p", "answer": null}])", good_test, "train.json",
         "record 1", "\"answer\" is a null"},
        {"neither_format", R"([{"text": "p"}])", good_test, "train.json", "record 0", "neither"},
        {"invalid_utf8", "[{\"prompt\": \"\xff\", \"answer\": \"a\"}]", good_test, "train.json", "malformed JSON", ""},
        // a number beyond double's range: nlohmann::json throws out_of_range, not parse_error
        {"number_out_of_range", R"([{"prompt": "p", "answer": 1e999999}])", good_test, "train.json", "malformed JSON",
         "number overflow"},
        {"negative_out_of_range", good_train, R"([{"prompt": "q", "answer": -1e999999}])", "test.json",
         "malformed JSON", ""},
    };
    for (const Case& c : cases) {
        SECTION(c.name) {
            std::string task_dir = dir + "/" + c.name;
            std::filesystem::create_directories(task_dir);
            if (!c.train.empty()) write_text(task_dir + "/train.json", c.train);
            if (!c.test.empty()) write_text(task_dir + "/test.json", c.test);
            REQUIRE_THROWS_WITH(load_task(task_dir),
                                Contains(task_dir + "/" + c.bad_file) && Contains(c.part) && Contains(c.other_part));
        }
    }

    SECTION("a task directory name that is not UTF-8 (it goes into JSON files) fails at load, escaped") {
        const std::string task_dir = dir + "/caf\xE9";
        write_text(task_dir + "/train.json", good_train);
        write_text(task_dir + "/test.json", good_test);
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains("task directory name is not valid UTF-8") &&
                                                     Contains("caf\\xE9") && !Contains("caf\xE9"));
    }
    SECTION("file text in an error message is escaped") {
        const std::string task_dir = dir + "/escaped";
        write_text(task_dir + "/train.json", good_train);
        write_text(task_dir + "/test.json", R"([{"prompt": "q", "answer": "\u001b[2J"}])");
        write_text(task_dir + "/labels.json", R"(["a"])");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/test.json: record 0") &&
                                                     Contains("\"\\x1B[2J\" is not one of the labels") &&
                                                     !Contains("\x1B"));
    }
    SECTION("missing_directory") {
        REQUIRE_THROWS_WITH(load_task(dir + "/nowhere"),
                            Contains(dir + "/nowhere") && Contains("no such task directory"));
    }
    SECTION("answer_not_a_label") {
        std::string task_dir = dir + "/unknown_answer";
        write_text(task_dir + "/labels.json", R"(["a", "b"])");
        write_text(task_dir + "/train.json", good_train);
        write_text(task_dir + "/test.json", R"([{"prompt": "q", "answer": "a"}, {"prompt": "q", "answer": "c"}])");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/test.json") && Contains("record 1") &&
                                                     Contains("\"c\" is not one of the labels") && Contains("a, b"));
    }
    SECTION("labels_not_strings") {
        std::string task_dir = dir + "/bad_labels";
        write_text(task_dir + "/labels.json", R"(["a", 2])");
        write_text(task_dir + "/train.json", good_train);
        write_text(task_dir + "/test.json", good_test);
        REQUIRE_THROWS_WITH(load_task(task_dir),
                            Contains(task_dir + "/labels.json") && Contains("label 1") && Contains("is a number"));
    }

    // O-LoRA records: "label" and "sentence" must be strings; labels.json is required.
    const std::string labels = R"(["x", "y"])";
    SECTION("olora_missing_sentence") {
        std::string task_dir =
            write_olora_task(dir, "TC", "t1", labels, R"([{"label": "x", "sentence": "s"}, {"label": "y"}])", "[]");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/train.json") && Contains("record 1") &&
                                                     Contains("missing \"sentence\""));
    }
    SECTION("olora_label_not_string") {
        std::string task_dir =
            write_olora_task(dir, "TC", "t2", labels, R"([{"label": "x", "sentence": "s"}])",
                             R"([{"label": "x", "sentence": "s"}, {"label": ["x"], "sentence": "s"}])");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/test.json") && Contains("record 1") &&
                                                     Contains("\"label\" is an array"));
    }
    SECTION("olora_missing_label") {
        std::string task_dir = write_olora_task(dir, "TC", "t3", labels, R"([{"sentence": "s"}])", "[]");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/train.json") && Contains("record 0") &&
                                                     Contains("missing \"label\""));
    }
    SECTION("olora_sentence_not_string") {
        std::string task_dir =
            write_olora_task(dir, "TC", "t4", labels, R"([{"label": "x", "sentence": {"a": 1}}])", "[]");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/train.json") && Contains("record 0") &&
                                                     Contains("\"sentence\" is an object"));
    }
    SECTION("olora_labels_missing") {
        std::string task_dir = write_olora_task(dir, "TC", "t5", labels, R"([{"label": "x", "sentence": "s"}])", "[]");
        std::remove((task_dir + "/labels.json").c_str());
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains(task_dir + "/labels.json") && Contains("missing file"));
    }
    SECTION("olora_malformed_instruction_config") {
        std::string task_dir = write_olora_task(dir, "TC", "t6", labels, R"([{"label": "x", "sentence": "s"}])", "[]");
        write_text(dir + "/olora/configs/instruction_config.json", R"({"TC": [{"instruction": 5}]})");
        REQUIRE_THROWS_WITH(load_task(task_dir), Contains("instruction_config.json") && Contains("\"TC\" entry 0"));
    }
}
