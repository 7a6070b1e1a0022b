#!/usr/bin/env python3
"""Copies a run of dev/experiments/run.sh into the committed results folder and writes its tables.

  collect.py --work out/experiments/cpu --results dev/experiments/results/cpu [--command ...] [--seconds N] ...

results/<scale>/
  run.json                     the command, commit, machine, date, configuration, wall time
  tables.md                    per order: AA / BWT / FT / diagonal per method, and each accuracy matrix;
                               the table averaged over the orders
  averaged.json                the averaged table
  base/metrics.jsonl           pretraining: loss per step, val loss
  base/pretrain_tail.log       the last lines of the pretraining log
  samples.txt                  continuations by the base
  order<N>/comparison.json     from train cl
  order<N>/<method>/results.json, metrics.jsonl   from train cl
  order<N>/cl.log              the train cl log (loss lines, the printed matrices and the comparison)
Python 3 standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess

METHODS = ["seqlora", "inclora", "replay", "mtl", "ilora", "olora", "nlora", "gainlora-olora", "gainlora-inflora",
           "amlora"]


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


def tail(path, lines):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def load_results(work, order):
    out = {}
    for method in METHODS:
        path = os.path.join(work, "cl", f"order{order}", method, "results.json")
        if os.path.exists(path):
            out[method] = json.load(open(path))
    return out


def complete(result):
    return len(result["accuracy"]) == len(result["tasks"])


def fmt(x):
    return f"{x:6.1f}"


LOG_LINE = re.compile(r"^(\S+) task (\d+)/(\d+) \((\S+)\) epoch (\d+) step\s+(\d+) \| loss ([0-9.]+)")


def task_end_losses(work, order):
    """method -> {task: the last logged training loss of that task} from the train cl log."""
    out = {}
    path = os.path.join(work, "cl", f"order{order}", "cl.log")
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            m = LOG_LINE.match(line)
            if m:
                out.setdefault(m.group(1), {})[int(m.group(2))] = float(m.group(7))
    return out


def diagnostics_table(work, orders, per_order):
    """Training loss at the end of each task and the diagonostics after the last task, mean over the orders."""
    rows = []
    keys = ["orthogonality_A", "update_cosine", "collision_1e-2", "collision_1e-1"]
    losses = {o: task_end_losses(work, o) for o in orders}
    lines = ["## Training loss and diagnostics, mean over the orders\n",
             "Answer-token loss (nats) at the end of each task's training (the last logged value; tasks in the "
             "order's sequence), and the diagnostics written after the last task (metrics.jsonl; blank: the "
             "method has none).\n",
             "| method | loss task 1 | task 2 | task 3 | task 4 | " + " | ".join(keys) + " |",
             "|---|" + "---:|" * (4 + len(keys))]
    for method in METHODS:
        have = [o for o in orders if method in losses[o]]
        if not have:
            continue
        cells = []
        for t in range(1, 5):
            v = [losses[o][method][t] for o in have if t in losses[o][method]]
            cells.append(f"{sum(v) / len(v):.2f}" if v else "")
        for k in keys:
            v = []
            for o in orders:
                mpath = os.path.join(work, "cl", f"order{o}", method, "metrics.jsonl")
                if os.path.exists(mpath):
                    last = [json.loads(x) for x in open(mpath) if x.strip()]
                    if last and k in last[-1].get("diagnostics", {}):
                        v.append(last[-1]["diagnostics"][k])
            cells.append(f"{sum(v) / len(v):.3g}" if v else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--orders", default="1,2,3")
    ap.add_argument("--command", default="")
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--model", default="")
    ap.add_argument("--cl-flags", default="")
    ap.add_argument("--pretrain", default="")
    ap.add_argument("--commit", default="", help="the commit the run started from (default: HEAD now)")
    ap.add_argument("--binary", default="./train", help="the train binary the run used")
    a = ap.parse_args()
    orders = [int(o) for o in a.orders.split(",")]
    os.makedirs(a.results, exist_ok=True)

    # the base: pretraining metrics, log tail, samples
    base_out = os.path.join(a.results, "base")
    os.makedirs(base_out, exist_ok=True)
    for name in ["metrics.jsonl"]:
        src = os.path.join(a.work, "base", name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(base_out, name))
    with open(os.path.join(base_out, "pretrain_tail.log"), "w") as f:
        f.write(tail(os.path.join(a.work, "base", "pretrain.log"), 40))
    if os.path.exists(os.path.join(a.work, "samples.txt")):
        shutil.copy(os.path.join(a.work, "samples.txt"), os.path.join(a.results, "samples.txt"))

    # the cl runs
    per_order = {}
    for order in orders:
        src = os.path.join(a.work, "cl", f"order{order}")
        dst = os.path.join(a.results, f"order{order}")
        os.makedirs(dst, exist_ok=True)
        if os.path.exists(os.path.join(src, "comparison.json")):
            shutil.copy(os.path.join(src, "comparison.json"), os.path.join(dst, "comparison.json"))
        if os.path.exists(os.path.join(src, "cl.log")):
            shutil.copy(os.path.join(src, "cl.log"), os.path.join(dst, "cl.log"))
        per_order[order] = load_results(a.work, order)
        for method in per_order[order]:
            os.makedirs(os.path.join(dst, method), exist_ok=True)
            for name in ["results.json", "metrics.jsonl", "predictions.jsonl"]:
                if os.path.exists(os.path.join(src, method, name)):
                    shutil.copy(os.path.join(src, method, name), os.path.join(dst, method, name))

    lines = [f"# Results: {a.scale} scale\n"]
    lines.append("Accuracy is exact match (%) of the greedy answer; AA, BWT, FT as METHODS.md section 3. "
                 "Written by dev/experiments/collect.py.\n")
    averaged = {}
    lines.append("## Averaged over orders " + ", ".join(map(str, orders)) + "\n")
    lines.append("| method | AA | BWT | FT | diagonal | orders |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for method in METHODS:
        runs = [per_order[o][method] for o in orders if method in per_order[o] and complete(per_order[o][method])]
        if not runs:
            continue
        mean = lambda key: sum(r[key] for r in runs) / len(runs)
        averaged[method] = {k: mean(k) for k in ["average_accuracy", "backward_transfer", "forgetting",
                                                 "diagonal_mean"]}
        averaged[method]["orders"] = len(runs)
        m = averaged[method]
        lines.append(f"| {method} | {m['average_accuracy']:.1f} | {m['backward_transfer']:.1f} | "
                     f"{m['forgetting']:.1f} | {m['diagonal_mean']:.1f} | {len(runs)} |")
    lines.append("")
    lines.extend(diagnostics_table(a.work, orders, per_order))
    for order in orders:
        res = per_order[order]
        if not res:
            continue
        tasks = next(iter(res.values()))["tasks"]
        lines.append(f"## Order {order}: " + " → ".join(tasks) + "\n")
        lines.append("| method | AA | BWT | FT | diagonal | s/task |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for method in METHODS:
            if method not in res:
                continue
            r = res[method]
            secs = r["seconds_per_task"]
            flag = "" if complete(r) else f" (partial: {len(r['accuracy'])} of {len(r['tasks'])} tasks)"
            lines.append(f"| {method}{flag} | {r['average_accuracy']:.1f} | {r['backward_transfer']:.1f} | "
                         f"{r['forgetting']:.1f} | {r['diagonal_mean']:.1f} | {sum(secs) / max(1, len(secs)):.0f} |")
        lines.append("")
        lines.append("Accuracy matrices (row: after training task j; column: task i):\n")
        for method in METHODS:
            if method not in res:
                continue
            r = res[method]
            lines.append(f"**{method}**\n")
            lines.append("| after \\ on | " + " | ".join(r["tasks"]) + " |")
            lines.append("|---|" + "---:|" * len(r["tasks"]))
            for j, row in enumerate(r["accuracy"]):
                cells = [f"{x:.1f}" for x in row] + [""] * (len(r["tasks"]) - len(row))
                lines.append(f"| {r['tasks'][j]} | " + " | ".join(cells) + " |")
            lines.append("")
    with open(os.path.join(a.results, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.results, "averaged.json"), "w") as f:
        json.dump(averaged, f, indent=2)

    run = {
        "command": a.command,
        "commit": a.commit or git("rev-parse", "HEAD"),
        "binary": a.binary,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "uncommitted_changes_at_collect": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "system": platform.platform(),
                    "load_average_at_collect": os.getloadavg()},
        "wall_seconds": a.seconds,
        "scale": a.scale,
        "model_config": a.model,
        "pretrain": a.pretrain,
        "cl_flags": " ".join(a.cl_flags.split()),
        "orders": orders,
        "complete": all(m in per_order[o] and complete(per_order[o][m]) for o in orders for m in METHODS),
    }
    with open(os.path.join(a.results, "run.json"), "w") as f:
        json.dump(run, f, indent=2)
    print(open(os.path.join(a.results, "tables.md")).read().split("## Order")[0])


if __name__ == "__main__":
    main()
