#!/usr/bin/env bash
# The real-data study (issues 6 and 18), one command, resumable cell by cell:
#   (a) the corpus: Gutenberg books + tinyshakespeare (../shared/data/text), and the prompts (never the answers,
#       never a test split) of the Standard CL tasks' train splits (dev/experiments/domain_corpus.py), tokenized;
#       25 train prompts per task are held out of it to measure the base on the tasks' text,
#   (b) a GPT-2 base pretrained on that mixture, rows at seeded random offsets (`--data-order random`), in
#       stages of at most STAGE_SECONDS, each resuming from the latest checkpoint; at cpu scale also the base of
#       the previous study's recipe (books only, read in order), to compare; losses and samples of both,
#   (c) the sanity gate: SeqLoRA trained on each task alone, its label-ranking accuracy on that task,
#   (d) every method (ten) x Standard CL orders 1, 2, 3 x the seeds, each (method, order, seed) a cell of its
#       own: a finished cell is never retrained, an interrupted one resumes from its last finished task;
#       orders run as 1, 3, 2, and order 2 starts from a copy of order 1's state after their two shared first
#       tasks (dev/experiments/fork_cell.py),
#   (e) the tables, summary.json and the plots (collect.py, plots.py).
#
#   bash dev/experiments/run.sh --scale cpu     # hours on 2 cores, in as many sessions as it takes (RESULTS.md)
#   bash dev/experiments/run.sh --scale gpu     # a larger base, everything on the GPU
#
# flags: --scale cpu|gpu (default cpu), --work DIR (runs; default out/experiments/<scale>),
#        --results DIR (committed results; default dev/experiments/results/<scale>), --jobs N (cells run at once;
#        default: cpu 2, one thread each; gpu 1), --data DIR (default ../shared/data), --seeds "1 2 3",
#        --until base|gate|cells (stop after that stage; default: everything); TRAIN=path runs that binary instead
#        of ./train (a copy, so that a rebuild during the run does not change it)
set -euo pipefail
cd "$(dirname "$0")/../.."

SCALE=cpu WORK="" RESULTS="" JOBS="" DATA=../shared/data SEEDS="1 2 3" UNTIL=all
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --data) DATA=$2; shift 2 ;;
        --seeds) SEEDS=$2; shift 2 ;;
        --until) UNTIL=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "error: unknown flag '$1' (see --help)" >&2; exit 1 ;;
    esac
done
case "$UNTIL" in base|gate|cells|all) ;; *) echo "error: --until must be base, gate or cells" >&2; exit 1 ;; esac
WORK=${WORK:-out/experiments/$SCALE}
RESULTS=${RESULTS:-dev/experiments/results/$SCALE}
ORDERS="1 3 2"  # order 2 last: it starts from order 1's first two tasks (the cells, below)
# the baselines the issue's checks compare first (SeqLoRA's forgetting, Replay's BWT, MTL's AA), then the rest
METHODS="seqlora replay mtl inclora ilora olora nlora gainlora-olora gainlora-inflora amlora"
TASKS="dbpedia amazon yahoo agnews"
STAGE_SECONDS=600  # gpu scale: a device session's limit; cpu scale sets its own

case "$SCALE" in
    cpu)
        DEVICE=cpu
        MODEL=6:256:8:50257:128        # L:C:NH:V:maxT
        PRE_BATCH=8 PRE_SEQ=128 PRE_STEPS=3000 PRE_LR=2e-3 PRE_WARMUP=100 PRE_VAL_EVERY=250 PRE_CKPT=100
        STAGE_SECONDS=14400  # no device session to fit: a stage ends when the session does (checkpoints: 100 steps)
        # the previous study's base (RESULTS.md of issue 6), for the before/after comparison
        BEFORE_MODEL=4:128:4:50257:128 BEFORE_STEPS=500 BEFORE_LR=3e-3 BEFORE_WARMUP=20
        # 500 train / 100 test examples per task, 16 epochs of batch 8: 1008 optimizer steps per task, lr 1e-3, no
        # LoRA dropout (the gate's probes, RESULTS.md: at 2 epochs, or with dropout 0.1 and lr 3e-3, the adapters
        # learn only the labels' frequencies)
        CL_FLAGS="--max-train 500 --max-test 100 --max-seq-len 128 --epochs 16 --batch-size 8 --lr 1e-3
                  --lora-dropout 0 --lora-modules all --max-new-tokens 8 --eval-batch-size 32 --log-every 63"
        # the methods' own settings, for the cells (not the gate): I-LoRA's EMA at the paper's 0.99, a 100-step
        # time constant, now that a task has 1008 steps (the default 0.95 is for tasks of ~100 steps)
        METHOD_FLAGS="--ilora-ema 0.99"
        JOBS=${JOBS:-2}
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # JOBS single-threaded cells use the cores best
        ;;
    gpu)
        DEVICE=cuda
        MODEL=6:384:6:50257:256
        PRE_BATCH=32 PRE_SEQ=256 PRE_STEPS=6000 PRE_LR=1e-3 PRE_WARMUP=200 PRE_VAL_EVERY=250 PRE_CKPT=250
        BEFORE_MODEL=""
        CL_FLAGS="--max-seq-len 256 --epochs 2 --batch-size 16 --lr 1e-3 --lora-modules all --max-new-tokens 8
                  --eval-batch-size 128 --log-every 10"
        METHOD_FLAGS=""
        JOBS=${JOBS:-1}
        ;;
    *) echo "error: --scale must be cpu or gpu, got '$SCALE'" >&2; exit 1 ;;
esac

mkdir -p "$WORK" "$RESULTS"
LOG="$WORK/run.log"
say() { echo "[$(date '+%H:%M:%S')] $*" | tee -a "$LOG"; }
# each stage's wall time, summed over the sessions that ran it (collect.py reports them)
timed() {  # timed NAME COMMAND...: runs it, adds its seconds to $WORK/times/NAME
    local name=$1 start rc=0
    shift
    mkdir -p "$WORK/times"
    start=$(date +%s)
    "$@" || rc=$?
    echo $(( $(date +%s) - start )) >> "$WORK/times/$name"
    return $rc
}
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)  # what the run started from (collect.py records it)
TRAIN=${TRAIN:-./train}
[ -x "$TRAIN" ] || { echo "error: $TRAIN is missing: bash dev/setup.sh && make train" >&2; exit 1; }
TOKENIZER="$DATA/tokenizer/gpt2"

# (a) the corpus -------------------------------------------------------------------------------------------
TOKENS="$WORK/tokens"
corpus() {
    "$TRAIN" tokenize --input "$DATA/text/gutenberg_rcdm_uga/books" --input "$DATA/text/tinyshakespeare/input.txt" \
        --out "$TOKENS/books" --tokenizer "$TOKENIZER"
    python3 dev/experiments/domain_corpus.py --data "$DATA" --out "$WORK/domain"
    "$TRAIN" tokenize --input "$WORK/domain/train" --out "$TOKENS/prompts" --val-fraction 0 --tokenizer "$TOKENIZER"
    "$TRAIN" tokenize --input "$WORK/domain/held_out" --out "$WORK/held_out_prompts" --val-fraction 0 \
        --tokenizer "$TOKENIZER"
}
if [ -f "$TOKENS/done" ]; then
    say "corpus: done already ($TOKENS)"
else
    say "corpus: books and task prompts -> $TOKENS"
    timed corpus corpus 2>&1 | tee -a "$LOG"
    touch "$TOKENS/done"
fi

# (b) the base ----------------------------------------------------------------------------------------------
pretrain_stages() {  # pretrain_stages DIR MODEL STEPS LR WARMUP ORDER TRAIN_GLOB
    local dir=$1 final rc
    final=$(printf '%s/model_%08d.bin' "$dir" "$3")
    mkdir -p "$dir"
    while [ ! -f "$final" ]; do
        say "pretrain: $2, $3 steps of ${PRE_BATCH}x$PRE_SEQ tokens, $6 order -> $dir (a stage of <= ${STAGE_SECONDS}s)"
        rc=0
        timeout "$STAGE_SECONDS" "$TRAIN" pretrain --device "$DEVICE" --model-config "$2" --train "$7" \
            --val "$TOKENS/books/val_*.bin" --out "$dir" --batch-size "$PRE_BATCH" --seq-len "$PRE_SEQ" \
            --steps "$3" --lr "$4" --warmup "$5" --data-order "$6" --val-every "$PRE_VAL_EVERY" --val-batches 8 \
            --checkpoint-every "$PRE_CKPT" --resume-or-start >>"$dir/pretrain.log" 2>&1 || rc=$?
        if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then say "pretrain failed ($rc): see $dir/pretrain.log"; exit 1; fi
    done
}
BASE_DIR="$WORK/base"
BASE=$(printf '%s/model_%08d.bin' "$BASE_DIR" "$PRE_STEPS")
OMP_NUM_THREADS=$(nproc) timed pretrain pretrain_stages "$BASE_DIR" "$MODEL" "$PRE_STEPS" "$PRE_LR" "$PRE_WARMUP" random \
    "$TOKENS/*/train_*.bin"
# its hash names it in the log: one commit, flags and data have given two bases (results/cpu/RESULTS.md)
say "pretrain: done ($BASE, sha256 $(sha256sum "$BASE" | cut -c1-64)); $(grep val_loss "$BASE_DIR/metrics.jsonl" | tail -1)"
# dev/experiments/sample.cpp, over the library, in the Makefile's build folder (build-cpu/ when CPU_ONLY=1 or no nvcc)
SAMPLE=build/experiments/sample
{ [ "${CPU_ONLY:-0}" = 1 ] || ! command -v "${NVCC:-nvcc}" >/dev/null; } && SAMPLE=build-cpu/experiments/sample
make -s "$SAMPLE"
describe_base() {  # describe_base MODEL OUT: losses on held-out books and prompts, greedy and sampled text
    OMP_NUM_THREADS=$(nproc) "./$SAMPLE" --model "$1" --tokenizer "$TOKENIZER" --tokens 40 \
        --loss "held-out books=$TOKENS/books/val_*.bin" --loss "held-out task prompts=$WORK/held_out_prompts/train_*.bin" \
        --loss-batches 16 \
        --prompt "The old man looked at the sea and" --prompt "ROMEO:" --prompt "It was a dark and stormy night," \
        --prompt "What is the topic of the following paragraph? Choose one from the option.
Option: World, Sports, Business, Science or Technology 
Title: Stocks rally as oil prices fall
Text:" > "$2"
}
[ -s "$WORK/base_samples.txt" ] || describe_base "$BASE" "$WORK/base_samples.txt"
if [ -n "$BEFORE_MODEL" ]; then
    BEFORE_DIR="$WORK/base_before"
    OMP_NUM_THREADS=$(nproc) timed pretrain_before pretrain_stages "$BEFORE_DIR" "$BEFORE_MODEL" "$BEFORE_STEPS" \
        "$BEFORE_LR" "$BEFORE_WARMUP" sequential "$TOKENS/books/train_*.bin"
    [ -s "$WORK/base_before_samples.txt" ] || \
        describe_base "$(printf '%s/model_%08d.bin' "$BEFORE_DIR" "$BEFORE_STEPS")" "$WORK/base_before_samples.txt"
fi
[ "$UNTIL" = base ] && { say "stopped after the base (--until base)"; exit 0; }

# (c), (d) the cells ----------------------------------------------------------------------------------------
cell() {  # cell DIR METHOD ORDER SEED: one train cl run, resumed where it stopped (a finished one only rewrites its
    # results, in seconds; a cell whose flags changed since it ran is refused by train cl, naming the difference).
    # CELL_FLAGS: the stage's own flags after CL_FLAGS. Cells of one folder (an order's methods) wait for each other.
    local dir=$1
    mkdir -p "$dir"
    if [ "$3" = 2 ] && [ -n "$FORK" ]; then
        python3 dev/experiments/fork_cell.py --source "${dir%order2}order1" --target "$dir" --method "$2" \
            --shared dbpedia,amazon --order 2 | tee -a "$LOG"
    fi
    # shellcheck disable=SC2086
    if flock "$dir/.cells.lock" "$TRAIN" cl --device "$DEVICE" --method "$2" --order "$3" --seed "$4" --base "$BASE" \
        --benchmark "$DATA/cl_benchmark/LLM-CL-Benchmark_500" --tokenizer "$TOKENIZER" $CL_FLAGS $CELL_FLAGS \
        --out "$dir" --resume-or-start >>"$dir/cl_$2.log" 2>&1; then
        say "cell $dir/$2: done"
    else
        say "cell $dir/$2: FAILED (see $dir/cl_$2.log)"
        return 1
    fi
}
run_cells() {  # runs the queued cells ("DIR METHOD ORDER SEED" lines on stdin), JOBS at a time
    local running=0 failed=0 line
    while read -r line; do
        # shellcheck disable=SC2086
        cell $line &
        running=$((running + 1))
        if [ $running -ge "$JOBS" ]; then wait -n || failed=1; running=$((running - 1)); fi
    done
    while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
    return $failed
}
CELL_FLAGS="" FORK=""
say "gate: SeqLoRA on each task alone, seeds $SEEDS"
for seed in $SEEDS; do for task in $TASKS; do echo "$WORK/single/seed$seed/$task seqlora $task $seed"; done; done |
    timed gate run_cells
[ "$UNTIL" = gate ] && { say "stopped after the gate (--until gate)"; exit 0; }
CELL_FLAGS=$METHOD_FLAGS
say "cells: $(echo $METHODS | wc -w) methods x orders $ORDERS x seeds $SEEDS, $JOBS at a time: $(echo $CL_FLAGS $CELL_FLAGS)"
# Orders 1 (dbpedia, amazon, yahoo, agnews) and 2 (dbpedia, amazon, agnews, yahoo) begin with the same two tasks: an
# order-2 cell starts from its order-1 cell's state after amazon (fork_cell.py), when that exists, so those tasks
# train once. Queued after orders 1 and 3 ($ORDERS), it finds it. (The same bytes as training them again: check_fork.sh.)
FORK=1
# method by method, each over every order and seed, so that a method's mean and std come as early as they can
for method in $METHODS; do for seed in $SEEDS; do for order in $ORDERS; do
    echo "$WORK/cl/seed$seed/order$order $method $order $seed"
done; done; done | timed cells run_cells
[ "$UNTIL" = cells ] && { say "stopped after the cells (--until cells)"; exit 0; }

# (e) results -----------------------------------------------------------------------------------------------
say "collect: $RESULTS"
python3 dev/experiments/collect.py --work "$WORK" --results "$RESULTS" --scale "$SCALE" --seeds "$SEEDS" \
    --command "bash dev/experiments/run.sh --scale $SCALE" --commit "$COMMIT" --binary "$TRAIN" --model "$MODEL" \
    --cl-flags "$CL_FLAGS $METHOD_FLAGS" \
    --pretrain "batch ${PRE_BATCH}x$PRE_SEQ, $PRE_STEPS steps, lr $PRE_LR cosine, warmup $PRE_WARMUP, random order"
python3 dev/experiments/plots.py --results "$RESULTS" --work "$WORK"
say "done: $RESULTS"
