// What `train cl` prints (lora/continual_print.h).
#include "lora/continual_print.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "model/distributed.h"

void print_setup(const ContinualSetup& setup, const ContinualOptions& options, Device device,
                 MatmulPrecision precision) {
    std::printf("cl: %zu tasks (%s), base %d layers x %d channels, vocab %d, LoRA r=%d alpha=%g dropout %g on "
                "%s, %d epochs, lr %g, batch %d, %s (%s)\n",
                setup.tasks.size(), options.order.empty() ? "synthetic" : ("order " + options.order).c_str(),
                setup.config.num_layers, setup.config.channels, setup.config.vocab_size, options.lora.rank,
                options.lora.alpha, options.lora.dropout, lora_modules_string(options.lora.modules).c_str(),
                options.epochs, options.optimizer.learning_rate, options.batch_size, device_name(device),
                precision_name(precision));
    if (distributed().launched)
        std::printf("  data parallel: %d ranks (%s), each step's batch split between them\n",
                    distributed().world_size, distributed().launcher.c_str());
    for (size_t i = 0; i < setup.tasks.size(); i++) {
        const EncodedTask& t = setup.tasks[i];
        const std::string labels = setup.labels[i].empty() ? "open (more than " + std::to_string(MAX_CLOSED_LABELS) +
                                                                 " distinct answers)"
                                                           : std::to_string(setup.labels[i].size()) + " labels";
        std::printf("  %-12s %5zu train %5zu test  %s, scored by %s\n", t.name.c_str(), t.train.size(),
                    t.test.size(), labels.c_str(), metric_name(t.metric));
    }
    if (task_prefix_on(options)) std::printf("  prompts start with \"Task:<TYPE>\\nDataset:<name>\\n\"\n");
    std::printf("  evaluation: %s%s\n", setup.eval.c_str(),
                setup.all_closed   ? " (label ranking and generation computed)"
                : setup.any_closed ? " (label ranking computed on the closed-label tasks too)"
                                   : "");
}

void print_task_boundary(const std::string& method, int t, const ContinualSetup& setup, const MethodResult& result,
                         const AccuracyRows& rows, const Diagnostics& diagnostics, double rank_seconds,
                         double generate_seconds) {
    std::printf("%s after task %d (%s):", method.c_str(), t + 1, setup.tasks[t].name.c_str());
    for (double a : result.accuracy.back()) std::printf(" %.1f", a);
    if (setup.any_closed) {  // the other mode's row
        const bool rank = result.eval == "rank";
        std::printf(" (%s; %s", result.eval.c_str(), rank ? "generate" : "rank");
        for (double a : rank ? rows.generate.back() : rows.rank.back()) {
            if (std::isfinite(a)) std::printf(" %.1f", a);
            else std::printf(" -");  // an open task has no labels to rank
        }
        std::printf(")");
    }
    for (const auto& [key, value] : diagnostics) std::printf(" | %s %.4g", key.c_str(), value);
    std::printf("  (%.1f s", result.seconds_per_task.back());
    if (setup.any_closed) std::printf("; evaluation: rank %.1f s, generate %.1f s", rank_seconds, generate_seconds);
    std::printf(")\n");
    std::fflush(stdout);
}

void print_matrix(const MethodResult& r) {
    const bool exact = std::all_of(r.task_metrics.begin(), r.task_metrics.end(),
                                   [](const std::string& m) { return m == metric_name(TaskMetric::exact_match); });
    std::printf("%s: %s (%%) after each task (rows) on each task (columns)\n", r.method.c_str(),
                r.eval == "rank" ? "label-ranking accuracy" : exact ? "exact match" : "each task's metric");
    if (!exact && r.eval != "rank") {
        std::printf("%-14s", "metric");
        for (const std::string& metric : r.task_metrics) std::printf(" %8.8s", metric.c_str());
        std::printf("\n");
    }
    std::printf("%-14s", "");
    for (const std::string& name : r.task_names) std::printf(" %8.8s", name.c_str());
    std::printf("\n");
    for (size_t j = 0; j < r.accuracy.size(); j++) {
        std::printf("after %-8.8s", r.task_names[j].c_str());
        for (double a : r.accuracy[j]) std::printf(" %8.1f", a);
        std::printf("\n");
    }
    const double total = std::accumulate(r.seconds_per_task.begin(), r.seconds_per_task.end(), 0.0);
    std::printf("%s: AA %.1f  BWT %.1f  FT %.1f  diagonal %.1f  (%.1f s)\n", r.method.c_str(),
                r.metrics.average_accuracy, r.metrics.backward_transfer, r.metrics.forgetting, r.metrics.diagonal_mean,
                total);
    for (const auto& [name, mode] : r.modes)
        if (name != r.eval)
            std::printf("%s (%s): AA %.1f  BWT %.1f  FT %.1f  diagonal %.1f\n", r.method.c_str(), name.c_str(),
                        mode.metrics.average_accuracy, mode.metrics.backward_transfer, mode.metrics.forgetting,
                        mode.metrics.diagonal_mean);
    std::printf("\n");
    std::fflush(stdout);
}

void print_comparison(const std::vector<MethodResult>& results) {
    const bool two = !results.empty() && results[0].modes.size() == 2;
    const std::string other = two ? (results[0].eval == "rank" ? "generate" : "rank") : "";
    if (two)
        std::printf("evaluation: %s (the columns); %s's AA in the last one\n", results[0].eval.c_str(),
                    other.c_str());
    std::printf("%-16s %7s %7s %7s %9s %8s", "method", "AA", "BWT", "FT", "diagonal", "s/task");
    if (two) std::printf(" %11s", ("AA " + other).c_str());
    std::printf("\n");
    for (const MethodResult& r : results) {
        double total = std::accumulate(r.seconds_per_task.begin(), r.seconds_per_task.end(), 0.0);
        std::printf("%-16s %7.1f %7.1f %7.1f %9.1f %8.2f", r.method.c_str(), r.metrics.average_accuracy,
                    r.metrics.backward_transfer, r.metrics.forgetting, r.metrics.diagonal_mean,
                    total / std::max<size_t>(1, r.seconds_per_task.size()));
        if (two && r.modes.count(other)) std::printf(" %11.1f", r.modes.at(other).metrics.average_accuracy);
        std::printf("\n");
    }
}
