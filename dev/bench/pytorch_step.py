#!/usr/bin/env python3
"""The PyTorch side of the peer benchmark (dev/bench/peer.py): the time of one training step (forward + backward +
optimizer) of GPT-2 with random weights, as a user of PyTorch + Hugging Face transformers (+ PEFT) would run it.

Per configuration (mode lora|full x variant eager|compiled x batch), one JSON line on stdout:
  - the model: transformers' GPT2LMHeadModel from a GPT2Config with clora's shapes (d12: 12 layers, 768 channels,
    12 heads, vocab 50257, 1024 positions; --tiny: 2:64:2:256:64), random init, the base's dropouts 0 (clora's
    GPT-2 has none), transformers' default attention (SDPA: PyTorch's fused flash / memory-efficient kernels);
  - lora: PEFT LoraConfig(target_modules=["c_attn"], r=8, lora_alpha=32, lora_dropout=0.1, fan_in_fan_out=True,
    bias="none") on the frozen base, as clora's `train_step --mode lora` (METHODS.md's defaults); full: every
    parameter trains;
  - precision (--precision auto: bf16 on CUDA, fp32 on the CPU, as clora): bf16 autocast over the forward, fp32
    master weights, gradients and AdamW state (the usual mixed precision of a PyTorch user; no GradScaler, which
    bf16 does not need), or fp32 throughout; the cross-entropy in fp32 over all B*T positions (random targets);
  - threads: torch's default (every core), or --threads;
  - the step: forward, loss, backward, clip_grad_norm_(1.0), AdamW (lr 3e-4, betas 0.9/0.999, eps 1e-8, weight
    decay 0: clora's defaults; fused=True on CUDA), zero_grad(set_to_none=True);
  - compiled: torch.compile of the module that computes the loss (model + cross-entropy), default mode;
  - timing: torch.cuda.synchronize before and after every step; --warmup steps first, not timed (the compiled
    variant's compilation happens there: first_step_seconds);
  - memory: peak_bytes = torch.cuda.max_memory_allocated from just after the model and optimizer were built (the
    weights included) to the last step; reserved_bytes = max_memory_reserved (the caching allocator's pool).
When torch, transformers or peft is missing, or --device cuda has no GPU, it prints one line
{"program": "pytorch", "skipped": "..."} and exits 0, so that the table shows the peer as missing.

Usage: python3 dev/bench/pytorch_step.py [--device cuda|cpu] [--tiny | --model-config L:C:NH:V:maxT] [--modes lora,full]
           [--variants eager,compiled] [--batches 8,16] [--seq 1024] [--steps 20] [--warmup 5]
"""
import argparse
import gc
import json
import sys
import time


def skipped(reason):
    print(json.dumps({"program": "pytorch", "skipped": reason}), flush=True)
    sys.exit(0)


def model_config(parser, args):
    """--model-config (default d12; --tiny: 2:64:2:256:64) and its shape (L, C, NH, V, maxT), as clora reads it."""
    text = args.model_config or ("2:64:2:256:64" if args.tiny else "d12")
    try:
        shape = (12, 768, 12, 50257, 1024) if text == "d12" else tuple(int(x) for x in text.split(":"))
        if len(shape) != 5:
            raise ValueError
    except ValueError:
        parser.error(f"--model-config: d12 or L:C:NH:V:maxT, got {text!r}")
    return text, shape


def parse_arguments():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="the 2:64:2:256:64 model (a CPU check of this script)")
    p.add_argument("--model-config", default=None,
                   help="d12 or L:C:NH:V:maxT, as clora's (default d12; --tiny: 2:64:2:256:64)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="bf16: autocast over the forward; fp32: none (auto: bf16 on CUDA, fp32 on the CPU, as clora)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's, every core)")
    p.add_argument("--modes", default="lora,full")
    p.add_argument("--variants", default="eager,compiled")
    p.add_argument("--batches", default="8,16")
    p.add_argument("--seq", type=int, default=None, help="default 1024 (--tiny: 32)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    args.variants = [v for v in args.variants.split(",") if v]
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.model_config, args.shape = model_config(p, args)
    if args.seq is None:
        args.seq = 32 if args.tiny else min(1024, args.shape[4])
    if args.precision == "auto":
        args.precision = "bf16" if args.device == "cuda" else "fp32"
    for m in args.modes:
        if m not in ("lora", "full"):
            p.error(f"--modes: lora or full, got {m!r}")
    for v in args.variants:
        if v not in ("eager", "compiled"):
            p.error(f"--variants: eager or compiled, got {v!r}")
    return args


def main():
    args = parse_arguments()
    try:
        import torch
        import torch.nn.functional as F
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception as error:  # ImportError, or a broken install
        skipped(f"torch / transformers not importable ({error})")
    peft = None
    if "lora" in args.modes:
        try:
            import peft
        except Exception as error:
            skipped(f"peft not importable ({error})")
    if args.device == "cuda" and not torch.cuda.is_available():
        skipped("no CUDA device visible to torch")
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    # clora's model configs: d12 = L 12, C 768, NH 12, V 50257, maxT 1024; tiny = 2:64:2:256:64
    L, C, NH, V, maxT = args.shape
    if args.threads:
        torch.set_num_threads(args.threads)
    autocast = args.precision == "bf16"
    if args.seq > maxT:
        sys.exit(f"error: --seq {args.seq} exceeds the model's {maxT} positions")

    def synchronize():
        if cuda:
            torch.cuda.synchronize()

    class LossModel(torch.nn.Module):
        """The model and its cross-entropy (fp32) over every position: what torch.compile gets, whole."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, inputs, targets):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = self.model(input_ids=inputs).logits
            return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))

    def run(mode, variant, B):
        torch.manual_seed(args.seed)
        config = GPT2Config(n_layer=L, n_embd=C, n_head=NH, vocab_size=V, n_positions=maxT, resid_pdrop=0.0,
                            embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2LMHeadModel(config)
        parameters = sum(p.numel() for p in model.parameters())
        if mode == "lora":
            lora_config = peft.LoraConfig(target_modules=["c_attn"], r=args.lora_rank, lora_alpha=args.lora_alpha,
                                          lora_dropout=args.lora_dropout, fan_in_fan_out=True, bias="none")
            model = peft.get_peft_model(model, lora_config)
        model.to(device).train()
        trained = [p for p in model.parameters() if p.requires_grad]
        try:
            optimizer = torch.optim.AdamW(trained, lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                          fused=cuda)
        except (TypeError, RuntimeError):  # a torch without fused AdamW
            optimizer = torch.optim.AdamW(trained, lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        step_module = LossModel(model)
        if variant == "compiled":
            step_module = torch.compile(step_module)
        generator = torch.Generator().manual_seed(args.seed)
        inputs = torch.randint(0, V - 1, (B, args.seq), generator=generator).to(device)
        targets = torch.randint(0, V - 1, (B, args.seq), generator=generator).to(device)

        def step():
            loss = step_module(inputs, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.item()

        if cuda:
            synchronize()
            torch.cuda.reset_peak_memory_stats()
        times, losses, first_step_seconds = [], [], None
        for t in range(args.warmup + args.steps):
            synchronize()
            start = time.perf_counter()
            losses.append(step())
            synchronize()
            seconds = time.perf_counter() - start
            if t == 0:
                first_step_seconds = seconds
            if t >= args.warmup:
                times.append(seconds * 1000)
        ms = sum(times) / len(times)
        ordered = sorted(times)
        middle = len(ordered) // 2
        median = ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])
        line = {
            "program": "pytorch", "mode": mode, "variant": variant, "device": device.type,
            "model_config": args.model_config,
            "precision": "bf16 autocast, fp32 master weights, gradients and AdamW state" if autocast else "fp32",
            "threads": torch.get_num_threads(),
            "attention": getattr(config, "_attn_implementation", None) or "eager",
            "batch": B, "seq": args.seq, "steps": args.steps, "warmup": args.warmup,
            "lora_rank": args.lora_rank if mode == "lora" else None,
            "lora_alpha": args.lora_alpha if mode == "lora" else None,
            "lora_dropout": args.lora_dropout if mode == "lora" else None,
            "lora_modules": "c_attn" if mode == "lora" else "",
            "parameters": parameters, "trained_parameters": sum(p.numel() for p in trained),
            "ms_per_step": ms, "ms_median": median, "ms_min": ordered[0],
            "tokens_per_second": B * args.seq / (ms / 1000),
            "first_step_seconds": first_step_seconds, "first_loss": losses[0], "last_loss": losses[-1],
            "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__ if peft else None,
            "fused_adamw": bool(optimizer.defaults.get("fused")),
        }
        return line

    for mode in args.modes:
        for variant in args.variants:
            for B in args.batches:
                try:
                    line = run(mode, variant, B)
                except Exception as error:  # out of memory, a compile failure: this configuration only
                    line = {"program": "pytorch", "mode": mode, "variant": variant, "batch": B, "seq": args.seq,
                            "error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
                print(json.dumps(line), flush=True)
                gc.collect()
                if cuda:
                    torch.cuda.empty_cache()
                if variant == "compiled":
                    torch._dynamo.reset()


if __name__ == "__main__":
    main()
