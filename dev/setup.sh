#!/usr/bin/env bash
# Installs what clora needs from Debian's packages (when missing) and checks for the CUDA toolkit (with NCCL).
# Used by README's commands and by .ci/run. Run as root (or with sudo available).
set -euo pipefail
packages=(make g++ libeigen3-dev catch2 libpcre2-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin)
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
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "setup: the CUDA toolkit (nvcc, cuBLAS) is required to build; install it and put nvcc on PATH" >&2
    exit 1
fi
cuda_root=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
if [ ! -f "$cuda_root/include/nccl.h" ] && [ ! -f /usr/include/nccl.h ]; then
    echo "setup: NCCL (nccl.h, libnccl) is required to build; install it beside the CUDA toolkit" >&2
    exit 1
fi
echo "setup: ok"
