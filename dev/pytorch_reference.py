"""PyTorch reference for clora's parity tests.

Builds a tiny random GPT-2 from scratch (plain torch, no transformers library), exactly as
llm.c's train_gpt2.py computes it, and writes the fixtures the C++ tests compare against:

  test/fixtures/gpt2_tiny.bin           llm.c checkpoint (version 3) of the initial weights
  test/fixtures/gpt2_tiny_state.bin     llm.c debug state: inputs, targets, logits, loss, gradients
  test/fixtures/gpt2_tiny_training.txt  losses of 10 AdamW steps, and a masked loss

Run from anywhere:  /usr/bin/python3 dev/pytorch_reference.py
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)
torch.manual_seed(1337)

# ---------------------------------------------------------------- configuration (odd sizes on purpose)
maxT, V, Vp, L, NH, C = 16, 67, 128, 2, 4, 36  # Vp: V padded up to a multiple of 128, as llm.c does
B, T = 3, 7
hs = C // NH  # head size
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")

# ---------------------------------------------------------------- parameters, in checkpoint order
# Per-layer tensors stack the L layers along dim 0, exactly as llm.c lays them out in memory.
def normal(shape, std, mean=0.0):
    return torch.nn.Parameter(mean + std * torch.randn(shape))

params = {
    "wte": normal((V, C), 0.1),              # token embedding, tied with the output head
    "wpe": normal((maxT, C), 0.05),          # position embedding
    "ln1w": normal((L, C), 0.1, mean=1.0),
    "ln1b": normal((L, C), 0.05),
    "qkvw": normal((L, 3 * C, C), 0.1),
    "qkvb": normal((L, 3 * C), 0.05),
    "attprojw": normal((L, C, C), 0.1),
    "attprojb": normal((L, C), 0.05),
    "ln2w": normal((L, C), 0.1, mean=1.0),
    "ln2b": normal((L, C), 0.05),
    "fcw": normal((L, 4 * C, C), 0.1),
    "fcb": normal((L, 4 * C), 0.05),
    "fcprojw": normal((L, C, 4 * C), 0.1),
    "fcprojb": normal((L, C), 0.05),
    "lnfw": normal((C,), 0.1, mean=1.0),
    "lnfb": normal((C,), 0.05),
}
P = params  # short alias for the forward

# ---------------------------------------------------------------- data: x = seq[:, :-1], y = seq[:, 1:]
gen = torch.Generator().manual_seed(42)
seq = torch.randint(0, V, (B, T + 1), generator=gen)
x, y = seq[:, :-1], seq[:, 1:]  # (B, T) each
loss_weights = torch.ones(B, T)
loss_weights[:, :3] = 0.0  # masked-loss check: ignore the first 3 positions of every row

# ---------------------------------------------------------------- the model
def layernorm(x, w, b):  # x (..., C)
    return F.layer_norm(x, (C,), w, b, eps=1e-5)

def gelu(x):  # tanh approximation, as GPT-2
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

def attention(qkv):
    """qkv (B, T, 3C) -> y (B, T, C): causal multi-head self-attention, before the projection."""
    Bq, Tq, _ = qkv.shape
    q, k, v = qkv.split(C, dim=2)                       # each (B, T, C): q first, then k, then v
    q = q.view(Bq, Tq, NH, hs).transpose(1, 2)         # (B, NH, T, hs)
    k = k.view(Bq, Tq, NH, hs).transpose(1, 2)
    v = v.view(Bq, Tq, NH, hs).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)     # (B, NH, T, T)
    causal = torch.tril(torch.ones(Tq, Tq, dtype=torch.bool))
    att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
    y = att @ v                                         # (B, NH, T, hs)
    return y.transpose(1, 2).contiguous().view(Bq, Tq, C)  # heads merged back: (B, T, C)

def attention_loop(qkv):
    """The same attention, written as plain loops over batch, head and position (a cross-check)."""
    Bq, Tq, _ = qkv.shape
    y = torch.zeros(Bq, Tq, C)
    for b in range(Bq):
        for h in range(NH):
            cols = slice(h * hs, (h + 1) * hs)
            for t in range(Tq):
                q = qkv[b, t, 0 * C:1 * C][cols]                        # (hs,)
                k = qkv[b, : t + 1, 1 * C:2 * C][:, cols]               # (t+1, hs): past and present only
                v = qkv[b, : t + 1, 2 * C:3 * C][:, cols]
                w = torch.softmax(k @ q / math.sqrt(hs), dim=0)         # (t+1,)
                y[b, t, cols] = w @ v
    return y

def forward(x):
    """x (B, T) token ids -> logits (B, T, V)."""
    Tx = x.shape[1]
    h = P["wte"][x] + P["wpe"][:Tx]                                       # (B, T, C)
    for l in range(L):
        qkv = layernorm(h, P["ln1w"][l], P["ln1b"][l]) @ P["qkvw"][l].T + P["qkvb"][l]   # (B, T, 3C)
        h = h + attention(qkv) @ P["attprojw"][l].T + P["attprojb"][l]                  # (B, T, C)
        fc = layernorm(h, P["ln2w"][l], P["ln2b"][l]) @ P["fcw"][l].T + P["fcb"][l]     # (B, T, 4C)
        h = h + gelu(fc) @ P["fcprojw"][l].T + P["fcprojb"][l]                          # (B, T, C)
    return layernorm(h, P["lnfw"], P["lnfb"]) @ P["wte"].T                # tied head: (B, T, V)

def per_position_loss(logits, y):  # (B, T, V), (B, T) -> (B, T)
    return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="none").view(y.shape)

# ---------------------------------------------------------------- self-check of the attention
with torch.no_grad():
    probe = torch.randn(B, T, 3 * C)
    assert torch.allclose(attention(probe), attention_loop(probe), atol=1e-6), "attention mismatch"

# ---------------------------------------------------------------- forward + backward at the initial weights
logits = forward(x)
losses = per_position_loss(logits, y)
loss = losses.mean()                       # mean over all B*T positions
loss.backward()
with torch.no_grad():
    masked_loss = (loss_weights * losses).sum() / loss_weights.sum()

# ---------------------------------------------------------------- writing llm.c's binary formats
def header(*values):  # 256 int32, the given values first
    h = np.zeros(256, dtype="<i4")
    h[: len(values)] = values
    return h.tobytes()

def padded_wte(t):  # (V, C) -> (Vp, C), rows V..Vp-1 zero
    return torch.cat([t, torch.zeros(Vp - V, C)])

def tensors_bytes(tensors):  # the 16 tensors, each flattened row-major, as little-endian fp32
    out = [padded_wte(tensors["wte"])] + [tensors[name] for name in list(params)[1:]]
    return b"".join(t.detach().numpy().astype("<f4").tobytes() for t in out)

def f32(t):
    return t.detach().numpy().astype("<f4").tobytes()

os.makedirs(FIXTURES, exist_ok=True)
with open(os.path.join(FIXTURES, "gpt2_tiny.bin"), "wb") as f:
    f.write(header(20240326, 3, maxT, V, L, NH, C, Vp))
    f.write(tensors_bytes(params))
with open(os.path.join(FIXTURES, "gpt2_tiny_state.bin"), "wb") as f:
    f.write(header(20240327, 2, B, T))
    f.write(x.numpy().astype("<i4").tobytes())
    f.write(y.numpy().astype("<i4").tobytes())
    f.write(f32(logits))                   # (B, T, V), unpadded
    f.write(f32(loss.reshape(1)))
    f.write(tensors_bytes({name: p.grad for name, p in params.items()}))

# ---------------------------------------------------------------- 10 AdamW steps on the same batch
lr, beta1, beta2, eps, weight_decay, grad_clip = 1e-3, 0.9, 0.999, 1e-8, 0.1, 1.0
decayed = ["wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"]  # the weight matrices; the rest: no decay
optimizer = torch.optim.AdamW(
    [{"params": [params[n] for n in decayed], "weight_decay": weight_decay},
     {"params": [p for n, p in params.items() if n not in decayed], "weight_decay": 0.0}],
    lr=lr, betas=(beta1, beta2), eps=eps)
train_losses = []
for step in range(10):
    optimizer.zero_grad()
    step_loss = per_position_loss(forward(x), y).mean()
    train_losses.append(step_loss.item())  # the loss before update `step`
    step_loss.backward()
    torch.nn.utils.clip_grad_norm_(params.values(), grad_clip)
    optimizer.step()
assert train_losses[-1] < train_losses[0], "the fixture should train"

def g(v):
    return "%.9g" % v

with open(os.path.join(FIXTURES, "gpt2_tiny_training.txt"), "w") as f:
    f.write("steps 10\n")
    for key, value in [("learning_rate", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps),
                       ("weight_decay", weight_decay), ("grad_clip", grad_clip)]:
        f.write(f"{key} {g(value)}\n")
    f.write("losses " + " ".join(g(v) for v in train_losses) + "\n")
    f.write("loss_weights " + " ".join(g(w) for w in loss_weights.flatten().tolist()) + "\n")
    f.write(f"masked_loss {g(masked_loss.item())}\n")

print(f"loss {loss.item():.6f}  masked loss {masked_loss.item():.6f}")
print("training losses", " ".join(f"{v:.6f}" for v in train_losses))
print("wrote", os.path.normpath(FIXTURES))
