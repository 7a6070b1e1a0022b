#!/usr/bin/env bash
# Builds build/experiments/sample (dev/experiments/sample.cpp) against the CPU backend and the objects that
# `make train` built; skipped when up to date.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/experiments/sample
mkdir -p build/experiments
if [ -x "$OUT" ] && [ "$OUT" -nt dev/experiments/sample.cpp ] && [ "$OUT" -nt model/gpt2.h ] && [ "$OUT" -nt data/token_loader.cpp ]; then exit 0; fi
g++ -I. -isystem /usr/include/eigen3 -O3 -march=x86-64-v3 -std=c++17 dev/experiments/sample.cpp \
    build/data/tokenizer.o build/data/token_loader.o build/data/token_shard.o build/data/checksum.o build/data/utf8.o build/data/file_io.o build/data/llmc_header.o build/model/checkpoint.o \
    build/model/gpt2_config.o build/lora/lora_config.o -lpcre2-8 -o "$OUT"
