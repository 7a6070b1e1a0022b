#!/usr/bin/env python3
"""O-LoRA's or N-LoRA's penalty at a task boundary, read from a cell's adapter file.

    python3 dev/experiments/branch_penalty.py --method olora out/experiments/cpu/cl/seed1/order1/olora/adapters_task04.bin
    python3 dev/experiments/branch_penalty.py --method nlora out/experiments/cpu/cl/seed1/order1/nlora/adapters_task01.bin

For each file, on the newest branch (A_t: its r rows of A; B_t = Bt_t^T, (out,r)), summed over the adapted linears:
  olora: L_orth = sum_pq |(A_old A_t^T)_pq|, A_old the earlier branches' rows (lora/METHODS.md section 5), with its
         mean |entry|;
  nlora: L_1 = r^2 * mean |B_t A_t|, the default (scaled) form (section 6).
and the lambda-weighted value (--weight: 0.5 for O-LoRA's lambda1, 0.4 for N-LoRA's lambda, as the study runs them).
The file's layout is lora/adapter_file.h's header and tensors, the "lora" tensor in model/lora_adapters.h's order
(layer by layer, module by module: A (R,in), then Bt (R,out)). Pure Python (no numpy): at the CPU study's size,
under a second a file for olora, about ten seconds for nlora (every d_out x d_in entry).
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


def newest_branches(path):
    """Yields (A_old rows, A_t rows, Bt_t rows) of every adapted linear, each row a tuple of floats; also the rank."""
    layers, channels, rank, module_mask, branches, values = read_lora_tensor(path)
    rows, offset = branches * rank, 0
    for _ in range(layers):
        for module, (in_units, out_units) in enumerate(MODULE_SHAPES):
            if not (module_mask >> module) & 1:
                continue
            width, out = in_units * channels, out_units * channels
            A = [values[offset + i * width:offset + (i + 1) * width] for i in range(rows)]
            offset += rows * width
            Bt = [values[offset + i * out:offset + (i + 1) * out] for i in range(rows)]
            offset += rows * out
            first_new = (branches - 1) * rank
            yield A[:first_new], A[first_new:], Bt[first_new:], rank
    if offset != len(values):
        raise SystemExit(f"{path}: the 'lora' tensor has {len(values)} values, the layout {offset}")


def orthogonality_penalty(path):
    """(L_orth, number of entries of A_old A_t^T summed) for the file's newest branch."""
    total, entries = 0.0, 0
    for old, new, _, _ in newest_branches(path):
        if not old:
            raise SystemExit(f"{path}: one branch, no old A to be orthogonal to")
        for a in old:
            for b in new:
                total += abs(sum(x * y for x, y in zip(a, b)))
        entries += len(old) * len(new)
    return total, entries


def sparsity_penalty(path):
    """N-LoRA's scaled L1 of the newest branch's update: sum over the linears of r^2 * mean |B_t A_t|."""
    total = 0.0
    for _, A, Bt, rank in newest_branches(path):
        columns = list(zip(*Bt))  # B_t's rows: (out) of r values each
        absolute_sum = 0.0
        for b in columns:
            for column in zip(*A):  # A_t's columns: (in) of r values each
                absolute_sum += abs(sum(x * y for x, y in zip(b, column)))
        total += rank * rank * absolute_sum / (len(columns) * len(A[0]))
    return total


def report(path, method, weight):
    """Prints one file's penalty."""
    if method == "olora":
        penalty, entries = orthogonality_penalty(path)
        print(f"{path}: L_orth {penalty:.4f}, lambda1 * L_orth {weight * penalty:.4f}, "
              f"mean |entry| {penalty / entries:.2e} over {entries} entries")
    else:
        penalty = sparsity_penalty(path)
        print(f"{path}: L_1 {penalty:.4f}, lambda * L_1 {weight * penalty:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="adapters_taskNN.bin of an olora or nlora cell")
    parser.add_argument("--method", choices=["olora", "nlora"], required=True, help="which penalty")
    parser.add_argument("--weight", type=float, help="its lambda (default: 0.5 for olora, 0.4 for nlora)")
    args = parser.parse_args()
    weight = args.weight if args.weight is not None else {"olora": 0.5, "nlora": 0.4}[args.method]
    for path in args.files:
        try:
            report(path, args.method, weight)
        except (OSError, struct.error) as error:  # unreadable, or shorter than its header's counts
            raise SystemExit(f"{path}: cannot read it as a clora adapter file ({error})")


if __name__ == "__main__":
    main()
