#!/usr/bin/env bash
# Installs what clora's build needs from Debian's packages (when missing). Used by README's commands and by .ci/run.
# Run as root (or with sudo available).
#   - always: make, g++, Eigen, Catch2, PCRE2, nlohmann-json (the CPU-only build, `make CPU_ONLY=1`, needs no more);
#   - with the CUDA toolkit (nvcc on PATH or in /usr/local/cuda), or with --mpi: OpenMPI too, for runs over several
#     processes (mpirun); the toolkit must bring NCCL as well.
# Without the CUDA toolkit, `make` builds the CPU-only clora.
set -euo pipefail
packages=(make g++ libeigen3-dev catch2 libpcre2-dev nlohmann-json3-dev)
cuda=0
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then cuda=1; fi
if [ $cuda = 1 ] || [ "${1:-}" = "--mpi" ]; then packages+=(libopenmpi-dev openmpi-bin); fi
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_prefix=""
    [ "$(id -u)" -ne 0 ] && sudo_prefix="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo_prefix apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ $cuda = 0 ]; then
    echo "setup: ok (no CUDA toolkit: make builds the CPU-only clora; bash dev/setup.sh --mpi adds OpenMPI)"
    exit 0
fi
cuda_root=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
if [ ! -f "$cuda_root/include/nccl.h" ] && [ ! -f /usr/include/nccl.h ]; then
    echo "setup: NCCL (nccl.h, libnccl) is required by the GPU build; install it beside the CUDA toolkit" \
         "(or build the CPU-only clora: make CPU_ONLY=1)" >&2
    exit 1
fi
echo "setup: ok"
