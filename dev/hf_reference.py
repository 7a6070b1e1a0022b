"""Hugging Face fixtures for test/test_hf.cpp: what transformers and PEFT themselves write, in test/fixtures/hf/.

  gpt2_tiny/                 GPT2LMHeadModel.save_pretrained of the parity fixture's model (test/fixtures/gpt2_tiny.bin,
                             loaded by dev/peft_reference.py's tiny_model): config.json, model.safetensors (fp32)
  gpt2_tiny_fp16.safetensors the same tensors as fp16 (the importer widens them)
  peft_tiny/                 PeftModel.save_pretrained of LoRA adapters holding test/fixtures/peft_lora.txt's A and B
                             (r 4, alpha 8, all four linears, fan_in_fan_out): adapter_config.json,
                             adapter_model.safetensors
  peft_tiny_logits.safetensors  "logits" (B, T, V): PEFT's forward of the parity batch with those adapters
  merged_tiny/               merge_and_unload() of that PEFT model, saved as in gpt2_tiny/

Run from anywhere, with a Python that has torch, transformers, peft and safetensors:  python dev/hf_reference.py
"""
import os
import shutil

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

from peft_reference import FIXTURES, MODULES, tiny_model


def read_key_values(path):  # "key v1 v2 ..." lines
    values = {}
    with open(path) as f:
        for line in f:
            key, *numbers = line.split()
            values[key] = [float(v) for v in numbers]
    return values


def main():
    out = os.path.join(FIXTURES, "hf")
    shutil.rmtree(out, ignore_errors=True)
    model, x, y, shape = tiny_model()
    V, L = shape["V"], shape["L"]
    model.save_pretrained(os.path.join(out, "gpt2_tiny"))
    tensors = load_file(os.path.join(out, "gpt2_tiny", "model.safetensors"))
    save_file({k: v.half() for k, v in tensors.items()}, os.path.join(out, "gpt2_tiny_fp16.safetensors"),
              metadata={"format": "pt"})

    values = read_key_values(os.path.join(FIXTURES, "peft_lora.txt"))
    rank, alpha = int(values["rank"][0]), values["alpha"][0]
    lora = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", fan_in_fan_out=True,
                      target_modules=["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for l in range(L):
            for name, path in MODULES:
                module = peft_model.base_model.model.transformer.h[l].get_submodule(path)
                A, B = module.lora_A["default"].weight, module.lora_B["default"].weight  # (r, in), (out, r)
                A.copy_(torch.tensor(values[f"A.{l}.{name}"]).reshape(A.shape))
                B.copy_(torch.tensor(values[f"B.{l}.{name}"]).reshape(B.shape))
        logits = peft_model(input_ids=x).logits
    loss = float(F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))
    assert abs(loss - values["loss"][0]) < 1e-5 * values["loss"][0], (loss, values["loss"][0])
    peft_model.save_pretrained(os.path.join(out, "peft_tiny"))
    save_file({"logits": logits.contiguous()}, os.path.join(out, "peft_tiny_logits.safetensors"))
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(os.path.join(out, "merged_tiny"))
    for root, _, files in os.walk(out):
        for name in files:
            if name.endswith(".md"):
                os.remove(os.path.join(root, name))  # PEFT's model card template
    print(f"PEFT loss {loss:.6f} (peft_lora.txt: {values['loss'][0]:.6f}); wrote {out}")


if __name__ == "__main__":
    main()
