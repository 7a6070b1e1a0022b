// Task orders resolve to task directories (by number, by name, by directory; TRACE's order), the O-LoRA prefix,
// and the real benchmarks in ../shared/data, whose tests are skipped when it is absent.
#include <algorithm>
#include <map>
#include <set>

#include "data/file_io.h"
#include "data/task_data.h"
#include "test/task_files.h"
#include "test/test_support.h"

using Catch::Contains;

TEST_CASE("task data: task orders resolve by number, by name and by directory") {
    std::string dir = make_temp_dir("task_data");
    std::string root = dir + "/benchmark";
    for (const char* name : {"alpha", "beta", "gamma"}) write_text(root + "/" + name + "/train.json", "[]");
    write_text(dir + "/task_orders.json", R"({
        "_source": "test",
        "small": {"order_1": ["beta", "alpha"], "order_2": ["gamma"]},
        "broken": {"order_3": ["alpha", "missing"], "order_4": "alpha"},
        "notes": ["not an order"]
    })");

    CHECK(task_order(root, "1") == std::vector<std::string>{root + "/beta", root + "/alpha"});
    CHECK(task_order(root, " 2 ") == std::vector<std::string>{root + "/gamma"});
    CHECK(task_order(root, "gamma, alpha") == std::vector<std::string>{root + "/gamma", root + "/alpha"});
    CHECK(task_order(root, root + "/beta,alpha") == std::vector<std::string>{root + "/beta", root + "/alpha"});

    REQUIRE_THROWS_WITH(task_order(root, "7"),
                        Contains("unknown task order \"7\"") && Contains("task_orders.json") && Contains("1, 2, 3, 4"));
    REQUIRE_THROWS_WITH(task_order(root, "3"),
                        Contains("\"missing\" not found under " + root) && Contains("alpha, beta, gamma"));
    REQUIRE_THROWS_WITH(task_order(root, "4"), Contains("order_4 is a string"));
    REQUIRE_THROWS_WITH(task_order(root, "alpha,,beta"), Contains("empty task name"));
    REQUIRE_THROWS_WITH(task_order(root, "delta"), Contains("\"delta\" not found") && Contains("alpha, beta, gamma"));
    REQUIRE_THROWS_WITH(task_order(root, dir + "/nowhere/task"),
                        Contains(dir + "/nowhere/task") && Contains("no such task directory"));
    REQUIRE_THROWS_WITH(task_order(root, ""), Contains("empty task order"));

    // O-LoRA's layout puts tasks one level down, under their type; task_orders.json is found further up.
    std::string olora = dir + "/olora/CL_Benchmark";
    write_text(olora + "/TC/beta/train.json", "[]");
    write_text(olora + "/SC/alpha/train.json", "[]");
    CHECK(task_order(olora, "1") == std::vector<std::string>{olora + "/TC/beta", olora + "/SC/alpha"});
    REQUIRE_THROWS_WITH(task_order(olora, "gamma"), Contains("SC/alpha, TC/beta"));
}

TEST_CASE("task data: every task of orders 1-6 in the shared LLM-CL-Benchmark_500 loads") {
    std::string root = benchmark_500_dir();
    if (root.empty()) SKIP_TEST("../shared/data (the continual-learning benchmark) is absent");

    CHECK(task_order(root, "1") ==
          std::vector<std::string>{root + "/dbpedia", root + "/amazon", root + "/yahoo", root + "/agnews"});
    std::vector<std::string> directories;
    for (int order = 1; order <= 6; order++) {
        std::vector<std::string> tasks = task_order(root, std::to_string(order));
        CHECK(tasks.size() == (order <= 3 ? 4u : 15u));
        directories.insert(directories.end(), tasks.begin(), tasks.end());
    }
    directories = sorted_unique(directories);
    REQUIRE(directories.size() == 15);

    // 500 train / 100 test, except CB (250/56), COPA (400/100) and MNLI, whose test set has two "-" rows.
    const std::map<std::string, std::pair<size_t, size_t>> exceptions = {
        {"CB", {250, 56}}, {"COPA", {400, 100}}, {"MNLI", {500, 98}}};
    for (const std::string& directory : directories) {
        Task task = load_task(directory);
        INFO(describe_task(task));
        auto exception = exceptions.find(task.name);
        size_t train = exception == exceptions.end() ? 500 : exception->second.first;
        size_t test = exception == exceptions.end() ? 100 : exception->second.second;
        CHECK(task.format == TaskFormat::prompt_answer);
        CHECK(task.train.size() == train);
        CHECK(task.test.size() == test);
        CHECK(task.skipped_test == (task.name == "MNLI" ? 2u : 0u));
        CHECK(task.skipped_train == 0);
        CHECK(task.labels.size() >= 2);
        for (const TaskExample& example : task.train) {
            REQUIRE(example.prompt.size() > 8);
            REQUIRE(example.prompt.compare(example.prompt.size() - 8, 8, "\nAnswer:") == 0);
        }
    }
}

TEST_CASE("task data: the O-LoRA prefix goes before an LLM-CL-Benchmark prompt, with O-LoRA's category") {
    const std::string dir = make_temp_dir("task_prefix");
    const char* train = R"([{"prompt": "What is the topic?\nText\nAnswer:", "answer": "World"}])";
    for (const char* name : {"agnews", "SST-2", "COPA", "Py150"}) {
        write_text(dir + "/" + name + "/train.json", train);
        write_text(dir + "/" + name + "/test.json", train);
    }
    TaskLoadOptions prefixed;
    prefixed.prefix_task_and_dataset = true;
    CHECK(load_task(dir + "/agnews", prefixed).train[0].prompt ==
          "Task:TC\nDataset:agnews\nWhat is the topic?\nText\nAnswer:");
    CHECK(load_task(dir + "/SST-2", prefixed).test[0].prompt.rfind("Task:SC\nDataset:SST-2\nWhat", 0) == 0);
    CHECK(load_task(dir + "/COPA", prefixed).train[0].prompt.rfind("Task:COPA\nDataset:COPA\n", 0) == 0);
    CHECK(load_task(dir + "/agnews").train[0].prompt == "What is the topic?\nText\nAnswer:");  // off by default
    REQUIRE_THROWS_WITH(load_task(dir + "/Py150", prefixed), Contains("O-LoRA has no task \"Py150\""));
    CHECK(olora_task_type("MNLI") == "NLI");
    CHECK(olora_task_type("yahoo") == "TC");
    CHECK(olora_task_type("MultiRC") == "MultiRC");
    CHECK(olora_task_type("FOMC") == "");
}

TEST_CASE("task data: a task without train.json trains on its eval.json, and says so") {
    const std::string dir = make_temp_dir("task_eval_split");
    write_text(dir + "/meetings/eval.json", R"([{"prompt": "Summarize:\nA\nAnswer:", "answer": "a"},
                                                {"prompt": "Summarize:\nB\nAnswer:", "answer": "b"}])");
    write_text(dir + "/meetings/test.json", R"([{"prompt": "Summarize:\nC\nAnswer:", "answer": "c"}])");
    const Task task = load_task(dir + "/meetings");
    CHECK(task.train_file == "eval.json");
    CHECK(task.train.size() == 2);
    CHECK(task.train[1].answer == "b");
    CHECK_THAT(describe_task(task), Contains("trained on eval.json (it has no train.json)"));
    write_text(dir + "/nothing/test.json", "[]");  // neither: the train split's file is named as missing
    REQUIRE_THROWS_WITH(load_task(dir + "/nothing"), Contains(dir + "/nothing/train.json"));
}

TEST_CASE("task data: the TRACE order loads its 8 tasks, MeetingBank trained on its eval split") {
    std::string root = benchmark_500_dir();
    if (root.empty()) SKIP_TEST("../shared/data (the continual-learning benchmark) is absent");
    const std::vector<std::string> names = {"C-STANCE",  "FOMC",       "MeetingBank", "Py150",
                                            "ScienceQA", "NumGLUE-cm", "NumGLUE-ds",  "20Minuten"};
    const std::vector<std::string> directories = task_order(root, " trace ");
    REQUIRE(directories.size() == names.size());
    for (size_t i = 0; i < names.size(); i++) {
        CHECK(directories[i] == root + "/" + names[i]);
        const Task task = load_task(directories[i]);
        INFO(describe_task(task));
        CHECK(task.train_file == (names[i] == "MeetingBank" ? "eval.json" : "train.json"));
        CHECK(!task.train.empty());
        CHECK(!task.test.empty());
    }
}

TEST_CASE("task data: the shared O-LoRA files load and rebuild the LLM-CL-Benchmark prompts") {
    std::string data = shared_data_dir();
    if (data.empty()) SKIP_TEST("../shared/data (the continual-learning benchmark) is absent");
    std::string olora = data + "/cl_benchmark/olora/CL_Benchmark";
    std::string bench = benchmark_500_dir();

    // CB: the LLM-CL-Benchmark release holds exactly O-LoRA's CB, so the rebuilt prompts must match one for one.
    Task cb = load_task(olora + "/NLI/CB");
    Task cb_release = load_task(bench + "/CB");
    REQUIRE(cb.train.size() == 250);
    REQUIRE(cb.test.size() == 56);
    for (size_t i = 0; i < cb.train.size(); i++) {
        REQUIRE(cb.train[i].prompt == cb_release.train[i].prompt);
        REQUIRE(cb.train[i].answer == cb_release.train[i].answer);
    }
    for (size_t i = 0; i < cb.test.size(); i++) REQUIRE(cb.test[i].prompt == cb_release.test[i].prompt);

    // COPA: the bare template, identical to the release.
    Task copa = load_task(olora + "/COPA/COPA");
    Task copa_release = load_task(bench + "/COPA");
    REQUIRE(copa.train.size() == 400);
    CHECK(copa.train[0].prompt == copa_release.train[0].prompt);
    CHECK(copa.train[0].prompt.rfind("Which sentence is the cause of", 0) == 0);

    // amazon (full): its sentences end in "\n"; with them stripped the release's prompts are found among ours.
    TaskLoadOptions strip;
    strip.strip_sentence_trailing_newlines = true;
    Task amazon = load_task(olora + "/SC/amazon", strip);
    CHECK(amazon.type == "SC");
    CHECK(amazon.train.size() == 5000);
    CHECK(amazon.test.size() == 7600);
    CHECK(amazon.labels ==
          std::vector<std::string>{"very negative", "negative", "neutral", "positive", "very positive"});
    const std::string amazon_head =
        "What is the sentiment of the following paragraph? Choose one from the option.\n"
        "Option: very negative, negative, neutral, positive, very positive \nTitle: ";
    CHECK(amazon.train[0].prompt.compare(0, amazon_head.size(), amazon_head) == 0);
    CHECK(amazon.train[0].answer == "negative");
    std::set<std::string> amazon_prompts;
    for (const TaskExample& example : amazon.test) amazon_prompts.insert(example.prompt);
    Task amazon_release = load_task(bench + "/amazon");
    for (const TaskExample& example : amazon_release.test) CHECK(amazon_prompts.count(example.prompt) == 1);
    // Without the option the prompt keeps O-LoRA's blank line before "Answer:".
    TaskLoadOptions first_only;
    first_only.max_train = 1;
    first_only.max_test = 1;
    Task amazon_upstream = load_task(olora + "/SC/amazon", first_only);
    const std::string& upstream_prompt = amazon_upstream.train[0].prompt;
    CHECK(upstream_prompt.compare(upstream_prompt.size() - 9, 9, "\n\nAnswer:") == 0);

    // MNLI's full test set: 131 unlabelled rows skipped.
    Task mnli = load_task(olora + "/NLI/MNLI");
    CHECK(mnli.skipped_test == 131);
    CHECK(mnli.test.size() == 7600 - 131);
    CHECK(mnli.train.size() == 3000);
}
