#!/usr/bin/env python3
"""The Long Sequence order-4 cells' table (dev/experiments/long_sequence.sh): per method, AA, BWT, FT and the mean
of the diagonal for each evaluation mode that `train cl` wrote (rank and generate on closed-label tasks), with the
accuracy matrices, into RESULTS/tables.md and RESULTS/summary.json. A cell still running (no results.json yet) is
listed with the tasks it has finished (the task records of its metrics.jsonl)."""
import argparse
import json
import os


def finished_tasks(metrics_path):
    """The task records (those with an accuracy row) of a cell's metrics.jsonl."""
    if not os.path.exists(metrics_path):
        return 0
    with open(metrics_path) as f:
        return sum(1 for line in f if line.strip() and "accuracy" in json.loads(line))


def mode_rows(results):
    """(mode, metrics) pairs: each evaluation mode written, else the run's own."""
    modes = results.get("modes") or {results.get("eval", "generate"): results}
    return sorted(modes.items())


def matrix_text(tasks, accuracy):
    header = "| after \\ on | " + " | ".join(t[:8] for t in tasks) + " |"
    lines = [header, "|" + "---|" * (len(tasks) + 1)]
    for i, row in enumerate(accuracy):
        cells = [f"{a:.0f}" for a in row] + [""] * (len(tasks) - len(row))
        lines.append(f"| {tasks[i][:8]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", required=True, help="the cells' folder (train cl --out)")
    parser.add_argument("--results", required=True, help="where tables.md and summary.json go")
    parser.add_argument("--methods", required=True, help='"seqlora replay olora mtl"')
    parser.add_argument("--flags", default="", help="the train cl flags, recorded")
    parser.add_argument("--base", default="", help="the base model, recorded")
    args = parser.parse_args()

    summary = {"order": 4, "flags": args.flags, "base": args.base, "methods": {}}
    table = ["| method | tasks done | eval | AA | BWT | FT | diagonal |", "|---|---|---|---|---|---|---|"]
    matrices = []
    for method in args.methods.split():
        cell = os.path.join(args.work, method, method)  # long_sequence.sh: train cl --out WORK/METHOD
        path = os.path.join(cell, "results.json")
        if not os.path.exists(path):
            done = finished_tasks(os.path.join(cell, "metrics.jsonl"))
            table.append(f"| {method} | {done}/15 (running) | | | | | |")
            summary["methods"][method] = {"tasks_done": done}
            continue
        with open(path) as f:
            results = json.load(f)
        tasks = results["tasks"]
        done = len(results["accuracy"])
        entry = {"tasks_done": done, "tasks": tasks, "modes": {}}
        for mode, m in mode_rows(results):
            table.append(f"| {method} | {done}/{len(tasks)} | {mode} | {m['average_accuracy']:.1f} | "
                         f"{m['backward_transfer']:.1f} | {m['forgetting']:.1f} | {m['diagonal_mean']:.1f} |")
            entry["modes"][mode] = {k: m[k] for k in
                                    ("average_accuracy", "backward_transfer", "forgetting", "diagonal_mean")}
            entry["modes"][mode]["accuracy"] = m["accuracy"]
            matrices.append(f"### {method}, {mode}\n\n{matrix_text(tasks, m['accuracy'])}\n")
        summary["methods"][method] = entry

    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "tables.md"), "w") as f:
        f.write("# Long Sequence, order 4, CPU scale\n\n")
        f.write(f"`train cl {args.flags}` on `{args.base}`; written by dev/experiments/long_sequence_table.py.\n")
        f.write("AA, BWT and FT (forgetting) as in lora/METHODS.md; each task's accuracy in percent.\n\n")
        f.write("\n".join(table) + "\n\n## Accuracy matrices (row: after training that task)\n\n")
        f.write("\n".join(matrices))
    with open(os.path.join(args.results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n".join(table))


if __name__ == "__main__":
    main()
