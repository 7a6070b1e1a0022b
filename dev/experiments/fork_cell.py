#!/usr/bin/env python3
"""Starts a cell of dev/experiments/run.sh from another cell's saved task boundary, when two task orders begin with
the same tasks (orders 1 and 2 of Standard CL share dbpedia, amazon): the shared tasks are trained once.

  fork_cell.py --source DIR --target DIR --method M --shared dbpedia,amazon --order 2

train cl saves a cell's whole state after every task (adapters_task<K>.bin: the adapters, the method's state and the
evaluation rows; metrics.jsonl and predictions.jsonl: the records) and resumes from the latest one, so a run of the
target order that finds the source's first K boundaries resumes exactly as if it had trained those tasks itself
(dev/experiments/check_fork.sh checks that, byte for byte, for every method).
Copies nothing (and says why) when the target has begun, the source has not passed task K, the source's first tasks
are not the shared ones, or the two runs' settings differ beyond the order and what a resume may change.
Python 3 standard library only.
"""
import argparse
import json
import os
import shutil
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, help="the run folder of the order trained first")
    ap.add_argument("--target", required=True, help="the run folder of the order to start from it")
    ap.add_argument("--method", required=True)
    ap.add_argument("--shared", required=True, help="the tasks both orders begin with, comma-separated")
    ap.add_argument("--order", required=True, help="the target's --order")
    a = ap.parse_args()
    shared = a.shared.split(",")
    k = len(shared)
    src, dst = os.path.join(a.source, a.method), os.path.join(a.target, a.method)

    def skip(why):
        print(f"fork_cell: {a.target}/{a.method} trains from its first task: {why}")
        return 0

    if os.path.isdir(dst) and any(name.startswith("adapters_task") for name in os.listdir(dst)):
        return 0  # begun already (forked or not): train cl resumes it
    boundary = os.path.join(src, f"adapters_task{k:02d}.bin")
    if not os.path.exists(boundary):
        return skip(f"{boundary} does not exist yet")
    # the source's tasks so far, from its task records (results.json exists only once the source has finished,
    # and the source may still be running its later tasks)
    name_of_task = {}
    with open(os.path.join(src, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "accuracy" in r and "name" in r:
                name_of_task[r["task"]] = r["name"]
    first = [name_of_task.get(t) for t in range(1, k + 1)]
    if first != shared:
        return skip(f"the source's first tasks are {first}, not {shared}")
    record = json.load(open(os.path.join(a.source, "run.json")))
    target_record = os.path.join(a.target, "run.json")
    if os.path.exists(target_record):
        other = json.load(open(target_record))["options"]
        free = set(record.get("may_change", [])) | {"order"}  # what a resumed run may change, and the order
        differ = sorted(n for n in set(other) | set(record["options"])
                        if n not in free and other.get(n) != record["options"].get(n))
        if differ:
            return skip(f"its settings differ from the source's in {', '.join(differ)}")
    else:  # the target's first run: its record is the source's with its own order, no session yet
        record["options"]["order"] = a.order
        record.update(run_id=os.urandom(8).hex(), sessions=[], status="stopped", ended=None, forked_from=a.source)
        os.makedirs(a.target, exist_ok=True)
        with open(target_record, "w") as f:
            json.dump(record, f, indent=2)
    os.makedirs(dst, exist_ok=True)
    for t in range(1, k + 1):
        shutil.copy(os.path.join(src, f"adapters_task{t:02d}.bin"), dst)
    # whole files: the resume keeps the records of tasks 1..k and drops the rest
    for name in ("metrics.jsonl", "predictions.jsonl"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), dst)
    print(f"fork_cell: {a.target}/{a.method} starts after task {k} ({', '.join(shared)}) of {a.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
