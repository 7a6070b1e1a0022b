#!/usr/bin/env bash
# Checks fork_cell.py: an order-2 cell started from order 1's state after its first two tasks (dbpedia, amazon) ends
# with the same bytes as one trained from its first task: the adapter file of every task boundary (adapters, the
# method's state, evaluation rows) and results.json's accuracies, for every method. Tiny settings (16 train and 4
# test examples per task, one epoch): about 25 minutes on one core beside two cells. Needs the benchmark, the
# tokenizer and a base.
#
#   bash dev/experiments/check_fork.sh BASE.bin [WORK]      # TRAIN=path runs that binary instead of ./train
#                                                           # METHODS="mtl ..." checks only those
# The order-1 source stops after its second task, the state of an order-1 cell still running when run.sh forks it.
# Prints one line per method and task boundary, "same" or "DIFFER", and exits 1 when anything differs or a method
# was not forked (an unforked order 2 would match trivially).
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${1:?usage: check_fork.sh BASE.bin [WORK]}
WORK=${2:-/tmp/clora_check_fork}
TRAIN=${TRAIN:-./train}
METHODS=${METHODS:-seqlora inclora replay mtl ilora olora nlora gainlora-olora gainlora-inflora amlora}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
FLAGS="--device cpu --seed 1 --base $BASE --max-train 16 --max-test 4 --max-seq-len 128 --epochs 1 --batch-size 8
       --lr 1e-3 --lora-dropout 0 --lora-modules all --max-new-tokens 8 --eval-batch-size 32 --ilora-ema 0.99
       --method $(echo $METHODS | tr ' ' ,)"
rm -rf "$WORK" && mkdir -p "$WORK"
# shellcheck disable=SC2086
run() { "$TRAIN" cl $FLAGS --order "$1" --out "$WORK/$2" "${@:3}" > "$WORK/$2.log" 2>&1 || { cat "$WORK/$2.log"; exit 1; }; }
run 1 order1 --stop-after 2
failed=0
for method in $METHODS; do
    said=$(python3 dev/experiments/fork_cell.py --source "$WORK/order1" --target "$WORK/forked" --method "$method" \
        --shared dbpedia,amazon --order 2)
    echo "$said"
    case "$said" in *"starts after task 2"*) ;; *) echo "$method: NOT FORKED"; failed=1 ;; esac
done
"$TRAIN" cl $FLAGS --order 2 --out "$WORK/forked" --resume > "$WORK/forked.log" 2>&1 || { cat "$WORK/forked.log"; exit 1; }
run 2 order2
for method in $METHODS; do
    for k in 01 02 03 04; do
        if cmp -s "$WORK/order2/$method/adapters_task$k.bin" "$WORK/forked/$method/adapters_task$k.bin"; then
            echo "$method after task $k: same"
        else
            echo "$method after task $k: DIFFER"; failed=1
        fi
    done
    python3 - "$WORK/order2/$method/results.json" "$WORK/forked/$method/results.json" <<'EOF' || failed=1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
same = (a["tasks"], a["modes"]) == (b["tasks"], b["modes"])
print(f"{a['method']} results.json: {'same' if same else 'DIFFER'} (rank AA {a['modes']['rank']['average_accuracy']:.1f})")
sys.exit(0 if same else 1)
EOF
done
exit $failed
