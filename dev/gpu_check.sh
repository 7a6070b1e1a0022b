#!/usr/bin/env bash
# Everything that needs a GPU, in one run: build; every GPU test against the CPU reference; every kernel
# lab (check + timing); PyTorch parity through `train verify --device cuda`; training throughput of GPT-2
# 124M-sized random weights (B=8, T=1024); the continual-learning run of every method on the GPU; data
# parallelism through NCCL (one rank under mpirun = the plain run; the all-reduce of the LoRA gradients, timed);
# the peer benchmark against PyTorch + PEFT (dev/bench/peer.py); then a one-screen summary table, printed last.
# Usage (on a GPU host, from the repository root): bash dev/gpu_check.sh [GPU_ARCHS]   (default 90)
# On a host that reaches no package registry, carry .deps/debs (bash dev/gpu_deps.sh, run where one is reached).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
logs=${GPU_CHECK_LOGS:-/tmp/clora_gpu_check}
mkdir -p "$logs"
summary=()
row() { summary+=("$(printf '%-64.64s %-5s %s' "$1" "$2" "$3")"); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$logs/gpu.txt"
# The build's Debian packages: carried in .deps/debs (dev/gpu_deps.sh, run where a registry is reached; the lent GPU
# machine reaches none), else installed by dev/setup.sh.
make_flags=(GPU_ARCHS="${1:-90}")
if [ -d .deps/debs ]; then
    if ! bash dev/gpu_deps.sh --unpack >"$logs/setup.log" 2>&1; then
        cat "$logs/setup.log"; echo "gpu_check: unpacking .deps failed"; exit 1
    fi
    make_flags+=(DEPS=.deps/root)
    export PATH="$PATH:$PWD/.deps/root/usr/bin"  # the carried make, when the machine has none
    row "dependencies: carried .deps (dev/gpu_deps.sh)" ok "$(tail -1 "$logs/setup.log" | cut -c1-70)"
elif ! bash dev/setup.sh >"$logs/setup.log" 2>&1; then
    tail -5 "$logs/setup.log"
    echo "gpu_check: dev/setup.sh failed (log: $logs/setup.log); where no registry is reached, carry .deps/debs" \
        "(bash dev/gpu_deps.sh)"
    exit 1
fi
# NCCL and cuBLAS: the CUDA toolkit's, else those of the machine's Python wheels (nvidia-nccl-cu13, nvidia-cublas),
# else a copy unpacked into .deps/root; each row says which.
cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
wheel_dirs=$(python3 -c 'import nvidia; print(" ".join(nvidia.__path__))' 2>/dev/null || true)
locate() {  # library header make_variable: adds the variable to make_flags when the library is outside the toolkit
    local library=$1 header=$2 variable=$3 dir found home
    if [ -f "$cuda_root/include/$header" ] && ls "$cuda_root"/lib64/lib"$library".so* >/dev/null 2>&1; then
        row "$library: the CUDA toolkit's" ok "$cuda_root"; return
    fi
    for dir in $wheel_dirs; do
        for found in $(find "$dir" -path "*/include/$header" 2>/dev/null); do
            home=$(dirname "$(dirname "$found")")
            if ls "$home"/lib/lib"$library".so* >/dev/null 2>&1; then
                make_flags+=("$variable=$home")
                export LD_LIBRARY_PATH="$home/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
                row "$library: the Python wheel's" ok "$home"; return
            fi
        done
    done
    if [ -f .deps/root/usr/include/"$header" ]; then row "$library: carried in .deps/root" ok ""; return; fi
    row "$library: not found (toolkit, Python wheels, .deps/root)" FAIL "$header"
}
locate nccl nccl.h NCCL_HOME
locate cublas cublas_v2.h CUBLAS_HOME
mpi_available=$(command -v mpirun >/dev/null && echo yes || echo no)
if ! make -j"$(nproc)" "${make_flags[@]}" train build/test_runner lab >"$logs/build.log" 2>&1; then
    tail -30 "$logs/build.log"
    printf '%s\n' "${summary[@]}"
    echo "gpu_check: build failed (log: $logs/build.log)"
    exit 1
fi
row "build (make ${make_flags[*]})" ok "$(grep -c '^\(g++\|nvcc\)' "$logs/build.log") commands"

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
    --val-batches 1 --overwrite --out "$logs/pretrain" >"$logs/pretrain.log" 2>&1
status=$?
tokens_per_second=$(grep -E '^step +[0-9]+/20 \| loss' "$logs/pretrain.log" | tail -10 |
    awk -F'|' '{gsub(/[^0-9.]/, "", $6); total += $6; n++} END {if (n) printf "%.0f", total / n}')
row "pretrain d12 B=8 T=1024 (tok/s)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" "${tokens_per_second:-n/a} tok/s (mean of the last 10 steps)"

# continual learning on the GPU: the synthetic run of every method, its AA per method and wall time
start=$SECONDS
./train cl --device cuda --method all --overwrite --out "$logs/cl" --log-every 0 >"$logs/cl.log" 2>&1
status=$?
seconds=$((SECONDS - start))
row "train cl --device cuda --method all (synthetic)" "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
    "$(awk '/^method/{on=1; next} on && NF>=6 {printf "%s AA %s  ", $1, $2}' "$logs/cl.log")${seconds%.*} s"

# data parallelism: one rank under mpirun goes through NCCL (a sum over one GPU) and must match the plain run
# bit for bit (test "cuda distributed: ..." above runs the same check in Catch2); then the NCCL all-reduce of
# GPT-2 124M's LoRA gradients, timed (one rank here; on a multi-GPU node run it with mpirun -np <GPUs>)
if [ "$mpi_available" = yes ]; then
    mpi_root=$([ "$(id -u)" -eq 0 ] && echo --allow-run-as-root)
    nccl_flags="--device cuda --model-config d12 --batch-size 4 --seq-len 256 --steps 5 --val-every 0 --val-batches 1"
    ./train pretrain $nccl_flags --overwrite --out "$logs/plain_run" >"$logs/plain_run.log" 2>&1
    mpirun $mpi_root -np 1 ./train pretrain $nccl_flags --overwrite --out "$logs/nccl_run" >"$logs/nccl_run.log" 2>&1
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
else
    for what in "mpirun -np 1 pretrain d12 (NCCL) = plain run" "NCCL all-reduce, LoRA r=8 qkv of d12 (1 rank)" \
        "NCCL all-reduce, full d12 gradient (1 rank)"; do
        row "$what" skip "mpirun absent (OpenMPI is not carried; the build has no MPI)"
    done
fi

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
{
    echo "== clora gpu_check: $(head -1 "$logs/gpu.txt") =="
    printf '%s\n' "${summary[@]}"
} | tee "$logs/summary.txt"
echo "logs: $logs"
# GPU_CHECK_RESULTS=DIR: the summary and the peer benchmark's JSON copied there (few files: the device tool returns 8)
if [ -n "${GPU_CHECK_RESULTS:-}" ]; then
    mkdir -p "$GPU_CHECK_RESULTS" && cp "$logs/summary.txt" "$logs/peer.json" "$logs/tests.log" "$GPU_CHECK_RESULTS"/ 2>/dev/null
fi
[ $tests_status -eq 0 ] && ! printf '%s\n' "${summary[@]}" | grep -q " FAIL "
