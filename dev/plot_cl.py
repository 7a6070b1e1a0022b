#!/usr/bin/env python3
"""SVG plots of one `train cl` run folder, from its files alone (Python 3 standard library only):

  python3 dev/plot_cl.py out/cl                 # the folder given to train cl --out

reads, for each method folder <run>/<method>/ that has them:
  results.json     the accuracy matrix (both evaluation modes where the run has both) and AA, BWT, FT
  metrics.jsonl    the training records: every --log-every steps, the mean loss since the last record ("loss", the
                   cross-entropy on the answer tokens plus the method's own terms) and those terms ("method_loss")
writes into <run>/plots/:
  accuracy.svg     each method's accuracy matrix: after task j (row), on task i (column), in % (label ranking where
                   the run has it, else exact match of greedy generation)
  loss.svg         each method's training loss over the task sequence (x: task index + progress within the task)
and prints where they are.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "experiments"))
from plots import COLORS, Svg, axes, heat_color, read_jsonl  # noqa: E402  (the study's SVG helpers)


def method_folders(run):
    """(method, folder) of each method the run holds, in comparison.json's order when there is one."""
    names = sorted(d for d in os.listdir(run) if os.path.isfile(os.path.join(run, d, "results.json")))
    comparison = os.path.join(run, "comparison.json")
    if os.path.exists(comparison):
        order = [r["method"] for r in json.load(open(comparison)) if r.get("method") in names]
        names = order + [n for n in names if n not in order]
    return [(n, os.path.join(run, n)) for n in names]


def shown_mode(result):
    """The matrix and metrics to draw: label ranking where the run has it, else generation."""
    modes = result.get("modes", {})
    for mode in ("rank", "generate"):
        if mode in modes:
            return mode, dict(result, **modes[mode])
    return result.get("eval", "generate"), result


def plot_accuracy(methods, out):
    cell, gap = 34, 30
    results = [(m, *shown_mode(json.load(open(os.path.join(f, "results.json"))))) for m, f in methods]
    T = max(len(r["tasks"]) for _, _, r in results)
    panel_w, panel_h = T * cell + 100, T * cell + 70
    cols = min(len(results), 4)
    svg = Svg(cols * panel_w + 20, ((len(results) + cols - 1) // cols) * panel_h + 50 + gap)
    svg.text(svg.w / 2, 22, "accuracy (%) after task j (row) on task i (column)", 14, "middle", weight="bold")
    for k, (method, mode, r) in enumerate(results):
        px, py = 20 + (k % cols) * panel_w + 70, 50 + gap + (k // cols) * panel_h
        svg.text(px + T * cell / 2, py - 22, f"{method} ({mode})", 11, "middle", weight="bold")
        svg.text(px + T * cell / 2, py - 8, f"AA {r['average_accuracy']:.1f}  BWT {r['backward_transfer']:.1f}  "
                 f"FT {r['forgetting']:.1f}", 10, "middle")
        for i, name in enumerate(r["tasks"]):
            svg.text(px - 4, py + i * cell + cell / 2 + 4, name[:8], 9, "end")
            svg.text(px + i * cell + cell / 2, py + T * cell + 12, name[:7], 9, "middle")
        for j, row in enumerate(r["accuracy"]):
            for i, v in enumerate(row):
                x, y = px + i * cell, py + j * cell
                if v is None:
                    continue
                svg.rect(x, y, cell - 1, cell - 1, heat_color(v))
                svg.text(x + cell / 2, y + cell / 2 + 4, f"{v:.0f}", 10, "middle", "#fff" if v > 55 else "#000")
    path = os.path.join(out, "accuracy.svg")
    svg.save(path)
    return path


def plot_loss(methods, out):
    series = {}
    for method, folder in methods:
        steps = [r for r in read_jsonl(os.path.join(folder, "metrics.jsonl")) if "step" in r and "loss" in r]
        last = {}
        for r in steps:
            last[r["task"]] = max(last.get(r["task"], 0), r["step"])
        if steps:
            series[method] = [(r["task"] - 1 + r["step"] / last[r["task"]], r["loss"]) for r in steps]
    if not series:
        return None
    tasks = max(int(x - 1e-9) + 1 for s in series.values() for x, _ in s)
    top = max(y for s in series.values() for _, y in s) * 1.05
    svg = Svg(820, 460)
    fx, fy = axes(svg, 70, 40, 560, 340, 0, tasks, 0, top, "task (training progress within each task)",
                  "training loss (mean since the last record)", "train cl: training loss per method")
    for t in range(1, tasks):
        svg.line(fx(t), 40, fx(t), 380, "#999", 1, "4,3")
    for k, (method, points) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        svg.polyline([(fx(x), fy(y)) for x, y in points], color, 1.5)
        svg.line(645, 50 + 18 * k, 665, 50 + 18 * k, color, 2.5)
        svg.text(670, 54 + 18 * k, method, 11)
    path = os.path.join(out, "loss.svg")
    svg.save(path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a train cl output folder (its --out)")
    args = ap.parse_args()
    methods = method_folders(args.run) if os.path.isdir(args.run) else []
    if not methods:
        sys.exit(f"error: {args.run}: no <method>/results.json inside; is it a train cl --out folder?")
    out = os.path.join(args.run, "plots")
    os.makedirs(out, exist_ok=True)
    for path in (plot_accuracy(methods, out), plot_loss(methods, out)):
        if path:
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
