#!/usr/bin/env bash
# The Long Sequence benchmark's order 4 (15 tasks, O-LoRA's instruction prefix on) at CPU scale (issue 22): SeqLoRA,
# Replay, O-LoRA and MTL on the real-data study's base (dev/experiments/run.sh, out/experiments/cpu/base), one cell
# per method, resumable as the study's cells are: a finished cell is never retrained, an interrupted one resumes
# from its last finished task. Then the table of AA / BWT / FT (dev/experiments/long_sequence_table.py) into
# dev/experiments/results/cpu/long_sequence/.
#
#   bash dev/experiments/long_sequence.sh             # hours on 2 cores, in as many sessions as it takes
#
# flags: --work DIR (runs; default out/experiments/cpu/long_sequence), --results DIR (default
#        dev/experiments/results/cpu/long_sequence), --base FILE (default the study's 3000-step base), --jobs N
#        (cells at once, one thread each; default 2), --methods "seqlora replay olora mtl", --data DIR (default
#        ../shared/data), --max-train N / --max-test N / --epochs N (defaults 100, 40, 8: 100 steps a task);
#        TRAIN=path runs that binary instead of ./train
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=out/experiments/cpu/long_sequence RESULTS=dev/experiments/results/cpu/long_sequence
BASE=out/experiments/cpu/base/model_00003000.bin JOBS=2 METHODS="seqlora replay olora mtl" DATA=../shared/data
MAX_TRAIN=100 MAX_TEST=40 EPOCHS=8
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --base) BASE=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --methods) METHODS=$2; shift 2 ;;
        --data) DATA=$2; shift 2 ;;
        --max-train) MAX_TRAIN=$2; shift 2 ;;
        --max-test) MAX_TEST=$2; shift 2 ;;
        --epochs) EPOCHS=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "error: unknown flag '$1' (see --help)" >&2; exit 1 ;;
    esac
done
TRAIN=${TRAIN:-./train}
[ -x "$TRAIN" ] || { echo "error: $TRAIN is missing: bash dev/setup.sh && make train" >&2; exit 1; }
[ -f "$BASE" ] || { echo "error: no base model $BASE: bash dev/experiments/run.sh --scale cpu --until base" >&2; exit 1; }
# the study's settings (dev/experiments/run.sh, cpu scale) but for the task size; the prefix as O-LoRA's scripts
# run order 4 (--task-prefix auto is on for orders 4-6)
CL_FLAGS="--order 4 --task-prefix on --max-train $MAX_TRAIN --max-test $MAX_TEST --max-seq-len 128 --epochs $EPOCHS
          --batch-size 8 --lr 1e-3 --lora-dropout 0 --lora-modules all --max-new-tokens 8 --eval-batch-size 32
          --log-every 25 --seed 1"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$WORK" "$RESULTS"
say() { echo "[$(date '+%H:%M:%S')] $*" | tee -a "$WORK/run.log"; }

cell() {  # cell METHOD: one train cl run in $WORK/METHOD (a run folder is written by one run at a time), resumed
    # where it stopped
    mkdir -p "$WORK/$1"
    # shellcheck disable=SC2086
    if "$TRAIN" cl --device cpu --method "$1" --base "$BASE" --benchmark "$DATA/cl_benchmark/LLM-CL-Benchmark_500" \
        --tokenizer "$DATA/tokenizer/gpt2" $CL_FLAGS --out "$WORK/$1" --resume-or-start >>"$WORK/cl_$1.log" 2>&1; then
        say "cell $1: done"
    else
        say "cell $1: FAILED (see $WORK/cl_$1.log)"
        return 1
    fi
}
say "order 4: $METHODS, $JOBS at a time: $(echo $CL_FLAGS)"
running=0 failed=0
for method in $METHODS; do
    cell "$method" &
    running=$((running + 1))
    if [ $running -ge "$JOBS" ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
python3 dev/experiments/long_sequence_table.py --work "$WORK" --results "$RESULTS" --methods "$METHODS" \
    --flags "$(echo $CL_FLAGS)" --base "$BASE"
say "table: $RESULTS/tables.md"
exit $failed
