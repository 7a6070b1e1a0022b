#!/usr/bin/env python3
"""Does the prompt cut explain a task's accuracy? For one finished cell, splits the task's test examples by what
the cut kept (data/cl_batches.h, prompt_tokens_kept: the last T + 1 - answer tokens of the prompt) and prints the
label-ranking accuracy of each group, and how often each label was ranked against how often it was expected.

  prompt_cut.py --cell out/experiments/cpu/single/seed1/yahoo/seqlora --task yahoo [--max-seq-len 128]

Groups: `whole` (nothing cut), `cut` (the head cut, the line that starts with "Title:" kept, or none),
`cut, title lost` (that whole line cut). Tokens are counted with dev/gpt2_tokenizer_reference.py's encoder, and
the answer is the expected one (ranking cuts each label's row for that label's length; the labels of one task
differ by a few tokens at most). Needs Python's `regex` module (Debian: python3-regex).
"""
import argparse
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from gpt2_tokenizer_reference import Encoder  # noqa: E402


def group(encoder, prompt, answer, T):
    prompt_ids = encoder.encode(prompt)
    answer_ids = encoder.encode(answer if prompt[-1:].isspace() or answer[:1].isspace() else " " + answer)
    first_kept = len(prompt_ids) - min(len(prompt_ids), T + 1 - (len(answer_ids) + 1))  # + 1: the eot
    if first_kept == 0:
        return "whole"
    title = prompt.find("Title:")
    if title >= 0:
        line_end = prompt.find("\n", title)
        if line_end >= 0 and len(encoder.encode(prompt[:line_end])) <= first_kept:
            return "cut, title lost"
    return "cut"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", required=True, help="a train cl method folder with predictions.jsonl")
    ap.add_argument("--task", required=True)
    ap.add_argument("--after-task", type=int, default=1, help="the predictions made after this task")
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--benchmark", default=os.path.join(HERE, "../../../shared/data/cl_benchmark/LLM-CL-Benchmark_500"))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "../../../shared/data/tokenizer/gpt2"))
    a = ap.parse_args()

    with open(os.path.join(a.benchmark, a.task, "test.json"), encoding="utf-8") as file:
        examples = json.load(file)
    with open(os.path.join(a.cell, "predictions.jsonl"), encoding="utf-8") as file:
        rows = [json.loads(line) for line in file]
    rows = [r for r in rows if r["task"] == a.task and r["after_task"] == a.after_task]
    if not rows:
        sys.exit(f"prompt_cut.py: no predictions for {a.task} after task {a.after_task} in {a.cell}")
    encoder = Encoder(a.tokenizer)

    right, total = collections.Counter(), collections.Counter()
    for r in rows:
        e = examples[r["example"]]
        g = group(encoder, e["prompt"], e["answer"], a.max_seq_len)
        total[g] += 1
        right[g] += bool(r["rank_correct"])
    print(f"{a.task}, label ranking by what the cut kept (T {a.max_seq_len}):")
    for g in ("whole", "cut", "cut, title lost"):
        if total[g]:
            print(f"  {g:16s} {right[g]:3d} / {total[g]:3d} = {100 * right[g] / total[g]:5.1f}%")
    ranked = collections.Counter(r["ranked"].strip() for r in rows)
    expected = collections.Counter(r["expected"].strip() for r in rows)
    print("  label: ranked / expected")
    for label, n in ranked.most_common() + [(l, 0) for l in expected if l not in ranked]:
        print(f"    {label:24s} {n:3d} / {expected[label]:3d}")


if __name__ == "__main__":
    main()
