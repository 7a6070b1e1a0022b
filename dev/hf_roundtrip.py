"""Hugging Face round trip of `train import-hf`, `export-hf` and `export-peft`, checked by transformers and PEFT.

On a random GPT-2 of the shape --config (L:C:NH:V:maxT):
  1. transformers saves it (safetensors); `train import-hf` converts it; `train verify` compares clora's logits, loss
     and all 16 gradients with transformers' on one batch (an llm.c debug state written here)  -> "import-hf: loss matches"
  2. `train export-hf` writes the imported model back; transformers loads it with no missing or unexpected key and
     the same weights bit for bit                                                          -> "export-hf: weights match"
  3. a clora adapter file of two random LoRA branches on all four linears (written here in clora's format);
     `train export-peft` exports it, PEFT loads it on that model; `train export-hf --merge` merges it, and
     `train import-hf` + `train verify` compare clora's forward of the merged model with PEFT's forward
     (logits and loss) and the merged model's gradients                                     -> "export-peft: logits match",
                                                                                               "export-hf --merge: logits match"

  python dev/hf_roundtrip.py [--config 12:768:12:50257:1024] [--train ./train] [--work DIR]

Needs torch, transformers, peft and safetensors; exit status 0 only when every check passes.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import GPT2Config, GPT2LMHeadModel

ADAPTER_MAGIC, ADAPTER_VERSION = 20261122, 1
MODULES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]  # clora's qkv, attn_proj, fc, fc_proj


def run(*command):
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    print(result.stdout + result.stderr, end="", flush=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}")
    return result.stdout


def header(*values):  # 256 int32, the given values first
    h = np.zeros(256, dtype="<i4")
    h[: len(values)] = values
    return h.tobytes()


def llmc_tensors(model, Vp, grads):
    """The 16 tensors (or their gradients) of a transformers GPT-2 in llm.c's order and layout, as fp32 bytes."""
    def get(p):
        return (p.grad if grads else p).detach().float()
    t = model.transformer
    V, C = t.wte.weight.shape
    wte = torch.cat([get(t.wte.weight), torch.zeros(Vp - V, C)])
    per_layer = lambda f: torch.stack([f(block) for block in t.h])  # noqa: E731
    tensors = [wte, get(t.wpe.weight),
               per_layer(lambda b: get(b.ln_1.weight)), per_layer(lambda b: get(b.ln_1.bias)),
               per_layer(lambda b: get(b.attn.c_attn.weight).T), per_layer(lambda b: get(b.attn.c_attn.bias)),
               per_layer(lambda b: get(b.attn.c_proj.weight).T), per_layer(lambda b: get(b.attn.c_proj.bias)),
               per_layer(lambda b: get(b.ln_2.weight)), per_layer(lambda b: get(b.ln_2.bias)),
               per_layer(lambda b: get(b.mlp.c_fc.weight).T), per_layer(lambda b: get(b.mlp.c_fc.bias)),
               per_layer(lambda b: get(b.mlp.c_proj.weight).T), per_layer(lambda b: get(b.mlp.c_proj.bias)),
               get(t.ln_f.weight), get(t.ln_f.bias)]
    return b"".join(x.contiguous().numpy().astype("<f4").tobytes() for x in tensors)


def write_debug_state(path, x, y, logits, loss, grad_model, Vp):
    """llm.c's debug state (version 2): inputs, targets, logits (B, T, V), the loss, the 16 gradients."""
    B, T = x.shape
    with open(path, "wb") as f:
        f.write(header(20240327, 2, B, T))
        f.write(x.numpy().astype("<i4").tobytes())
        f.write(y.numpy().astype("<i4").tobytes())
        f.write(logits.detach().float().numpy().astype("<f4").tobytes())
        f.write(np.array([loss], dtype="<f4").tobytes())
        f.write(llmc_tensors(grad_model, Vp, grads=True))


def write_adapter_file(path, L, C, rank, alpha, branches, generator):
    """A clora adapter file (lora/adapter_file.h) of `branches` random branches on all four linears, unsealed
    (checksum slots 0, as llm.c's files: read unverified). Layout: per layer, per module, A (R, in) then Bt (R, out)."""
    shapes = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)]  # (in, out) of qkv, attn_proj, fc, fc_proj
    R = branches * rank
    values = []
    for _ in range(L):
        for d_in, d_out in shapes:
            values.append(torch.randn(R, d_in, generator=generator) / d_in ** 0.5)
            values.append(0.5 * torch.randn(R, d_out, generator=generator) / rank)
    lora = torch.cat([v.reshape(-1) for v in values]).numpy().astype("<f4")
    alpha_bits = struct.unpack("<i", struct.pack("<f", alpha))[0]
    with open(path, "wb") as f:
        f.write(header(ADAPTER_MAGIC, ADAPTER_VERSION, L, C, rank, 0b1111, branches, branches - 1, alpha_bits, 0, 1, 1))
        f.write(struct.pack("<i", 4) + b"lora" + struct.pack("<q", lora.size) + lora.tobytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="12:768:12:50257:1024", help="L:C:NH:V:maxT of the random GPT-2")
    parser.add_argument("--train", default="./train")
    parser.add_argument("--work", default=None, help="folder for the files (default: a temporary one)")
    parser.add_argument("--batch", default="2x32", help="BxT of the checked batch")
    args = parser.parse_args()
    L, C, NH, V, maxT = (int(v) for v in args.config.split(":"))
    B, T = (int(v) for v in args.batch.split("x"))
    Vp = (V + 127) // 128 * 128
    work = args.work or tempfile.mkdtemp(prefix="clora_hf_")
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    print(f"GPT-2 L={L} C={C} NH={NH} V={V} maxT={maxT}, random weights; batch {B}x{T}; files in {work}")

    config = GPT2Config(vocab_size=V, n_positions=maxT, n_embd=C, n_layer=L, n_head=NH, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=V - 1, eos_token_id=V - 1)
    model = GPT2LMHeadModel(config).float().eval()
    model.save_pretrained(os.path.join(work, "hf"))
    tokens = torch.randint(0, V, (B, T + 1))
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    # 1. import-hf, then clora's forward and backward against transformers'
    run(args.train, "import-hf", "--hf", os.path.join(work, "hf"), "--out", os.path.join(work, "base.bin"))
    logits = model(input_ids=x).logits
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    write_debug_state(os.path.join(work, "state.bin"), x, y, logits, loss.item(), model, Vp)
    run(args.train, "verify", "--model", os.path.join(work, "base.bin"), "--state", os.path.join(work, "state.bin"),
        "--device", "cpu", "--tolerance", "1e-4")
    print(f"import-hf: loss matches (transformers {loss.item():.6f}; clora's within 1e-4, see verify above)")

    # 2. export-hf, loaded by transformers
    run(args.train, "export-hf", "--model", os.path.join(work, "base.bin"), "--out", os.path.join(work, "exported"))
    exported, info = GPT2LMHeadModel.from_pretrained(os.path.join(work, "exported"), output_loading_info=True)
    missing = [k for k in info["missing_keys"] if k != "lm_head.weight"]
    assert not missing and not info["unexpected_keys"], info
    for (name, ours), (_, theirs) in zip(exported.state_dict().items(), model.state_dict().items()):
        assert torch.equal(ours, theirs), name
    print("export-hf: weights match (every tensor bit for bit, no missing or unexpected key)")

    # 3. adapters: export-peft into PEFT, export-hf --merge into clora
    rank, alpha, branches = 4, 8.0, 2
    adapters = os.path.join(work, "adapters_task01.bin")
    write_adapter_file(adapters, L, C, rank, alpha, branches, torch.Generator().manual_seed(1))
    run(args.train, "export-peft", "--adapters", adapters, "--out", os.path.join(work, "peft"))
    peft_model = PeftModel.from_pretrained(exported, os.path.join(work, "peft")).eval()
    with torch.no_grad():
        peft_logits = peft_model(input_ids=x).logits
    peft_loss = F.cross_entropy(peft_logits.reshape(-1, V), y.reshape(-1)).item()
    change = (peft_logits - logits).abs().max().item()
    assert change > 1e-3, f"the adapters change nothing ({change})"

    run(args.train, "export-hf", "--model", os.path.join(work, "base.bin"), "--adapters", adapters, "--merge",
        "--out", os.path.join(work, "merged_hf"))
    run(args.train, "import-hf", "--hf", os.path.join(work, "merged_hf"), "--out", os.path.join(work, "merged.bin"))
    merged = GPT2LMHeadModel.from_pretrained(os.path.join(work, "merged_hf")).float().eval()
    merged_loss = F.cross_entropy(merged(input_ids=x).logits.reshape(-1, V), y.reshape(-1))
    merged_loss.backward()
    assert abs(merged_loss.item() - peft_loss) < 1e-4 * abs(peft_loss), (merged_loss.item(), peft_loss)
    write_debug_state(os.path.join(work, "state_peft.bin"), x, y, peft_logits, peft_loss, merged, Vp)
    out = run(args.train, "verify", "--model", os.path.join(work, "merged.bin"), "--state",
              os.path.join(work, "state_peft.bin"), "--device", "cpu", "--tolerance", "1e-4")
    logits_error = next(line for line in out.splitlines() if line.strip().startswith("logits"))
    print(f"export-peft: logits match (PEFT's forward with the exported adapters {peft_loss:.6f} vs clora's "
          f"forward of its merge: {' '.join(logits_error.split())})")
    print(f"export-hf --merge: logits match (clora's merge, loaded by transformers: loss {merged_loss.item():.6f}; "
          f"PEFT's {peft_loss:.6f})")


if __name__ == "__main__":
    main()
