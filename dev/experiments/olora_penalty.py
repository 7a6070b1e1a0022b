#!/usr/bin/env python3
"""O-LoRA's orthogonality penalty at a task boundary, read from a cell's adapter file.

    python3 dev/experiments/olora_penalty.py out/experiments/cpu/cl/seed1/order1/olora/adapters_task0{2,3,4}.bin

For each file: L_orth = sum over the adapted linears of sum_pq |(A_old A_t^T)_pq| (lora/METHODS.md section 5), with
A_t the newest branch's r rows of A and A_old the earlier branches' rows; the lambda1-weighted value (--lambda1,
0.5 as the study runs it); and the mean |entry|. The file's layout is lora/adapter_file.h's header and tensors,
the "lora" tensor in model/lora_adapters.h's order (layer by layer, module by module: A (R,in), then Bt (R,out)).
Pure Python (no numpy), a few seconds a file at the CPU study's size.
"""
import argparse
import struct

MAGIC = 20261122
# (in, out) of each LoraModule in units of the channels C: qkv, attn_proj, fc, fc_proj (model/lora_config.h)
MODULE_SHAPES = [(1, 3), (1, 1), (1, 4), (4, 1)]


def read_lora_tensor(path):
    """The header's counts and the "lora" tensor's values."""
    data = open(path, "rb").read()
    header = struct.unpack_from("<256i", data, 0)
    if header[0] != MAGIC:
        raise SystemExit(f"{path}: not a clora adapter file (magic {header[0]}, expected {MAGIC})")
    layers, channels, rank, module_mask, branches, tensors = (header[2], header[3], header[4], header[5],
                                                               header[6], header[10])
    offset = 1024
    for _ in range(tensors):
        (name_length,) = struct.unpack_from("<i", data, offset)
        name = data[offset + 4:offset + 4 + name_length].decode("ascii")
        (count,) = struct.unpack_from("<q", data, offset + 4 + name_length)
        offset += 12 + name_length
        if name == "lora":
            values = struct.unpack_from(f"<{count}f", data, offset)
            return layers, channels, rank, module_mask, branches, values
        offset += 4 * count
    raise SystemExit(f"{path}: no 'lora' tensor")


def orthogonality_penalty(path):
    """(L_orth, number of entries of A_old A_t^T summed) for the file's newest branch."""
    layers, channels, rank, module_mask, branches, values = read_lora_tensor(path)
    if branches < 2:
        raise SystemExit(f"{path}: one branch, no old A to be orthogonal to")
    rows = branches * rank
    total, entries, offset = 0.0, 0, 0
    for _ in range(layers):
        for module, (in_units, out_units) in enumerate(MODULE_SHAPES):
            if not (module_mask >> module) & 1:
                continue
            width, out = in_units * channels, out_units * channels
            A = [values[offset + i * width:offset + (i + 1) * width] for i in range(rows)]
            offset += rows * (width + out)
            new, old = A[(branches - 1) * rank:], A[:(branches - 1) * rank]
            for a in old:
                for b in new:
                    total += abs(sum(x * y for x, y in zip(a, b)))
            entries += len(old) * len(new)
    if offset != len(values):
        raise SystemExit(f"{path}: the 'lora' tensor has {len(values)} values, the layout {offset}")
    return total, entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="adapters_taskNN.bin of an olora cell")
    parser.add_argument("--lambda1", type=float, default=0.5, help="O-LoRA's lambda1 (default 0.5)")
    args = parser.parse_args()
    for path in args.files:
        penalty, entries = orthogonality_penalty(path)
        print(f"{path}: L_orth {penalty:.4f}, lambda1 * L_orth {args.lambda1 * penalty:.4f}, "
              f"mean |entry| {penalty / entries:.2e} over {entries} entries")


if __name__ == "__main__":
    main()
