#!/usr/bin/env bash
# Crash safety, measured (issue 24): runs killed with kill -9 at random moments, a full disk, two runs into one
# folder. Each part prints what it did and ends "ok" or "FAILED"; the exit status is the number of failed parts.
#
#   bash dev/crash_check.sh [--kills N] [--seed S]      (defaults: 10 kills per run, seed 1; ~1 minute)
#
# 1. pretrain: an uninterrupted run, then the same run killed N times at random moments, each time continued with
#    --resume-or-start, until it finishes. 2. cl --method seqlora,replay,ilora: the same. The killed run's folder
#    starts with the uninterrupted run's run.json (as a run killed before its first checkpoint leaves it), so both
#    carry one run id and every file is compared with cmp: the checkpoints, states and adapter files byte for byte,
#    metrics.jsonl with its wall times ("ms", "seconds") masked, predictions.jsonl and results.json as they are
#    (results.json's seconds masked). run.json is left out: it records each session.
# 3. A full disk: pretrain into a 3 MiB tmpfs, cl into a 300 KiB one (where a predictions.jsonl is cut mid-line),
#    each in a mount namespace (`unshare -m`; skipped, saying so, where none can be made), stops with an error
#    naming the file; its folder, copied to a large disk and resumed, ends with the uninterrupted run's files.
# 4. Two runs started together into one --out: one runs, the other is refused naming the folder.
set -uo pipefail
cd "$(dirname "$0")/.."
KILLS=10 SEED=1
while [ $# -gt 0 ]; do
    case "$1" in
        --kills) KILLS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        *) echo "unknown flag $1" >&2; exit 2 ;;
    esac
done
[ -x ./train ] || { echo "build ./train first (make)" >&2; exit 2; }
RANDOM=$SEED
WORK=$(mktemp -d /tmp/clora_crash_check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILED=0

PRETRAIN=(pretrain --steps 1500 --checkpoint-every 100 --val-every 25 --device cpu --threads 1)
CL=(cl --method seqlora,replay,ilora --synthetic-tasks 4 --epochs 2 --device cpu --threads 1 --log-every 0)

# A copy of a JSON-lines or JSON file with the wall-time fields zeroed.
masked() {
    python3 - "$1" <<'EOF'
import json, sys
path = sys.argv[1]
def mask(value):
    if isinstance(value, dict):
        return {k: (0 if k in ("ms", "seconds", "seconds_per_task") else mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value
text = open(path, encoding="utf-8").read()
if path.endswith(".jsonl"):
    print("".join(json.dumps(mask(json.loads(line))) + "\n" for line in text.splitlines()), end="")
else:
    print(json.dumps(mask(json.loads(text))))
EOF
}

# compare REF OUT: every file of REF (but run.json and logs) must be in OUT, equal; prints the count compared.
compare() {
    local ref=$1 out=$2 count=0 bad=0
    while IFS= read -r file; do
        local rel=${file#"$ref"/}
        case "$rel" in run.json | *.log | .lock) continue ;; esac
        count=$((count + 1))
        if [ ! -f "$out/$rel" ]; then echo "    missing: $rel"; bad=1; continue; fi
        case "$rel" in
            *.jsonl | *.json) cmp -s <(masked "$file") <(masked "$out/$rel") || { echo "    differs: $rel"; bad=1; } ;;
            *) cmp -s "$file" "$out/$rel" || { echo "    differs: $rel"; bad=1; } ;;
        esac
    done < <(find "$ref" -type f | sort)
    local extra
    extra=$(cd "$out" && find . -type f ! -name run.json ! -name .lock ! -name '*.log' | sed 's|^\./||' | sort |
            while read -r rel; do [ -f "$ref/$rel" ] || echo "$rel"; done)
    [ -z "$extra" ] || { echo "    extra files: $extra"; bad=1; }
    echo "    compared $count files with the uninterrupted run"
    return $bad
}

# kill_loop NAME MS ARGS...: the run killed KILLS times, each after a random 0..MS milliseconds, then left to finish.
kill_loop() {
    local name=$1 span=$2; shift 2
    local ref="$WORK/$name-ref" out="$WORK/$name-killed"
    ./train "$@" --out "$ref" >"$WORK/$name-ref.log" 2>&1 || { echo "$name: the uninterrupted run failed"; return 1; }
    mkdir -p "$out" && cp "$ref/run.json" "$out/run.json"
    local kills=0 moments=""
    while :; do
        ./train "$@" --out "$out" --resume-or-start >>"$WORK/$name-killed.log" 2>&1 &
        local pid=$!
        if [ $kills -lt "$KILLS" ]; then
            local ms=$((RANDOM % span))
            sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
            if kill -9 $pid 2>/dev/null; then
                wait $pid 2>/dev/null
                kills=$((kills + 1)) moments="$moments ${ms}ms"
                continue
            fi
        fi
        wait $pid
        local rc=$?
        [ $rc -eq 0 ] && break
        echo "$name: a resumed session failed (exit $rc):"; tail -3 "$WORK/$name-killed.log"; return 1
    done
    echo "$name: killed $kills times (after$moments), resumed each time"
    compare "$ref" "$out"
}

part() {  # part NAME COMMAND...: runs one part, prints ok / FAILED
    echo "== $1"
    if "${@:2}"; then echo "   ok"; else echo "   FAILED"; FAILED=$((FAILED + 1)); fi
}

# disk_full NAME SIZE ARGS...: the run in a tmpfs of SIZE until the disk is full, then its folder copied to a
# large disk and resumed there; compared with the uninterrupted run NAME-ref.
disk_full() {
    local name=$1 size=$2; shift 2
    if ! unshare -m true 2>/dev/null; then echo "    skipped: no mount namespace here (unshare -m)"; return 0; fi
    local ref="$WORK/$name-ref" big="$WORK/$name-disk-full"
    mkdir -p "$WORK/tmpfs"
    unshare -m bash -c '
        mount -t tmpfs -o size="$3" tmpfs "$1" || exit 3
        mkdir "$1/out" && cp "$4/run.json" "$1/out/"
        ./train "${@:5}" --out "$1/out" --resume-or-start >/dev/null 2>"$2.err"  # the error, on the large disk
        echo "    into a $3 tmpfs: exit $?: $(cat "$2.err")"
        for file in $(cd "$1/out" && find . -name "*.jsonl"); do
            [ -s "$1/out/$file" ] && [ "$(tail -c1 "$1/out/$file" | od -An -c | tr -d " ")" != "\n" ] &&
                echo "    left cut mid-line: ${file#./}"
        done
        cp -a "$1/out" "$2"' _ "$WORK/tmpfs" "$big" "$size" "$ref" "$@"
    [ -d "$big" ] || { echo "    no folder came back from the tmpfs"; return 1; }
    ./train "$@" --out "$big" --resume >"$WORK/$name-disk-full.log" 2>&1 || {
        echo "    --resume failed:"; tail -3 "$WORK/$name-disk-full.log"; return 1; }
    echo "    --resume on a large disk: exit 0"
    compare "$ref" "$big"
}

concurrent() {
    local out="$WORK/concurrent"
    ./train "${PRETRAIN[@]}" --out "$out" >"$WORK/first.log" 2>&1 &
    local first=$!
    sleep 0.3
    ./train "${PRETRAIN[@]}" --out "$out" --resume-or-start >"$WORK/second.log" 2>&1
    local second=$?
    wait $first
    local rc=$?
    echo "    first: exit $rc; second: exit $second: $(cat "$WORK/second.log")"
    [ $rc -eq 0 ] && [ $second -eq 1 ] && grep -q "another run is writing this folder" "$WORK/second.log"
}

part "pretrain, kill -9 at random moments" kill_loop pretrain 1000 "${PRETRAIN[@]}"
part "cl --method seqlora,replay,ilora, kill -9 at random moments" kill_loop cl 1500 "${CL[@]}"
part "pretrain into a full disk, then --resume" disk_full pretrain 3m "${PRETRAIN[@]}"
part "cl into a full disk, then --resume" disk_full cl 300k "${CL[@]}"
part "two runs into one --out" concurrent
echo "$FAILED part(s) failed"
exit $FAILED
