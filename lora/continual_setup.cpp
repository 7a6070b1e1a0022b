// `train cl`'s set-up (lora/continual_setup.h) and the presets of the data (lora/continual.h).
#include "lora/continual_setup.h"

#include <cstdio>

#include "data/synthetic_tasks.h"
#include "data/task_data.h"
#include "model/checkpoint.h"
#include "model/distributed.h"
#include "model/initialisation.h"

namespace {

EncodedTask encode_task(const Task& task, const TextCodec& codec) {
    EncodedTask encoded;
    encoded.name = task.name;
    encoded.train = encode_examples(task.train, codec);
    encoded.test = encode_examples(task.test, codec);
    for (const TaskExample& e : task.test) {
        encoded.test_prompts.push_back(e.prompt);
        encoded.test_answers.push_back(e.answer);
    }
    encoded.metric = trace_metric_for(task.name);
    if (encoded.train.empty()) fail(task.directory + ": task '" + task.name + "' has no training examples");
    if (encoded.test.empty()) fail(task.directory + ": task '" + task.name + "' has no test examples");
    return encoded;
}

// The run's tasks, as text: the built-in synthetic benchmark, or the order's tasks read from the benchmark (and the
// tokenizer loaded); the codec that encodes them.
std::vector<Task> read_tasks(ContinualSetup& setup, const ContinualOptions& o) {
    std::vector<Task> tasks;
    if (o.order.empty()) {
        SyntheticBenchmarkOptions synthetic;
        synthetic.num_tasks = o.synthetic_tasks;
        synthetic.disjoint_inputs = o.synthetic_disjoint_inputs;
        synthetic.seed = o.seed;
        tasks = synthetic_cl_benchmark(synthetic);
        for (Task& task : tasks) {  // --max-train / --max-test apply to the built-in tasks too
            if (o.max_train > 0 && task.train.size() > o.max_train) task.train.resize(o.max_train);
            if (o.max_test > 0 && task.test.size() > o.max_test) task.test.resize(o.max_test);
        }
        setup.codec = byte_codec();
        return tasks;
    }
    TaskLoadOptions load;
    load.max_train = o.max_train;
    load.max_test = o.max_test;
    load.prefix_task_and_dataset = task_prefix_on(o);
    for (const std::string& dir : task_order(o.benchmark_root, o.order)) {
        tasks.push_back(load_task(dir, load));
        if (tasks.back().train_file != "train.json" && !o.quiet && is_root_rank())
            std::printf("cl: %s trains on its %s: it has no train.json\n", tasks.back().name.c_str(),
                        tasks.back().train_file.c_str());
    }
    setup.tokenizer.load_dir(o.tokenizer_dir.empty() ? "../shared/data/tokenizer/gpt2" : o.tokenizer_dir);
    setup.codec = gpt2_codec(setup.tokenizer);
    return tasks;
}

// Each task's closed label set and the primary evaluation mode.
void find_labels(ContinualSetup& setup, const ContinualOptions& o) {
    setup.all_closed = true;
    for (const EncodedTask& task : setup.tasks) {
        setup.labels.push_back(closed_label_set(task.train));
        std::vector<std::string> texts;
        for (const std::vector<int>& label : setup.labels.back())
            texts.push_back(setup.codec.decode(std::vector<int>(label.begin(), label.end() - 1)));
        setup.label_texts.push_back(texts);
        setup.all_closed = setup.all_closed && !texts.empty();
        setup.any_closed = setup.any_closed || !texts.empty();
    }
    if (o.eval == "rank" && !setup.all_closed)
        for (size_t i = 0; i < setup.tasks.size(); i++)
            if (setup.labels[i].empty())
                fail("cl: --eval rank: task '" + setup.tasks[i].name + "' is not a closed-label task (its training "
                     "answers take more than " + std::to_string(MAX_CLOSED_LABELS) +
                     " distinct values); use --eval generate or auto");
    setup.eval = o.eval == "auto" ? (setup.all_closed ? "rank" : "generate") : o.eval;
}

}  // namespace

bool task_prefix_on(const ContinualOptions& o) {
    if (o.task_prefix != "auto") return o.task_prefix == "on";
    return o.order == "4" || o.order == "5" || o.order == "6";
}

void prepare_setup(ContinualSetup& setup, const ContinualOptions& o) {
    if (!o.order.empty() && o.base_checkpoint.empty()) fail("cl: real tasks need a base model: give --base <checkpoint>");
    const std::vector<Task> tasks = read_tasks(setup, o);
    if (o.base_checkpoint.empty()) {
        setup.config = config_from_spec(o.base_config);
        setup.base_parameters = gpt2_random_parameters(setup.config, o.seed);
    } else {
        Checkpoint checkpoint = read_checkpoint(o.base_checkpoint);
        setup.config = checkpoint.config;
        setup.base_parameters = std::move(checkpoint.parameters);
    }
    if (setup.config.max_seq_len < 2)
        fail("cl: the base model's context of " + std::to_string(setup.config.max_seq_len) +
             " token holds no prompt before an answer (max_seq_len must be >= 2)");
    if (setup.config.vocab_size != setup.codec.vocab_size)
        fail("cl: the base model's vocabulary has " + std::to_string(setup.config.vocab_size) + " tokens, the " +
             setup.codec.name + " tokenizer " + std::to_string(setup.codec.vocab_size));
    for (const Task& task : tasks) setup.tasks.push_back(encode_task(task, setup.codec));
    find_labels(setup, o);
    setup.stops.assign(setup.config.vocab_size, false);
    for (int id = 0; id < setup.config.vocab_size; id++)
        setup.stops[id] = id == setup.codec.eot_token || setup.codec.decode({id}).find('\n') != std::string::npos;
}

ContinualPreset continual_preset(bool synthetic) {
    ContinualPreset preset;
    preset.lora_modules = synthetic ? "all" : "qkv";
    preset.lora_rank = 8;
    preset.epochs = synthetic ? 6 : 3;
    preset.learning_rate = synthetic ? 3e-3f : 1e-3f;
    preset.method = method_presets(synthetic);
    preset.nlora_lambda = preset.method.nlora_lambda;
    preset.amlora_lambda = preset.method.amlora_lambda;
    return preset;
}
