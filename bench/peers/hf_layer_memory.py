"""Measures what the planner's hf-deepspeed profile predicts from code reading, on a real GPU:

1. host RSS of one PyTorch training process (CUDA context, cuBLAS/cuDNN loaded, transformers imported);
2. whether pinned host allocations are rounded up to a power of two (PyTorch's caching host allocator);
3. GPU memory of one Hugging Face LlamaDecoderLayer (Llama 3.1 8B shape) recomputed and back-propagated
   under gradient checkpointing, for several context lengths: the bytes per token.

Prints one JSON object. Used by docs/memory-model.md ("Checked on a GPU"). On the GPU machine:
    python3 bench/peers/hf_layer_memory.py > hf-layer-memory.json
    RSS_ONLY=1 CUDA_MODULE_LOADING=EAGER python3 bench/peers/hf_layer_memory.py   # host RSS with eager module loading
"""
import json, os, sys, time, resource

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1

out = {"rss": {}}
out["rss"]["python"] = rss()
import torch
out["rss"]["import_torch"] = rss()
torch.cuda.init()
x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
y = x @ x
q = torch.randn(1, 32, 4096, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
o = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
o.sum().backward()
torch.cuda.synchronize()
out["rss"]["cuda_cublas_sdpa"] = rss()
import transformers
out["rss"]["import_transformers"] = rss()
out["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0]}
try:
    import liger_kernel  # noqa
    out["versions"]["liger_kernel"] = getattr(liger_kernel, "__version__", "present")
except Exception as e:
    out["versions"]["liger_kernel"] = None
try:
    import deepspeed  # noqa
    out["versions"]["deepspeed"] = deepspeed.__version__
except Exception:
    out["versions"]["deepspeed"] = None

# 2. pinned rounding: allocate 384 MiB pinned and look at RSS growth and allocator stats
before = rss()
p = torch.empty(384 << 20, dtype=torch.uint8, pin_memory=True)
p.fill_(1)
out["pinned_384MiB"] = {"rss_growth": rss() - before}
try:
    st = torch.cuda.host_memory_stats()
    out["pinned_384MiB"]["host_stats"] = {k: v for k, v in st.items() if "allocated_bytes" in k or "reserved_bytes" in k}
except Exception as e:
    out["pinned_384MiB"]["host_stats"] = repr(e)
del p

if os.environ.get("RSS_ONLY"):
    out["cuda_module_loading"] = os.environ.get("CUDA_MODULE_LOADING", "(default: lazy)")
    print(json.dumps(out, indent=1))
    sys.exit(0)

# 3. one decoder layer under checkpointing
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding
from torch.utils.checkpoint import checkpoint

def layer_run(impl, seq):
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                      head_dim=128, vocab_size=128256, num_hidden_layers=1, rms_norm_eps=1e-5,
                      rope_theta=500000.0, max_position_embeddings=131072, torch_dtype="bfloat16")
    cfg._attn_implementation = impl
    layer = LlamaDecoderLayer(cfg, layer_idx=0).to("cuda", torch.bfloat16)
    rope = LlamaRotaryEmbedding(cfg).to("cuda")
    x = torch.randn(1, seq, 4096, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    pos = torch.arange(seq, device="cuda")[None]
    cos, sin = rope(x, pos)
    def f(h):
        r = layer(h, attention_mask=None, position_ids=pos, position_embeddings=(cos, sin))
        return r[0] if isinstance(r, tuple) else r
    g = torch.randn(1, seq, 4096, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    # warm-up builds cuBLAS workspaces and grads once, so the measured run allocates only per-step memory
    y = checkpoint(f, x, use_reentrant=False); y.backward(g); del y
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    y = checkpoint(f, x, use_reentrant=False)
    after_forward = torch.cuda.memory_allocated()
    y.backward(g)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    res = {"seq": seq, "forward_extra": after_forward - base, "backward_peak_extra": peak - base}
    del layer, rope, x, g, y, cos, sin
    torch.cuda.empty_cache()
    return res

out["layer"] = {}
for impl, seqs in (("sdpa", [4096, 8192, 16384, 32768]), ("eager", [1024, 2048, 4096])):
    rows = []
    for s in seqs:
        try:
            rows.append(layer_run(impl, s))
        except Exception as e:
            rows.append({"seq": s, "error": repr(e)[:300]})
    out["layer"][impl] = rows
print(json.dumps(out, indent=1))
