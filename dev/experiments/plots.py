#!/usr/bin/env python3
"""SVG plots of a results folder written by dev/experiments/collect.py (Python 3 standard library only).

  plots.py --results dev/experiments/results/cpu [--work out/experiments/cpu]

The per-step sources (pretraining's metrics.jsonl, train cl's logs) stay in the run's work folder, outside the
source tree; without --work (or where it lacks them) those two plots are left as they are.

writes into <results>/plots/:
  base_loss.svg            pretraining: train loss per step and validation loss
  aa_bwt.svg               AA and BWT per method, averaged over the orders (dots: each order)
  heatmaps_order<N>.svg    each method's accuracy matrix (rows: after task j; columns: task i)
  cl_loss_order<N>.svg     each method's training loss over the task sequence (from each run's metrics.jsonl)
"""
import argparse
import glob
import json
import os
import re

METHODS = ["seqlora", "inclora", "replay", "mtl", "ilora", "olora", "nlora", "gainlora-olora", "gainlora-inflora",
           "amlora"]
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
FONT = 'font-family="Helvetica,Arial,sans-serif"'


class Svg:
    def __init__(self, width, height):
        self.w, self.h, self.items = width, height, []

    def add(self, s):
        self.items.append(s)

    def text(self, x, y, s, size=12, anchor="start", color="#000", rotate=None, weight="normal"):
        s = str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        rot = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" '
                 f'font-weight="{weight}" {FONT}{rot}>{s}</text>')

    def line(self, x1, y1, x2, y2, color="#000", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
                 f'stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, fill, stroke="none"):
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}" '
                 f'stroke="{stroke}"/>')

    def polyline(self, points, color, width=1.5, opacity=1.0):
        if len(points) < 2:
            return
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.add(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}" '
                 f'stroke-opacity="{opacity}"/>')

    def circle(self, x, y, r, fill):
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"/>')

    def save(self, path):
        with open(path, "w") as f:
            f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
                    f'viewBox="0 0 {self.w} {self.h}">\n<rect width="100%" height="100%" fill="white"/>\n')
            f.write("\n".join(self.items))
            f.write("\n</svg>\n")


def nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 10 ** -len(str(int(1 / raw)))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = step * int(lo / step)
    ticks, t = [], start
    while t <= hi + 1e-9:
        if t >= lo - 1e-9:
            ticks.append(round(t, 10))
        t += step
    return ticks


def axes(svg, x0, y0, w, h, xlo, xhi, ylo, yhi, xlabel="", ylabel="", title=""):
    """Frame, ticks and labels; returns the data -> pixel mapping."""
    fx = lambda x: x0 + (x - xlo) / (xhi - xlo or 1) * w
    fy = lambda y: y0 + h - (y - ylo) / (yhi - ylo or 1) * h
    svg.rect(x0, y0, w, h, "none", "#444")
    for t in nice_ticks(ylo, yhi):
        svg.line(x0, fy(t), x0 + w, fy(t), "#ddd")
        svg.text(x0 - 5, fy(t) + 4, f"{t:g}", 10, "end")
    for t in nice_ticks(xlo, xhi):
        svg.line(fx(t), y0 + h, fx(t), y0 + h + 4, "#444")
        svg.text(fx(t), y0 + h + 16, f"{t:g}", 10, "middle")
    if xlabel:
        svg.text(x0 + w / 2, y0 + h + 32, xlabel, 11, "middle")
    if ylabel:
        svg.text(x0 - 38, y0 + h / 2, ylabel, 11, "middle", rotate=-90)
    if title:
        svg.text(x0 + w / 2, y0 - 8, title, 13, "middle", weight="bold")
    return fx, fy


def read_jsonl(path):
    out = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def plot_base(work, out):
    rows = read_jsonl(os.path.join(work, "base", "metrics.jsonl"))
    # a resumed stage appends the steps after its checkpoint again: the last value of a step is the run's
    train = sorted({r["step"]: r["loss"] for r in rows if "loss" in r}.items())
    val = sorted({r["step"]: r["val_loss"] for r in rows if "val_loss" in r}.items())
    if not train:
        return
    svg = Svg(720, 420)
    ys = [y for _, y in train + val]
    fx, fy = axes(svg, 70, 40, 600, 320, 0, max(s for s, _ in train), min(ys) * 0.95, max(ys) * 1.02, "step",
                  "loss (nats per token)", "base model: pretraining loss (books + task prompts; validation: held-out books)")
    svg.polyline([(fx(s), fy(y)) for s, y in train], "#1f77b4", 1, 0.6)
    svg.polyline([(fx(s), fy(y)) for s, y in val], "#d62728", 2)
    for s, y in val:
        svg.circle(fx(s), fy(y), 2.5, "#d62728")
    svg.line(480, 60, 500, 60, "#1f77b4", 2)
    svg.text(505, 64, "train (per step)", 11)
    svg.line(480, 78, 500, 78, "#d62728", 2)
    svg.text(505, 82, f"validation (last {val[-1][1]:.3f})" if val else "validation", 11)
    before = sorted({r["step"]: r["val_loss"] for r in
                     read_jsonl(os.path.join(work, "base_before", "metrics.jsonl")) if "val_loss" in r}.items())
    if before:
        svg.polyline([(fx(s), fy(max(min(y, max(ys) * 1.02), min(ys) * 0.95))) for s, y in before], "#7f7f7f", 2)
        svg.line(480, 96, 500, 96, "#7f7f7f", 2)
        svg.text(505, 100, f"previous recipe's base, validation (last {before[-1][1]:.3f})", 11)
    svg.save(os.path.join(out, "base_loss.svg"))


MODE = "rank"  # the evaluation mode the plots show where a run has it (else exact match of generation)
SEED = 1       # the seed whose cells the per-order plots show


def primary(result):
    """The run's results in MODE when it has it: the same keys as results.json's top level."""
    block = result.get("modes", {}).get(MODE)
    return dict(result, **block) if block else result


def load_order(results, order, seed=SEED):
    res = {}
    for m in METHODS:
        p = os.path.join(results, f"seed{seed}", f"order{order}", m, "results.json")
        if os.path.exists(p):
            res[m] = primary(json.load(open(p)))
    return res


def heat_color(v):
    """0 -> white, 100 -> dark blue."""
    t = max(0.0, min(1.0, v / 100.0))
    r, g, b = (int(255 + (c - 255) * t) for c in (8, 48, 107))
    return f"rgb({r},{g},{b})"


def plot_heatmaps(results, order, out):
    res = load_order(results, order)
    if not res:
        return
    cols, cell = 5, 34
    n = len(res)
    rows_n = (n + cols - 1) // cols
    panel_w, panel_h = 4 * cell + 90, 4 * cell + 70
    svg = Svg(cols * panel_w + 20, rows_n * panel_h + 50)
    tasks = next(iter(res.values()))["tasks"]
    svg.text(svg.w / 2, 22, f"Order {order} ({' → '.join(tasks)}), seed {SEED}: accuracy (%, label ranking) after "
             "task j (row) on task i (column)", 14, "middle", weight="bold")
    for k, m in enumerate(m for m in METHODS if m in res):
        r = res[m]
        T = len(r["tasks"])
        px, py = 20 + (k % cols) * panel_w + 70, 50 + (k // cols) * panel_h + 20
        svg.text(px + T * cell / 2, py - 6,
                 f"{m}  AA {r['average_accuracy']:.1f}" if len(r["accuracy"]) == T else f"{m} (partial)", 11,
                 "middle", weight="bold")
        for i, name in enumerate(r["tasks"]):
            svg.text(px - 4, py + i * cell + cell / 2 + 4, name[:7], 9, "end")
            svg.text(px + i * cell + cell / 2, py + T * cell + 12, name[:7], 9, "middle")
        for j in range(T):
            for i in range(T):
                x, y = px + i * cell, py + j * cell
                if j < len(r["accuracy"]) and i < len(r["accuracy"][j]):
                    v = r["accuracy"][j][i]
                    svg.rect(x, y, cell - 1, cell - 1, heat_color(v))
                    svg.text(x + cell / 2, y + cell / 2 + 4, f"{v:.0f}", 10, "middle", "#fff" if v > 55 else "#000")
                else:
                    svg.rect(x, y, cell - 1, cell - 1, "#f4f4f4")
    svg.save(os.path.join(out, f"heatmaps_order{order}.svg"))


def plot_aa_bwt(results, orders, seeds, out):
    """AA and BWT per method: the mean over every finished run (bars), its standard deviation (whiskers) and
    each run (dots), in the rank mode."""
    runs = {m: [] for m in METHODS}
    for seed in seeds:
        for order in orders:
            for m, r in load_order(results, order, seed).items():
                if len(r["accuracy"]) == len(r["tasks"]):
                    runs[m].append(r)
    methods = [m for m in METHODS if runs[m]]
    if not methods:
        return
    svg = Svg(860, 640)
    for panel, (key, label) in enumerate([("average_accuracy", "AA (%)"), ("backward_transfer", "BWT (points)")]):
        vals = {m: [r[key] for r in runs[m]] for m in methods}
        allv = [v for vs in vals.values() for v in vs] + [0]
        lo, hi = min(allv), max(allv)
        lo, hi = (lo - 5, hi + 5) if key == "backward_transfer" else (0, max(hi + 5, 10))
        x0, y0, w, h = 80, 40 + panel * 300, 740, 220
        fx, fy = axes(svg, x0, y0, w, h, 0, len(methods), lo, hi, "", label,
                      f"{label.split()[0]} per method (label ranking): mean over the runs (bars), ± std, each run "
                      "(dots)")
        svg.line(x0, fy(0), x0 + w, fy(0), "#000")
        bw = w / len(methods)
        for k, m in enumerate(methods):
            v = vals[m]
            mean = sum(v) / len(v)
            std = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
            color = COLORS[METHODS.index(m)]
            top, bottom = (fy(mean), fy(0)) if mean >= 0 else (fy(0), fy(mean))
            svg.rect(x0 + k * bw + bw * 0.15, top, bw * 0.7, bottom - top, color)
            cx = x0 + k * bw + bw / 2
            svg.line(cx, fy(mean - std), cx, fy(mean + std), "#000", 1.5)
            for q, x in enumerate(v):
                svg.circle(x0 + k * bw + bw * (0.2 + 0.6 * q / max(1, len(v) - 1)), fy(x), 2.5, "#000")
            svg.text(cx, (fy(mean + std) - 4) if mean >= 0 else (fy(mean - std) + 12), f"{mean:.1f}", 10, "middle")
            if panel == 1:
                svg.text(cx, y0 + h + 14, m, 10, "end", rotate=-30)
    svg.save(os.path.join(out, "aa_bwt.svg"))


# a train cl log line, before and after the totals were added ("epoch 3 step  50", "epoch 3/16 step 50/1008")
LOG_LINE = re.compile(r"^(\S+) task (\d+)/(\d+) \((\S+)\) epoch (\d+)(?:/\d+)? step\s+(\d+)(?:/\d+)? \| loss ([0-9.]+)")


def training_losses(cell, method):
    """(task, step, loss) of a train cl run's logged steps: its metrics.jsonl training records (the records of a
    task's steps have "step"; a task's end has "accuracy"), or, for a run made before they existed, its log."""
    records = [r for r in read_jsonl(os.path.join(cell, method, "metrics.jsonl")) if "step" in r and "loss" in r]
    if records:
        return [(r["task"], r["step"], r["loss"]) for r in records]
    points, log = [], os.path.join(cell, f"cl_{method}.log")
    for line in open(log, errors="replace") if os.path.exists(log) else []:
        m = LOG_LINE.match(line)
        if m and m.group(1) == method:
            points.append((int(m.group(2)), int(m.group(6)), float(m.group(7))))
    return points


def plot_cl_loss(work, order, out):
    cell = os.path.join(work, "cl", f"seed{SEED}", f"order{order}")
    curves = {m: training_losses(cell, m) for m in METHODS}
    curves = {m: points for m, points in curves.items() if points}
    if not curves:
        return
    # x: task index + fraction of the task's steps, so the tasks line up across methods
    series = {}
    for method, pts in curves.items():
        last = {}
        for task, step, _ in pts:
            last[task] = max(last.get(task, 0), step)
        series[method] = [(task - 1 + step / last[task], loss) for task, step, loss in pts]
    ys = sorted(y for s in series.values() for _, y in s)
    ntasks = max(int(x) + 1 for s in series.values() for x, _ in s)
    # the logged loss includes each method's regularizer (N-LoRA's L1 term can be 3x the cross-entropy):
    # the axis stops at twice the median, and larger values are drawn at the top edge
    top = min(ys[-1], 2 * ys[len(ys) // 2]) * 1.05
    series = {m: [(x, min(y, top)) for x, y in s] for m, s in series.items()}
    svg = Svg(820, 460)
    fx, fy = axes(svg, 70, 40, 560, 340, 0, ntasks, 0, top, "task (training progress within each task)",
                  "training loss (answer tokens)", f"Order {order}, seed {SEED}: train cl loss per method")
    if ys[-1] > top:
        svg.text(70, 450, f"logged loss = cross-entropy + the method's regularizer; values above {top:.1f} are "
                 "drawn at the top edge", 10)
    for t in range(1, ntasks):
        svg.line(fx(t), 40, fx(t), 380, "#999", 1, "4,3")
    for k, m in enumerate(mm for mm in METHODS if mm in series):
        color = COLORS[METHODS.index(m)]
        svg.polyline([(fx(x), fy(y)) for x, y in series[m]], color, 1.5)
        svg.line(645, 50 + 18 * k, 665, 50 + 18 * k, color, 2.5)
        svg.text(670, 54 + 18 * k, m, 11)
    svg.save(os.path.join(out, f"cl_loss_order{order}.svg"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--work", default=None, help="the run's work folder (per-step sources)")
    ap.add_argument("--orders", default="1 2 3")
    ap.add_argument("--seeds", default="1 2 3")
    a = ap.parse_args()
    orders = [int(o) for o in a.orders.replace(",", " ").split()]
    seeds = [int(o) for o in a.seeds.replace(",", " ").split()]
    out = os.path.join(a.results, "plots")
    os.makedirs(out, exist_ok=True)
    if a.work:
        plot_base(a.work, out)
    plot_aa_bwt(a.results, orders, seeds, out)
    for o in orders:
        plot_heatmaps(a.results, o, out)
        if a.work:
            plot_cl_loss(a.work, o, out)
    print("plots:", ", ".join(sorted(os.listdir(out))))


if __name__ == "__main__":
    main()
