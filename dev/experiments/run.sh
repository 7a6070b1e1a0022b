#!/usr/bin/env bash
# The real experiment (issue 6), one command:
#   (a) tokenize ../shared/data/text (Gutenberg books, headers/footers cut, + tinyshakespeare) into shards,
#   (b) pretrain a GPT-2 base on them,
#   (c) run every continual-learning method (--method all) over the Standard CL benchmark orders 1, 2, 3,
#   (d) collect the results: tables, plots, greedy samples of the base.
#
#   bash dev/experiments/run.sh --scale cpu     # ~45 minutes on 2 CPU cores (measured: RESULTS.md)
#   bash dev/experiments/run.sh --scale gpu     # a 6x384 base pretrained >= 5 minutes, everything on the GPU
#
# Every stage is resumable and the script is idempotent: a finished stage is skipped, an interrupted one
# continues from its last checkpoint (--resume-or-start; pretrain: from model_/state_ files; cl: from the
# adapters_taskNN.bin of each method). At gpu scale each command runs at most STAGE_SECONDS (600 s): pretrain
# is stopped by `timeout` and resumed from its latest checkpoint, cl runs one task of one method per call
# (--method M --stop-after N --resume-or-start).
#
# flags: --scale cpu|gpu (default cpu), --work DIR (runs; default out/experiments/<scale>),
#        --results DIR (committed results; default dev/experiments/results/<scale>), --jobs N (orders run in
#        parallel; default: cpu 3, gpu 1), --data DIR (default ../shared/data); TRAIN=path runs that binary
#        instead of ./train (a copy, so that a rebuild during the run does not change it)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

SCALE=cpu WORK="" RESULTS="" JOBS="" DATA=../shared/data
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --data) DATA=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "error: unknown flag '$1' (see --help)" >&2; exit 1 ;;
    esac
done
WORK=${WORK:-out/experiments/$SCALE}
RESULTS=${RESULTS:-dev/experiments/results/$SCALE}
ORDERS="1 2 3"
STAGE_SECONDS=600

case "$SCALE" in
    cpu)
        # sized to finish in 45 minutes on 2 cores (RESULTS.md: how the cpu scale was sized); a checkpoint every
        # 50 steps, so a stage stopped at STAGE_SECONDS redoes at most 50 (the run of record redid 162 of 500)
        DEVICE=cpu
        MODEL=4:128:4:50257:128        # L:C:NH:V:maxT
        PRE_BATCH=8 PRE_SEQ=128 PRE_STEPS=500 PRE_LR=3e-3 PRE_WARMUP=20 PRE_VAL_EVERY=25 PRE_CKPT=50
        CL_FLAGS="--max-train 96 --max-test 24 --max-seq-len 64 --epochs 2 --batch-size 8 --lr 1e-2
                  --lora-modules all --max-new-tokens 8 --eval-batch-size 24 --log-every 4"
        CL_STAGED=0
        JOBS=${JOBS:-3}
        ;;
    gpu)
        DEVICE=cuda
        MODEL=6:384:6:50257:256
        PRE_BATCH=32 PRE_SEQ=256 PRE_STEPS=6000 PRE_LR=1e-3 PRE_WARMUP=200 PRE_VAL_EVERY=250 PRE_CKPT=250
        CL_FLAGS="--max-seq-len 256 --epochs 1 --batch-size 16 --lr 1e-3 --max-new-tokens 8 --eval-batch-size 100
                  --log-every 5"
        CL_STAGED=1
        JOBS=${JOBS:-1}
        ;;
    *) echo "error: --scale must be cpu or gpu, got '$SCALE'" >&2; exit 1 ;;
esac

mkdir -p "$WORK" "$RESULTS"
LOG="$WORK/run.log"
say() { echo "[$(date '+%H:%M:%S')] $*" | tee -a "$LOG"; }
STARTED=$(date +%s)
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)  # what the run started from (collect.py records it)
TRAIN=${TRAIN:-./train}
[ -x "$TRAIN" ] || { echo "error: $TRAIN is missing: bash dev/setup.sh && make train" >&2; exit 1; }

# (a) tokenize ---------------------------------------------------------------------------------------------
TOKENS="$WORK/tokens"
if [ -f "$TOKENS/done" ]; then
    say "tokenize: done already ($TOKENS)"
else
    say "tokenize: $DATA/text -> $TOKENS"
    "$TRAIN" tokenize --input "$DATA/text/gutenberg_rcdm_uga/books" --input "$DATA/text/tinyshakespeare/input.txt" \
        --out "$TOKENS" --tokenizer "$DATA/tokenizer/gpt2" 2>&1 | tee -a "$LOG"
    touch "$TOKENS/done"
fi

# (b) pretrain ----------------------------------------------------------------------------------------------
BASE_DIR="$WORK/base"
BASE=$(printf '%s/model_%08d.bin' "$BASE_DIR" "$PRE_STEPS")
pretrain() {
    timeout "$STAGE_SECONDS" "$TRAIN" pretrain --device "$DEVICE" --model-config "$MODEL" \
        --train "$TOKENS/train_*.bin" --val "$TOKENS/val_*.bin" --out "$BASE_DIR" \
        --batch-size "$PRE_BATCH" --seq-len "$PRE_SEQ" --steps "$PRE_STEPS" --lr "$PRE_LR" --warmup "$PRE_WARMUP" \
        --val-every "$PRE_VAL_EVERY" --val-batches 4 --checkpoint-every "$PRE_CKPT" --resume-or-start >>"$BASE_DIR/pretrain.log" 2>&1
}
mkdir -p "$BASE_DIR"
while [ ! -f "$BASE" ]; do
    say "pretrain: $MODEL, $PRE_STEPS steps of ${PRE_BATCH}x$PRE_SEQ tokens -> $BASE_DIR (a stage of <= ${STAGE_SECONDS}s)"
    rc=0; pretrain || rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then say "pretrain failed ($rc): see $BASE_DIR/pretrain.log"; exit 1; fi
done
say "pretrain: done ($BASE); $(grep val_loss "$BASE_DIR/metrics.jsonl" | tail -1)"

# (c) continual learning ------------------------------------------------------------------------------------
cl_run() {  # cl_run DIR METHODS STOP_AFTER
    # shellcheck disable=SC2086
    "$TRAIN" cl --device "$DEVICE" --method "$2" --order "$order" --base "$BASE" \
        --benchmark "$DATA/cl_benchmark/LLM-CL-Benchmark_500" --tokenizer "$DATA/tokenizer/gpt2" \
        $CL_FLAGS --out "$1" --resume-or-start --stop-after "$3" >>"$1/cl.log" 2>&1
}
cl_order() {
    local order=$1 dir="$WORK/cl/order$1"
    mkdir -p "$dir"
    if [ -f "$dir/comparison.json" ]; then echo "order $order: done already"; return 0; fi
    if [ "$CL_STAGED" = 1 ]; then
        # a stage = one task of one method (well under STAGE_SECONDS), then one pass over every method that
        # only resumes (nothing left to train) and writes comparison.json
        for method in seqlora inclora replay mtl ilora olora nlora gainlora-olora gainlora-inflora amlora; do
            for stop in 1 2 3 4; do cl_run "$dir" "$method" "$stop" || return 1; done
        done
    fi
    cl_run "$dir" all 0
}
say "cl: orders $ORDERS, --method all, $JOBS at a time: $(echo $CL_FLAGS)"
pids=() running=0
for order in $ORDERS; do
    ( cl_order "$order" && say "cl: order $order done" || say "cl: order $order FAILED: see $WORK/cl/order$order/cl.log" ) &
    pids+=($!)
    running=$((running + 1))
    if [ $running -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
for order in $ORDERS; do [ -f "$WORK/cl/order$order/comparison.json" ] || { say "cl: order $order has no results"; exit 1; }; done

# (d) results -----------------------------------------------------------------------------------------------
say "samples: greedy continuations of the base"
bash dev/experiments/build_sample.sh
./build/experiments/sample --model "$BASE" --tokenizer "$DATA/tokenizer/gpt2" --tokens 40 \
    --prompt "The old man looked at the sea and" --prompt "ROMEO:" --prompt "It was a dark and stormy night," \
    --prompt "Chapter I" --prompt "The king said to his son," > "$WORK/samples.txt"
ELAPSED=$(( $(date +%s) - STARTED ))
say "collect: $RESULTS (this run: ${ELAPSED}s)"
python3 dev/experiments/collect.py --work "$WORK" --results "$RESULTS" --scale "$SCALE" \
    --command "bash dev/experiments/run.sh --scale $SCALE" --seconds "$ELAPSED" \
    --commit "$COMMIT" --binary "$TRAIN" --model "$MODEL" --cl-flags "$CL_FLAGS" \
    --pretrain "batch ${PRE_BATCH}x$PRE_SEQ, $PRE_STEPS steps, lr $PRE_LR cosine, warmup $PRE_WARMUP"
python3 dev/experiments/plots.py --results "$RESULTS"
say "done: $RESULTS"
