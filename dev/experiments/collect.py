#!/usr/bin/env python3
"""Copies a run of dev/experiments/run.sh into the committed results folder and writes its tables and summary.

  collect.py --work out/experiments/cpu --results dev/experiments/results/cpu --seeds "1 2 3" [--command ...] ...

Reads the cells that exist (a study still running, or stopped between sessions, gives partial tables that say so):
  <work>/cl/seed<S>/order<O>/<method>/{results.json, metrics.jsonl}, cl_<method>.log   (train cl, one cell each)
  <work>/single/seed<S>/<task>/seqlora/results.json                                    (the sanity gate)
  <work>/base/metrics.jsonl, <work>/base_before/metrics.jsonl, *_samples.txt, <work>/times/<stage>
and writes to <results>:
  summary.json   {"runs": N, "single_task": {task: [mean, std]},
                  "methods": {method: {"rank": {"AA": [mean, std], "BWT": ..., "FT": ..., "diagonal": ...},
                                       "generate": {...}, "runs": n}}}
                 accuracies in %, mean and sample standard deviation (n - 1) over the finished runs (orders x seeds)
  tables.md      the averaged tables under both evaluation modes, the gate, the diagnostics, every accuracy matrix
  run.json       the command, commit, machine, date, configuration, the stages' wall times
  samples.txt, samples_before.txt   the bases' greedy samples and held-out losses
  seed<S>/order<O>/<method>/results.json, single/seed<S>/<task>/results.json   (accuracy matrices, AA, BWT, FT)
  seed<S>/order<O>/<method>/diagnostics.json   {"task_end_loss": {task: loss}, "diagnostics": {...}}: each task's
                 last logged training loss and the diagnostics after the last task, for the tables
Only what a reader reads is copied: per-step metrics, logs and predictions stay in the work folder (plots.py --work
draws the loss curves from there). A cell, gate run or stage time the work folder lacks (a lost work folder, a
fresh checkout) is read back from the committed copy, so a collect never drops what an earlier one kept.
Python 3 standard library only.
"""
import argparse
import datetime
import glob
import json
import math
import os
import platform
import re
import shutil
import subprocess

METHODS = ["seqlora", "inclora", "replay", "mtl", "ilora", "olora", "nlora", "gainlora-olora", "gainlora-inflora",
           "amlora"]
TASKS = ["dbpedia", "amazon", "yahoo", "agnews"]
CHANCE = {"dbpedia": 100 / 14, "amazon": 100 / 5, "yahoo": 100 / 10, "agnews": 100 / 4}
MODES = ["rank", "generate"]
METRICS = [("AA", "average_accuracy"), ("BWT", "backward_transfer"), ("FT", "forgetting"),
           ("diagonal", "diagonal_mean")]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git(*args):
    try:
        return subprocess.check_output(["git", *args], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def mean_std(values):
    if not values:
        return [None, None]
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return [round(m, 2), round(s, 2)]


def pm(pair):
    return "" if pair[0] is None else f"{pair[0]:.1f} ± {pair[1]:.1f}"


def mode_of(result, mode):
    """The results.json block of one evaluation mode: {"accuracy", "average_accuracy", ...} or None."""
    return result.get("modes", {}).get(mode)


def complete(result):
    return len(result["accuracy"]) == len(result["tasks"])


def copy(src, dst):
    if os.path.exists(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(src, dst)


LOG_LINE = re.compile(r"^(\S+) task (\d+)/(\d+) \((\S+)\) epoch (\d+) step\s+(\d+) \| loss ([0-9.]+)")


def task_end_losses(log):
    """{task index: the last logged training loss of that task} from a train cl log."""
    out = {}
    if os.path.exists(log):
        for line in open(log, errors="replace"):
            m = LOG_LINE.match(line)
            if m:
                out[int(m.group(2))] = float(m.group(7))
    return out


def last_diagnostics(path):
    lines = [json.loads(x) for x in open(path) if x.strip()] if os.path.exists(path) else []
    return lines[-1].get("diagnostics", {}) if lines else {}


def read_json(path):
    """The parsed file, or None when it does not exist."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def keep(src, kept):
    """Copies src (a work folder's results.json) over its committed copy when it exists; returns the committed copy,
    parsed, or None when neither exists: a work folder that lost a file never loses it from the results."""
    copy(src, kept)
    return read_json(kept)


def cell_record(work_cell, committed_cell, method):
    """{"task_end_loss": {task: loss}, "diagnostics": {...}} of one cell: from its train cl log and metrics.jsonl in
    the work folder (and then kept as diagnostics.json beside its committed results.json), else from that kept copy;
    None when neither exists."""
    losses = task_end_losses(os.path.join(work_cell, f"cl_{method}.log"))
    diagnostics = last_diagnostics(os.path.join(work_cell, method, "metrics.jsonl"))
    kept = os.path.join(committed_cell, method, "diagnostics.json")
    if losses or diagnostics:
        record = {"task_end_loss": {str(t): v for t, v in sorted(losses.items())}, "diagnostics": diagnostics}
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        with open(kept, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
        return record
    return read_json(kept)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--seeds", default="1 2 3")
    ap.add_argument("--orders", default="1 2 3")
    ap.add_argument("--command", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--cl-flags", default="")
    ap.add_argument("--pretrain", default="")
    ap.add_argument("--commit", default="", help="the commit the run started from (default: HEAD now)")
    ap.add_argument("--binary", default="./train", help="the train binary the run used")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split()]
    orders = [int(o) for o in a.orders.split()]
    work, out = a.work, a.results
    os.makedirs(out, exist_ok=True)

    # the bases (their per-step metrics stay in the work folder: plots.py --work reads them)
    copy(os.path.join(work, "base_samples.txt"), os.path.join(out, "samples.txt"))
    copy(os.path.join(work, "base_before_samples.txt"), os.path.join(out, "samples_before.txt"))

    # the gate: SeqLoRA on each task alone (label ranking when the task has it, else exact match)
    single = {task: [] for task in TASKS}
    for seed in seeds:
        for task in TASKS:
            result = keep(os.path.join(work, "single", f"seed{seed}", task, "seqlora", "results.json"),
                          os.path.join(out, "single", f"seed{seed}", task, "results.json"))
            if result is None:
                continue
            block = mode_of(result, "rank") or result
            single[task].append(block["accuracy"][0][0])

    # the cells
    cells = {}    # (seed, order, method) -> results.json
    records = {}  # (seed, order, method) -> cell_record
    for seed in seeds:
        for order in orders:
            src = os.path.join(work, "cl", f"seed{seed}", f"order{order}")
            dst = os.path.join(out, f"seed{seed}", f"order{order}")
            for method in METHODS:
                # its metrics and log stay in the work folder (cell_record keeps what the tables read)
                result = keep(os.path.join(src, method, "results.json"), os.path.join(dst, method, "results.json"))
                if result is None:
                    continue
                cells[(seed, order, method)] = result
                records[(seed, order, method)] = cell_record(src, dst, method)

    summary = {"runs": 0, "single_task": {t: mean_std(v) for t, v in single.items()}, "methods": {}}
    for method in METHODS:
        runs = [r for (s, o, m), r in sorted(cells.items()) if m == method and complete(r)]
        if not runs:
            continue
        entry = {"runs": len(runs)}
        for mode in MODES:
            blocks = [mode_of(r, mode) for r in runs]
            if any(b is None for b in blocks):
                continue
            entry[mode] = {name: mean_std([b[key] for b in blocks]) for name, key in METRICS}
        summary["methods"][method] = entry
    counts = {e["runs"] for e in summary["methods"].values()}
    summary["runs"] = max(counts) if counts else 0
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    # tables.md
    lines = [f"# Results: {a.scale} scale (written by dev/experiments/collect.py)\n",
             "Accuracy in %: label ranking (`rank`: the label of highest summed log-probability after the prompt) "
             "and exact match of the greedy answer (`generate`). AA, BWT, FT as METHODS.md section 3; mean ± "
             "sample standard deviation over the finished runs (orders x seeds).\n",
             "## Sanity gate: SeqLoRA trained on each task alone (label ranking)\n",
             "| task | accuracy | chance | runs |", "|---|---:|---:|---:|"]
    for task in TASKS:
        lines.append(f"| {task} | {pm(summary['single_task'][task])} | {CHANCE[task]:.1f} | {len(single[task])} |")
    lines.append("")
    for mode in MODES:
        lines += [f"## All methods, {mode}\n", "| method | AA | BWT | FT | diagonal | runs |",
                  "|---|---:|---:|---:|---:|---:|"]
        for method, entry in summary["methods"].items():
            if mode in entry:
                e = entry[mode]
                lines.append(f"| {method} | {pm(e['AA'])} | {pm(e['BWT'])} | {pm(e['FT'])} | {pm(e['diagonal'])} | "
                             f"{entry['runs']} |")
        lines.append("")
    # training loss at each task's end and the diagnostics after the last task, mean over the runs
    finished = {c: records[c] for c, r in cells.items() if complete(r)}
    keys = sorted({k for rec in finished.values() if rec for k in rec["diagnostics"]})
    lines += ["## Training loss and diagnostics (mean over the runs)\n",
              "The logged training loss (cross-entropy + the method's regularizer) at the end of each task, in the "
              "order's sequence, and the diagnostics after the last task (metrics.jsonl), over the `runs` finished "
              "cells whose record exists.\n",
              "| " + " | ".join(["method", "runs", "loss 1", "2", "3", "4"] + keys) + " |",
              "|---|" + "---:|" * (5 + len(keys))]
    for method in METHODS:
        done = [rec for (s, o, m), rec in sorted(finished.items()) if m == method and rec]
        if not done:
            continue
        row = [str(len(done))]
        for t in range(1, 5):
            v = [rec["task_end_loss"].get(str(t)) for rec in done]
            v = [x for x in v if x is not None]
            row.append(f"{sum(v) / len(v):.2f}" if v else "")
        for k in keys:
            v = [rec["diagnostics"].get(k) for rec in done]
            v = [x for x in v if x is not None]
            row.append(f"{sum(v) / len(v):.3g}" if v else "")
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    missing = [f"seed {s} order {o} {m}" for (s, o, m), rec in sorted(finished.items()) if not rec]
    if missing:
        lines.append(f"\nNo record of these cells' losses and diagnostics (their work folder was lost before "
                     f"collect.py kept one): {', '.join(missing)}.")
    lines.append("")
    lines.append("## Every accuracy matrix (row: after training task j; column: task i; rank / generate)\n")
    for (seed, order, method), r in sorted(cells.items()):
        flag = "" if complete(r) else f" (partial: {len(r['accuracy'])} of {len(r['tasks'])} tasks)"
        lines += [f"**seed {seed}, order {order}, {method}**{flag}\n",
                  "| after \\ on | " + " | ".join(r["tasks"]) + " |", "|---|" + "---:|" * len(r["tasks"])]
        rank, gen = mode_of(r, "rank"), mode_of(r, "generate") or r
        for j in range(len(r["accuracy"])):
            cells_j = []
            for i in range(len(r["tasks"])):
                if i < len(gen["accuracy"][j]):
                    g = gen["accuracy"][j][i]
                    cells_j.append(f"{rank['accuracy'][j][i]:.0f} / {g:.0f}" if rank else f"{g:.0f}")
                else:
                    cells_j.append("")
            lines.append(f"| {r['tasks'][j]} | " + " | ".join(cells_j) + " |")
        lines.append("")
    with open(os.path.join(out, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    # a stage the work folder has no time for keeps the time the last collect recorded
    times = (read_json(os.path.join(out, "run.json")) or {}).get("stage_seconds", {})
    for path in glob.glob(os.path.join(work, "times", "*")):
        times[os.path.basename(path)] = sum(int(x) for x in open(path).read().split())
    run = {
        "command": a.command,
        "commit": a.commit or git("rev-parse", "HEAD"),
        "binary": a.binary,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "system": platform.platform()},
        "stage_seconds": times,
        "scale": a.scale,
        "model_config": a.model,
        "pretrain": a.pretrain,
        "cl_flags": " ".join(a.cl_flags.split()),
        "seeds": seeds,
        "orders": orders,
        "cells_finished": sum(complete(r) for r in cells.values()),
        "cells_planned": len(seeds) * len(orders) * len(METHODS),
    }
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(run, f, indent=2)
    print("\n".join(lines[:lines.index("## Training loss and diagnostics (mean over the runs)\n")]))


if __name__ == "__main__":
    main()
