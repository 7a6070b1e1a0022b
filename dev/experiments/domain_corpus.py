#!/usr/bin/env python3
"""The benchmark's share of the base's pretraining corpus (issue 18): the *prompts* of the train splits of the
Standard CL tasks, never their answers, never a test split.

  python3 dev/experiments/domain_corpus.py --data ../shared/data --out DIR [--repeat 4] [--held-out 25]

writes
  DIR/train/<task>.txt       the task's LLM-CL-Benchmark_500 train prompts but the last --held-out, each prompt
                             --repeat times, and, where O-LoRA's full train split is there (agnews, amazon), its
                             sentences as O-LoRA-format prompts, once; prompts separated by a blank line
  DIR/held_out/<task>.txt    the last --held-out train prompts of each task: the base never reads them, so their
                             loss measures how well the base knows the tasks' text (they are still train examples
                             of `train cl`)
O-LoRA's train split holds the LLM-CL-Benchmark_500 train examples: an O-LoRA sentence found in one of those prompts
is left out (it is there already, or held out), and so is one found in a test prompt (none, as measured).
`train tokenize` turns each folder into shards (dev/experiments/run.sh).
"""
import argparse
import json
import os

TASKS = ["dbpedia", "amazon", "yahoo", "agnews"]
OLORA_TYPE = {"dbpedia": "TC", "amazon": "SC", "yahoo": "TC", "agnews": "TC"}


def olora_prompts(data, task, excluded_prompts):
    """O-LoRA's train sentences of the task as prompts in the LLM-CL-Benchmark_500 format (the instruction, the
    options, the sentence without its trailing newlines, "\\nAnswer:"), leaving out any found in excluded_prompts."""
    folder = os.path.join(data, "cl_benchmark", "olora", "CL_Benchmark", OLORA_TYPE[task], task)
    path = os.path.join(folder, "train.json")
    if not os.path.exists(path):
        return [], 0
    config = json.load(open(os.path.join(data, "cl_benchmark", "olora", "configs", "instruction_config.json")))
    instruction = next(i["instruction"] for i in config[OLORA_TYPE[task]] if i["instruction_type"] == "zero-shot")
    labels = json.load(open(os.path.join(folder, "labels.json")))
    excluded = "\0".join(excluded_prompts)
    prompts, overlapping = [], 0
    for record in json.load(open(path)):
        sentence = record["sentence"].rstrip("\n")
        if sentence in excluded:
            overlapping += 1
            continue
        prompts.append(instruction + "Option: " + ", ".join(labels) + " \n" + sentence + "\nAnswer:")
    return prompts, overlapping


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--held-out", type=int, default=25)
    args = parser.parse_args()
    for folder in ("train", "held_out"):
        os.makedirs(os.path.join(args.out, folder), exist_ok=True)
    for task in TASKS:
        root = os.path.join(args.data, "cl_benchmark", "LLM-CL-Benchmark_500", task)
        train = [r["prompt"] for r in json.load(open(os.path.join(root, "train.json")))]
        test = [r["prompt"] for r in json.load(open(os.path.join(root, "test.json")))]
        kept, held_out = train[:-args.held_out], train[-args.held_out:]
        extra, overlapping = olora_prompts(args.data, task, train + test)
        documents = kept * args.repeat + extra
        with open(os.path.join(args.out, "train", task + ".txt"), "w") as f:
            f.write("\n\n".join(documents) + "\n")
        with open(os.path.join(args.out, "held_out", task + ".txt"), "w") as f:
            f.write("\n\n".join(held_out) + "\n")
        print(f"{task}: {len(kept)} train prompts x {args.repeat}, {len(extra)} O-LoRA train prompts "
              f"({overlapping} left out: in a benchmark train or test prompt), {len(held_out)} held out")


if __name__ == "__main__":
    main()
