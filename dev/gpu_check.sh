#!/usr/bin/env bash
# Everything that needs a GPU, in one run: build; every GPU test against the CPU reference; every kernel
# lab (check + timing); PyTorch parity through `train verify --device cuda`; training throughput of GPT-2
# 124M-sized random weights (B=8, T=1024); the continual-learning run of every method on the GPU; data
# parallelism through NCCL (one rank under mpirun = the plain run; the all-reduce of the LoRA gradients, timed);
# the peer benchmark against PyTorch + PEFT (dev/bench/peer.py); then a one-screen summary table, printed last.
# Usage (on a GPU host, from the repository root): bash dev/gpu_check.sh [GPU_ARCHS]   (default 90)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
logs=${GPU_CHECK_LOGS:-/tmp/clora_gpu_check}
mkdir -p "$logs"
summary=()
row() { summary+=("$(printf '%-64.64s %-5s %s' "$1" "$2" "$3")"); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$logs/gpu.txt"
if ! bash dev/setup.sh >"$logs/setup.log" 2>&1; then  # OpenMPI for the data-parallel checks, among others
    tail -5 "$logs/setup.log"
    echo "gpu_check: dev/setup.sh failed (log: $logs/setup.log)"
    exit 1
fi
if ! make -j"$(nproc)" GPU_ARCHS="${1:-90}" train build/test_runner lab >"$logs/build.log" 2>&1; then
    tail -30 "$logs/build.log"
    echo "gpu_check: build failed (log: $logs/build.log)"
    exit 1
fi

# GPU tests (Catch2 names "cuda kernels: ..." and "cuda model: ..."), run once; the runner writes one
# "status<TAB>name" line per test (failures in detail: $logs/tests.log)
CLORA_TEST_REPORT="$logs/tests.tsv" ./build/test_runner "cuda*" >"$logs/tests.log" 2>&1
tests_status=$?
while IFS=$'\t' read -r status name; do
    row "$name" "$([ "$status" = fail ] && echo FAIL || echo "$status")" ""
done <"$logs/tests.tsv"

# the kernel lab: each program checks against its CPU reference and prints its timings
for lab in build/lab/*; do
    name=$(basename "$lab")
    if "$lab" >"$logs/lab_$name.log" 2>&1; then status=ok; else status=FAIL; fi
    row "lab $name" "$status" "$(grep -v '^\s*$' "$logs/lab_$name.log" | tail -1 | cut -c1-70)"
done

# PyTorch parity on the GPU
if ./train verify --model test/fixtures/gpt2_tiny.bin --state test/fixtures/gpt2_tiny_state.bin --device cuda \
    >"$logs/verify.log" 2>&1; then status=ok; else status=FAIL; fi
row "train verify --device cuda" "$status" "$(awk '$1=="logits"||$1=="wte"{printf "%s %s  ", $1, $2}' "$logs/verify.log")"

# throughput: GPT-2 124M shapes, random weights, synthetic tokens, 20 steps
./train pretrain --device cuda --model-config d12 --batch-size 8 --seq-len 1024 --steps 20 --val-every 0 \
    --val-batches 1 --out "$logs/pretrain" >"$logs/pretrain.log" 2>&1
status=$?
tokens_per_second=$(grep -E '^step +[0-9]+/20 \| loss' "$logs/pretrain.log" | tail -10 |
    awk -F'|' '{gsub(/[^0-9.]/, "", $6); total += $6; n++} END {if (n) printf "%.0f", total / n}')
row "pretrain d12 B=8 T=1024 (tok/s)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" "${tokens_per_second:-n/a} tok/s (mean of the last 10 steps)"

# continual learning on the GPU: the synthetic run of every method, its AA per method and wall time
start=$(date +%s.%N)
./train cl --device cuda --method all --out "$logs/cl" --log-every 0 >"$logs/cl.log" 2>&1
status=$?
seconds=$(echo "$(date +%s.%N) - $start" | bc)
row "train cl --device cuda --method all (synthetic)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
    "$(awk '/^method/{on=1; next} on && NF>=6 {printf "%s AA %s  ", $1, $2}' "$logs/cl.log")${seconds%.*} s"

# data parallelism: one rank under mpirun goes through NCCL (a sum over one GPU) and must match the plain run
# bit for bit (test "cuda distributed: ..." above runs the same check in Catch2); then the NCCL all-reduce of
# GPT-2 124M's LoRA gradients, timed (one rank here; on a multi-GPU node run it with mpirun -np <GPUs>)
mpi_root=$([ "$(id -u)" -eq 0 ] && echo --allow-run-as-root)
nccl_flags="--device cuda --model-config d12 --batch-size 4 --seq-len 256 --steps 5 --val-every 0 --val-batches 1"
./train pretrain $nccl_flags --out "$logs/plain_run" >"$logs/plain_run.log" 2>&1
mpirun $mpi_root -np 1 ./train pretrain $nccl_flags --out "$logs/nccl_run" >"$logs/nccl_run.log" 2>&1
status=$?
if [ $status -eq 0 ] && cmp -s "$logs/plain_run/model_00000005.bin" "$logs/nccl_run/model_00000005.bin"; then
    status=ok; else status=FAIL; fi
row "mpirun -np 1 pretrain d12 (NCCL) = plain run" "$status" "$(grep -c '| loss' "$logs/nccl_run.log") steps, final model bit-identical"
mpirun $mpi_root -np 1 build/bench/allreduce 50 >"$logs/allreduce.log" 2>&1
status=$?
row "NCCL all-reduce, LoRA r=8 qkv of d12 (1 rank)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
    "$(awk '/qkv/{print $(NF-4), "ms"}' "$logs/allreduce.log")"
row "NCCL all-reduce, full d12 gradient (1 rank)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
    "$(awk '/full gradient/{print $(NF-4), "ms"}' "$logs/allreduce.log")"

# the peer benchmark (issue 7): clora against PyTorch + PEFT on this GPU, d12 at T=1024, B=8 and 16 (its table:
# $logs/peer.log; every number: $logs/peer.json). PEER_PYTHON: a Python with torch, transformers and peft (without
# them the PyTorch rows are reported missing, not failed).
"${PEER_PYTHON:-python3}" dev/bench/peer.py --python "${PEER_PYTHON:-python3}" --out "$logs/peer.json" \
    >"$logs/peer.log" 2>"$logs/peer.err"
status=$?
row "peer benchmark vs PyTorch + PEFT (d12, T=1024, B=8,16)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
    "$(grep '^targets:' "$logs/peer.log" | cut -d';' -f1)"
row "peer: clora / best PyTorch, tok/s (B=8)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
    "$(python3 -c 'import json, sys
rows = json.load(open(sys.argv[1]))["table"]
print("  ".join("%s %.2fx" % (r["key"], r["ratio_to_best_pytorch"]) for r in rows
                if r["batch"] == 8 and r["key"] in ("lora", "full") and r["ratio_to_best_pytorch"]) or "n/a")' \
    "$logs/peer.json" 2>/dev/null)"

echo
echo "== clora gpu_check: $(head -1 "$logs/gpu.txt") =="
printf '%s\n' "${summary[@]}"
echo "logs: $logs"
[ $tests_status -eq 0 ] && ! printf '%s\n' "${summary[@]}" | grep -q " FAIL "
