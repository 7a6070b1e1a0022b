#!/usr/bin/env python3
"""clora against PyTorch + Hugging Face PEFT on the same GPU, in one run: the peer benchmark of issue 7.

Times a training step (forward + backward + optimizer) of GPT-2 124M-shaped random weights (d12) at T = 1024 and
B = 8 and 16 for
  (a) clora LoRA r=8 alpha=32 dropout=0.1 on qkv (c_attn), frozen base    build/bench/train_step --mode lora
      (and the same with the base's forward products on fp32 storage: --bf16-base off, what bf16 storage buys)
  (b) PyTorch + PEFT, eager, the same LoRA config                          dev/bench/pytorch_step.py
  (c) the same with torch.compile
  (d) clora full training                                                  --mode full
  (e) PyTorch full training, eager and compiled
  (f) clora with 15 stacked branches (14 frozen + 1 trainable) against 1, with GainLoRA's gates (gainlora-olora),
      with AM-LoRA's attention, and plainly summed (IncLoRA)                --mode branches --method ...
plus the cuBLAS peak of this GPU (8192^3 products in bf16, tf32 and fp32: --mode gemm), and prints a table:
tokens/s, ms per step, clora / best PyTorch (tokens/s of the same mode and batch), model FLOP utilisation against
the measured bf16 peak, peak memory, and the issue's targets as PASS / FAIL; the whole run (every raw line) is saved
as JSON (default dev/bench/results/<date>.json). The table comes last.

Model FLOPs per token (the usual count: matrix products only, 2 flops per multiply-add, attention's products
without the causal half), with N = 12 L C^2 + V C (the linears of every block and the tied classifier; V = 50257,
not clora's padded 50304) and the attention products 4 L C T forward, 8 L C T backward:
  full training            6 N + 12 L C T                 (forward 2N, backward: input and weight gradients 4N)
  LoRA on a frozen base    4 N + 12 L C T                 (forward 2N, backward: input gradients only, 2N; no
                                                           weight-gradient products; the LoRA products themselves,
                                                           under 0.1% at r = 8, not counted)
MFU = flops per token x tokens/s / the measured bf16 peak (every row: the best this GPU does).

Memory: clora's peak_bytes counts its own device allocations (model/cuda/memory.cu), PyTorch's is
torch.cuda.max_memory_allocated; both from just after the model was built (weights included) to the last step;
neither counts the CUDA context. clora's device_used_bytes (cudaMemGetInfo) and PyTorch's reserved_bytes are in
the JSON as cross-checks. "act GiB": clora's activations and their gradients as model/activations.h lays them out
(activation_bytes, computed, not measured: the part of clora's peak known without a GPU).

Usage (from the repository root, after `make lab`; on a GPU host):
  python3 dev/bench/peer.py [--batches 8,16] [--seq 1024] [--steps 20] [--warmup 5] [--branches 15]
                            [--out FILE] [--python PYTHON] [--skip-pytorch]
  python3 dev/bench/peer.py --device cpu --tiny      # the whole pipeline on a 2:64:2:256:64 model (a CPU check)
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys

from pytorch_step import model_config  # the same --model-config on both sides

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# the targets: on a GPU (issue 7), and on the CPU's cores (issue 19: against eager, both sides fp32)
LORA_VS_EAGER, LORA_VS_COMPILED, FULL_VS_COMPILED, BRANCHES_EXTRA = 2.0, 1.3, 1.2, 0.15
CPU_LORA_VS_EAGER, CPU_FULL_VS_EAGER = 1.2, 1.2


def parse_arguments():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="the 2:64:2:256:64 model, B 2, T 32, 2 steps (a CPU check)")
    p.add_argument("--model-config", default=None, help="d12 or L:C:NH:V:maxT (default d12; --tiny: 2:64:2:256:64)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of both sides (default: every core; clora's OMP_NUM_THREADS, torch's default)")
    p.add_argument("--batches", default=None, help="comma list (default 8,16; --tiny: 2)")
    p.add_argument("--seq", type=int, default=None, help="default 1024 (--tiny: 32)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20; --tiny: 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; --tiny: 1)")
    p.add_argument("--branches", type=int, default=None,
                   help="the stacked-branch rows' count (default 15 on CUDA; 0, no such rows, on the CPU)")
    p.add_argument("--gemm-n", type=int, default=8192)
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="clora's matmuls (auto: bf16 on CUDA, fp32 on the CPU, as train)")
    p.add_argument("--train-step", default=os.path.join(ROOT, "build/bench/train_step"))
    p.add_argument("--python", default=sys.executable, help="the Python with torch, transformers and peft")
    p.add_argument("--pytorch-variants", default=None,
                   help="of pytorch_step.py: eager,compiled (default both on CUDA, eager on the CPU)")
    p.add_argument("--skip-pytorch", action="store_true")
    p.add_argument("--out", default=None, help="the JSON file (default dev/bench/results/<date>.json)")
    args = p.parse_args()
    args.batches = [int(b) for b in (args.batches or ("2" if args.tiny else "8,16")).split(",") if b]
    args.seq = args.seq or (32 if args.tiny else 1024)
    args.steps = args.steps or (2 if args.tiny else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 5)
    args.model_config, args.shape = model_config(p, args)
    cpu = args.device == "cpu"
    args.branches = args.branches if args.branches is not None else (0 if cpu else 15)
    args.pytorch_variants = args.pytorch_variants or ("eager" if cpu else "eager,compiled")
    return args


def run_json_lines(command, what):
    """Runs command; returns its stdout's JSON object lines, or one {"error": ...} line when it fails."""
    print(f"peer: {what}: {' '.join(shlex.quote(c) for c in command)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    except OSError as error:
        return [{"error": f"{what}: {error}"}]
    lines = []
    for text in done.stdout.splitlines():
        text = text.strip()
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                pass
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        lines.append({"error": f"{what}: exit status {done.returncode}: {tail}"})
    return lines


def flops_per_token(mode, shape, T):
    L, C, _, V, _ = shape
    N = 12 * L * C * C + V * C
    attention = 12 * L * C * T
    return (6 * N if mode == "full" else 4 * N) + attention


def gpu_name():
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
        return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def main():
    args = parse_arguments()
    config = args.model_config
    cpu = args.device == "cpu"
    common = ["--device", args.device, "--model-config", config, "--seq", str(args.seq), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--precision", args.precision]
    if args.threads:
        common += ["--threads", str(args.threads)]
    raw = []  # every JSON line, with what produced it

    gemm = run_json_lines([args.train_step, "--mode", "gemm", "--device", args.device, "--gemm-n", str(args.gemm_n)],
                          "cuBLAS peak")
    raw += gemm
    peak = next((g for g in gemm if "bf16_tflops" in g), None)

    clora_runs = [("lora", "clora LoRA r=8 qkv", ["--mode", "lora"]),
                  ("full", "clora full training", ["--mode", "full"])]
    if not cpu:  # the base in bf16 is a CUDA path
        clora_runs.append(("lora:fp32-base", "clora LoRA r=8 qkv, base in fp32", ["--mode", "lora", "--bf16-base", "off"]))
    for method, label in (("gainlora", "GainLoRA"), ("amlora", "AM-LoRA"), ("inclora", "IncLoRA (summed)")):
        for n in ((1, args.branches) if args.branches else ()):
            clora_runs.append((f"branches:{method}:{n}", f"clora {label} {n} branch{'es' if n > 1 else ''}",
                               ["--mode", "branches", "--method", method, "--branches", str(n)]))
    results = {}  # (B, key) -> line
    for B in args.batches:
        for key, label, flags in clora_runs:
            lines = run_json_lines([args.train_step] + flags + common + ["--batch", str(B)], f"{label} B={B}")
            raw += [dict(line, key=key) for line in lines]
            results[(B, key)] = next((l for l in lines if "tokens_per_second" in l), lines[-1] if lines else {})
            results[(B, key)]["label"] = label

    pytorch_skipped = None
    if args.skip_pytorch:
        pytorch_skipped = "--skip-pytorch"
    else:
        command = [args.python, os.path.join(HERE, "pytorch_step.py"), "--device", args.device, "--seq", str(args.seq),
                   "--steps", str(args.steps), "--warmup", str(max(args.warmup, 3)), "--batches",
                   ",".join(map(str, args.batches)), "--variants", args.pytorch_variants, "--model-config", config,
                   "--precision", args.precision] + (["--threads", str(args.threads)] if args.threads else [])
        lines = run_json_lines(command, "PyTorch + PEFT")
        raw += lines
        for line in lines:
            if "skipped" in line:
                pytorch_skipped = line["skipped"]
            elif "mode" in line and "variant" in line:
                results[(line["batch"], f"pytorch:{line['mode']}:{line['variant']}")] = dict(
                    line, label=f"PyTorch{' + PEFT' if line['mode'] == 'lora' else ''} {line['mode']} {line['variant']}")
            elif "error" in line:
                pytorch_skipped = line["error"]

    def tps(line):
        return line.get("tokens_per_second") if line and "error" not in line else None

    def best_pytorch(B, mode):
        found = [(tps(results.get((B, f"pytorch:{mode}:{v}"))) or 0, v) for v in ("eager", "compiled")]
        value, variant = max(found)
        return (value, variant) if value > 0 else (None, None)

    def ratio(a, b):
        return a / b if a and b else None

    def least_pytorch_memory(B, mode):
        peaks = [results.get((B, f"pytorch:{mode}:{v}"), {}).get("peak_bytes") for v in ("eager", "compiled")]
        peaks = [p for p in peaks if p]
        return min(peaks) if peaks else None

    def check(name, measured, needed, passed, text):
        return {"target": name, "measured": measured, "needed": needed,
                "pass": None if passed is None else bool(passed), "text": text}

    def verdict(target):
        return "n/a" if target["pass"] is None else ("PASS" if target["pass"] else "FAIL")

    table, targets = [], []
    for B in args.batches:
        order = ["lora", "pytorch:lora:eager", "pytorch:lora:compiled", "full", "pytorch:full:eager",
                 "pytorch:full:compiled"] + [key for key, _, _ in clora_runs[2:]]
        for key in order:
            line = results.get((B, key))
            if line is None:
                continue
            mode = line.get("mode") if line.get("mode") in ("lora", "full") else "lora"  # branches: a LoRA step
            row = {"batch": B, "key": key, "run": line.get("label", key), "tokens_per_second": tps(line),
                   "threads": line.get("threads"),
                   "ms_per_step": line.get("ms_per_step"), "peak_bytes": line.get("peak_bytes"),
                   "activation_bytes": line.get("activation_bytes"),
                   "error": line.get("error"), "ratio_to_best_pytorch": None, "best_pytorch": None, "mfu": None,
                   "targets": []}
            if row["tokens_per_second"] and peak:
                row["mfu"] = flops_per_token(mode, args.shape, args.seq) * row["tokens_per_second"] / (
                    peak["bf16_tflops"] * 1e12)
            if key in ("lora", "full"):
                best, variant = best_pytorch(B, key)
                row["ratio_to_best_pytorch"], row["best_pytorch"] = ratio(row["tokens_per_second"], best), variant
                eager = tps(results.get((B, f"pytorch:{key}:eager")))
                compiled = tps(results.get((B, f"pytorch:{key}:compiled")))
                if cpu:  # the same cores, both sides fp32: against eager
                    needed = CPU_LORA_VS_EAGER if key == "lora" else CPU_FULL_VS_EAGER
                    r = ratio(row["tokens_per_second"], eager)
                    row["targets"].append(check(f"B={B} {key}: clora >= {needed}x PyTorch{' + PEFT' if key == 'lora' else ''}"
                                                f" eager (CPU)", r, needed, None if r is None else r >= needed,
                                                f">={needed}x eager"))
                elif key == "lora":
                    r = ratio(row["tokens_per_second"], eager)
                    row["targets"].append(check(f"B={B} LoRA: clora >= {LORA_VS_EAGER}x PyTorch + PEFT eager", r,
                                                LORA_VS_EAGER, None if r is None else r >= LORA_VS_EAGER,
                                                f">={LORA_VS_EAGER}x eager"))
                    r = ratio(row["tokens_per_second"], compiled)
                    row["targets"].append(check(f"B={B} LoRA: clora >= {LORA_VS_COMPILED}x PyTorch + PEFT compiled",
                                                r, LORA_VS_COMPILED, None if r is None else r >= LORA_VS_COMPILED,
                                                f">={LORA_VS_COMPILED}x compiled"))
                else:
                    r = ratio(row["tokens_per_second"], compiled)
                    row["targets"].append(check(f"B={B} full: clora >= {FULL_VS_COMPILED}x PyTorch compiled", r,
                                                FULL_VS_COMPILED, None if r is None else r >= FULL_VS_COMPILED,
                                                f">={FULL_VS_COMPILED}x compiled"))
                theirs = least_pytorch_memory(B, key)
                ours = row["peak_bytes"]
                row["targets"].append(check(f"B={B} {key}: clora's peak memory <= PyTorch's (the lower of eager and "
                                            f"compiled)", ours, theirs,
                                            None if not (ours and theirs) else ours <= theirs, "mem<=PyTorch"))
            if key.startswith("branches:"):
                _, method, n = key.split(":")
                one = results.get((B, f"branches:{method}:1"))
                if int(n) > 1 and one and one.get("ms_per_step") and line.get("ms_per_step"):
                    extra = line["ms_per_step"] / one["ms_per_step"] - 1
                    row["step_time_vs_one_branch"] = extra
                    row["targets"].append(check(f"B={B} {method}: {n} branches cost <= +{BRANCHES_EXTRA:.0%} step time "
                                                f"over 1", extra, BRANCHES_EXTRA, extra <= BRANCHES_EXTRA,
                                                f"{extra:+.1%} <= +{BRANCHES_EXTRA:.0%}"))
            targets += row["targets"]
            table.append(row)

    now = datetime.datetime.now()
    out = args.out or os.path.join(HERE, "results", now.strftime("%Y-%m-%d_%H%M%S") + ".json")
    report = {
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "gpu": gpu_name() if args.device == "cuda" else None,
        "device": args.device, "model_config": config, "seq": args.seq, "batches": args.batches,
        "steps": args.steps, "warmup": args.warmup,
        "gemm_peak": peak,
        "flops": {"N": "12 L C^2 + V C", "full": "6 N + 12 L C T per token", "lora": "4 N + 12 L C T per token",
                  "full_per_token": flops_per_token("full", args.shape, args.seq),
                  "lora_per_token": flops_per_token("lora", args.shape, args.seq),
                  "mfu_against": "the measured bf16 cuBLAS peak"},
        "pytorch_skipped": pytorch_skipped,
        "table": table, "targets": targets, "raw": raw,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")

    # the table, last
    def number(x, spec, width):
        return (format(x, spec) if isinstance(x, (int, float)) else "n/a").rjust(width)

    print()
    print(f"== clora vs PyTorch + PEFT: {config}, T={args.seq}, {args.steps} timed steps after {args.warmup} "
          f"({report['gpu'] or args.device}) ==")
    if peak:
        print(f"cuBLAS peak ({peak['n']}^3): bf16 {peak['bf16_tflops']:.1f}  tf32 {peak['tf32_tflops']:.1f}  "
              f"fp32 {peak['fp32_tflops']:.1f} TFLOP/s; MFU below is against bf16")
    else:
        print(f"cuBLAS peak: {gemm[-1].get('skipped') or gemm[-1].get('error') if gemm else 'n/a'} (no MFU)")
    clora_precision = next((l.get("precision") for l in raw if l.get("program") == "clora" and "precision" in l), "?")
    pytorch_precision = next((l.get("precision") for l in raw if l.get("program") == "pytorch" and "precision" in l),
                             "n/a")
    threads = sorted({str(l["threads"]) for l in raw if l.get("threads")})
    print(f"clora precision: {clora_precision}; PyTorch: {pytorch_precision}"
          + (f"; CPU threads: {', '.join(threads)}" if threads else ""))
    if pytorch_skipped:
        print(f"PyTorch: skipped ({pytorch_skipped}): its rows and the ratios remain to be measured")
    print(f"{'B':>3} {'run':<34} {'threads':>7} {'tok/s':>10} {'ms/step':>9} {'x best PT':>10} {'MFU':>6} "
          f"{'peak GiB':>9} {'act GiB':>8}  targets")
    for row in table:
        if row["error"]:
            print(f"{row['batch']:>3} {row['run']:<34} error: {row['error']}")
            continue
        best = f"{row['ratio_to_best_pytorch']:.2f}x" if row["ratio_to_best_pytorch"] else ""
        peak_gib = number(row["peak_bytes"] / 2**30 if row["peak_bytes"] else None, ".2f", 9)
        act_gib = number(row["activation_bytes"] / 2**30 if row["activation_bytes"] else None, ".2f", 8)
        marks = "  ".join(f"{verdict(t)} {t['text']}" + (f" ({t['measured']:.2f})" if isinstance(t["measured"], float)
                                                           and "x" in t["text"] else "") for t in row["targets"])
        print(f"{row['batch']:>3} {row['run']:<34} {number(row['threads'], 'd', 7)} "
              f"{number(row['tokens_per_second'], '.0f', 10)} "
              f"{number(row['ms_per_step'], '.2f', 9)} {best:>10} {number(row['mfu'], '.1%', 6)} {peak_gib} {act_gib}  {marks}")
    passed = sum(1 for t in targets if t["pass"] is True)
    failed = sum(1 for t in targets if t["pass"] is False)
    unknown = sum(1 for t in targets if t["pass"] is None)
    print(f"targets: {passed} PASS, {failed} FAIL, {unknown} n/a; written to {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
