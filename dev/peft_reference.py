"""Hugging Face PEFT reference for clora's LoRA: test/fixtures/peft_lora.txt.

Loads the parity fixture's tiny GPT-2 (test/fixtures/gpt2_tiny.bin, its batch from gpt2_tiny_state.bin, both
written by dev/pytorch_reference.py) into transformers' GPT2LMHeadModel, checks that it gives the fixture's loss,
puts PEFT LoRA adapters (r = 4, alpha = 8, no dropout) on all four linears of every block (c_attn, attn.c_proj,
mlp.c_fc, mlp.c_proj: clora's qkv, attn_proj, fc, fc_proj), sets their A and B to seeded random values (B nonzero,
so that A has a gradient), and writes `key value...` lines: rank, alpha, the loss (mean cross-entropy over the
batch), and for each layer l and module m: A.l.m (r, in) and B.l.m (out, r) as PEFT holds them (lora_A.weight,
lora_B.weight), with their gradients dA.l.m and dB.l.m.

clora keeps A as is and B transposed (Bt (r, out)); test/test_pytorch_parity.cpp maps them.

Run from anywhere, with a Python that has torch, transformers and peft:  python dev/peft_reference.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")
RANK, ALPHA = 4, 8.0
MODULES = [("qkv", "attn.c_attn"), ("attn_proj", "attn.c_proj"), ("fc", "mlp.c_fc"), ("fc_proj", "mlp.c_proj")]


def read_checkpoint(path):  # llm.c version 3: 256 int32, then the 16 tensors in fp32
    header = np.fromfile(path, dtype="<i4", count=256)
    assert header[0] == 20240326 and header[1] == 3, "not an llm.c version 3 checkpoint"
    maxT, V, L, NH, C, Vp = (int(v) for v in header[2:8])
    data = np.fromfile(path, dtype="<f4", offset=256 * 4)
    shapes = [("wte", (Vp, C)), ("wpe", (maxT, C)), ("ln1w", (L, C)), ("ln1b", (L, C)), ("qkvw", (L, 3 * C, C)),
              ("qkvb", (L, 3 * C)), ("attprojw", (L, C, C)), ("attprojb", (L, C)), ("ln2w", (L, C)),
              ("ln2b", (L, C)), ("fcw", (L, 4 * C, C)), ("fcb", (L, 4 * C)), ("fcprojw", (L, C, 4 * C)),
              ("fcprojb", (L, C)), ("lnfw", (C,)), ("lnfb", (C,))]
    tensors, offset = {}, 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        tensors[name] = torch.tensor(data[offset:offset + size].reshape(shape))
        offset += size
    assert offset == data.size, "trailing data in the checkpoint"
    return dict(maxT=maxT, V=V, L=L, NH=NH, C=C), tensors


def read_batch(path, V):  # llm.c debug state version 2: 256 int32 (magic, version, B, T), inputs, targets,
    header = np.fromfile(path, dtype="<i4", count=256)  # logits (B, T, V), the loss, the gradients
    assert header[0] == 20240327 and header[1] == 2, "not an llm.c version 2 debug state"
    B, T = int(header[2]), int(header[3])
    tokens = np.fromfile(path, dtype="<i4", count=2 * B * T, offset=256 * 4)
    loss = np.fromfile(path, dtype="<f4", count=1, offset=(256 + 2 * B * T + B * T * V) * 4)[0]
    x, y = (torch.tensor(part.reshape(B, T)).long() for part in (tokens[:B * T], tokens[B * T:]))
    return x, y, float(loss)


def tiny_model():
    """transformers' GPT2LMHeadModel holding the parity fixture's weights, checked against the fixture's loss;
    returns (model, inputs, targets, shape)."""
    shape, w = read_checkpoint(os.path.join(FIXTURES, "gpt2_tiny.bin"))
    V, L, C = shape["V"], shape["L"], shape["C"]
    x, y, fixture_loss = read_batch(os.path.join(FIXTURES, "gpt2_tiny_state.bin"), V)
    config = GPT2Config(vocab_size=V, n_positions=shape["maxT"], n_embd=C, n_layer=L, n_head=shape["NH"],
                        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        layer_norm_epsilon=1e-5, tie_word_embeddings=True, bos_token_id=V - 1, eos_token_id=V - 1)
    model = GPT2LMHeadModel(config).float()
    # transformers' Conv1D holds weight (in, out): the transpose of llm.c's (out, in)
    with torch.no_grad():
        t = model.transformer
        t.wte.weight.copy_(w["wte"][:V])
        t.wpe.weight.copy_(w["wpe"])
        for l, block in enumerate(t.h):
            block.ln_1.weight.copy_(w["ln1w"][l]), block.ln_1.bias.copy_(w["ln1b"][l])
            block.attn.c_attn.weight.copy_(w["qkvw"][l].T), block.attn.c_attn.bias.copy_(w["qkvb"][l])
            block.attn.c_proj.weight.copy_(w["attprojw"][l].T), block.attn.c_proj.bias.copy_(w["attprojb"][l])
            block.ln_2.weight.copy_(w["ln2w"][l]), block.ln_2.bias.copy_(w["ln2b"][l])
            block.mlp.c_fc.weight.copy_(w["fcw"][l].T), block.mlp.c_fc.bias.copy_(w["fcb"][l])
            block.mlp.c_proj.weight.copy_(w["fcprojw"][l].T), block.mlp.c_proj.bias.copy_(w["fcprojb"][l])
        t.ln_f.weight.copy_(w["lnfw"]), t.ln_f.bias.copy_(w["lnfb"])
    model.eval()  # no dropout anywhere (the adapters' is 0 too)
    with torch.no_grad():
        base_loss = float(F.cross_entropy(model(input_ids=x).logits.reshape(-1, V), y.reshape(-1)))
    # the weights went where they belong: transformers' GPT-2 gives the fixture's own loss
    assert abs(base_loss - fixture_loss) < 1e-5 * fixture_loss, (base_loss, fixture_loss)
    return model, x, y, shape


def main():
    torch.manual_seed(0)
    model, x, y, shape = tiny_model()
    V, L = shape["V"], shape["L"]

    def loss_of(m):
        logits = m(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    with torch.no_grad():
        base_loss = float(loss_of(model))

    lora = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, bias="none", fan_in_fan_out=True,
                      target_modules=["c_attn", "c_proj", "c_fc"])
    peft_model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(7)
    adapters = {}
    with torch.no_grad():
        for l in range(L):
            for name, path in MODULES:
                module = peft_model.base_model.model.transformer.h[l].get_submodule(path)
                A, B = module.lora_A["default"].weight, module.lora_B["default"].weight  # (r, in), (out, r)
                A.copy_(0.2 * torch.randn(A.shape, generator=generator))
                B.copy_(0.2 * torch.randn(B.shape, generator=generator))
                adapters[(l, name)] = (A, B)
    loss = loss_of(peft_model)
    loss.backward()

    def values(t):
        return " ".join(f"{v:.9g}" for v in t.detach().reshape(-1).tolist())

    lines = [f"rank {RANK}", f"alpha {ALPHA:g}", f"base_loss {base_loss:.9g}", f"loss {loss.item():.9g}"]
    for (l, name), (A, B) in adapters.items():
        lines += [f"A.{l}.{name} {values(A)}", f"B.{l}.{name} {values(B)}",
                  f"dA.{l}.{name} {values(A.grad)}", f"dB.{l}.{name} {values(B.grad)}"]
    out = os.path.join(FIXTURES, "peft_lora.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"base loss {base_loss:.6f}, with the adapters {float(loss):.6f}; wrote {out}")


if __name__ == "__main__":
    main()
