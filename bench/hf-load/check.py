"""Loads the folders bench/hf-load/ShardedSave.java wrote with Hugging Face transformers (from_pretrained, FP32, CPU or
GPU) and checks that the mean loss on the held-out sequence is longtune's (expected.json), to 1e-5 relative: a
sharded longtune save is a plain Hugging Face checkpoint.

    python3 bench/hf-load/check.py DIR
"""
import json
import sys

import torch
from transformers import LlamaForCausalLM

root = sys.argv[1]
expected = json.load(open(f"{root}/expected.json"))
device = "cuda" if torch.cuda.is_available() else "cpu"
failures = 0
for name, want in expected.items():
    model = LlamaForCausalLM.from_pretrained(f"{root}/{name}", dtype=torch.float32).to(device).eval()
    ids = torch.tensor([want["ids"]], device=device)
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    rel = abs(loss - want["loss"]) / abs(want["loss"])
    ok = rel < 1e-5
    failures += not ok
    print(f"{name}: transformers {loss:.9f}, longtune {want['loss']:.9f}, relative difference {rel:.1e}: "
          f"{'ok' if ok else 'DIFFERENT'} (tie_word_embeddings={model.config.tie_word_embeddings}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters)")
print("all loaded and equal" if failures == 0 else f"{failures} DIFFERENT")
sys.exit(1 if failures else 0)
