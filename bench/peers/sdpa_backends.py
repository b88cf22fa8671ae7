"""Each PyTorch SDPA backend at the shapes of a Llama 3.1 8B layer (32/8 heads, d 128, causal, bf16, batch 1).

The throughput model (docs/memory-model.md §5) uses the flash backend's rate; FSDP2's 128K step implies a faster
one. This prints, per backend and length, forward and forward+backward ms and TFLOP/s (forward 2*s^2*q FLOPs,
backward 2.5 forwards, as bench/peers/torch_peer.py counts), and which backend the default dispatch picks.
Run on the GPU machine: python3 bench/peers/sdpa_backends.py > bench/results/sdpa-backends-h200.json
"""
import contextlib
import json

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

F = torch.nn.functional


def timed(fn, reps=5):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def run(seq, backend):
    q = torch.randn(1, 32, seq, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, 8, seq, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 8, seq, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    ctx = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()
    flops = 2.0 * seq * seq * 32 * 128
    with ctx:
        try:
            fwd = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
            both = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).sum().backward())
        except RuntimeError as e:
            return {"error": str(e).splitlines()[0]}
    return {"fwd_ms": fwd, "fwd_tflops": flops / fwd / 1e9, "fwd_bwd_ms": both, "fwd_bwd_tflops": 3.5 * flops / both / 1e9}


def main():
    backends = {"default": None, "flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    rows = []
    for seq in (32768, 131072):
        for name, b in backends.items():
            rows.append({"seq": seq, "backend": name, **run(seq, b)})
            torch.cuda.empty_cache()
    print(json.dumps({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
