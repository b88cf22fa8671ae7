#!/usr/bin/env python3
"""The peer of dev.longtune.bench.CpuAdamWBench: torch.optim.AdamW on the CPU over the same fp32 parameters.

The same N parameters cut into the same tensors (one optimizer parameter each, as a model's tensors), the same
hyperparameters and thread count, medians of the timed optimizer.step() calls after warm-up. Implementations:
foreach=True (the default on CPU for a list of tensors: torch._foreach_* ops, several passes with temporaries)
and fused=True (one fused kernel per tensor, PyTorch >= 2.4 on CPU) when this build has it.

Bytes counted per parameter: 28 (read p, g, m, v; write p, m, v), the minimum any AdamW moves; foreach moves
more (its temporaries), which is part of what is being compared. PyTorch writes no 16-bit copy.

    python3 bench/peers/torch_cpu_adamw.py --params 1.5e9 --tensor 58720256 --threads 16 --out torch.json
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time

LR, BETA1, BETA2, EPS, WEIGHT_DECAY = 1e-4, 0.9, 0.95, 1e-8, 0.1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=float, default=1.5e9)
    ap.add_argument("--tensor", type=float, default=4096 * 14336)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--impl", default="foreach,fused", help="comma-separated: foreach, fused, for-loop")
    ap.add_argument("--out")
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    n, size = int(a.params), int(a.tensor)
    sizes = [min(size, n - off) for off in range(0, n, size)]
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "params": n, "tensor": size, "tensors": len(sizes),
        "hyperparameters": {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS, "weight_decay": WEIGHT_DECAY},
        "cpu_capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else None,
        "rows": [],
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n:,} params in {len(sizes)} tensors", flush=True)

    def check(impl_kwargs):
        """One step of this implementation against ops/AdamW's formula in float64 (a sanity check, not bits)."""
        g = torch.Generator().manual_seed(0)
        p = (torch.rand(10007, generator=g) - 0.5) * 0.1
        grad = (torch.rand(10007, generator=g) - 0.5) * 2e-3
        ref = p.double()
        param = torch.nn.Parameter(p.clone())
        param.grad = grad.clone()
        opt = torch.optim.AdamW([param], lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WEIGHT_DECAY, **impl_kwargs)
        opt.step()
        gd = grad.double()
        m, v = (1 - BETA1) * gd, (1 - BETA2) * gd * gd
        ref = ref * (1 - LR * WEIGHT_DECAY) - LR / (1 - BETA1) * m / ((v / (1 - BETA2)).sqrt() + EPS)
        return float(((param.detach().double() - ref).abs().max() / ref.abs().max()).item())

    for impl in a.impl.split(","):
        kwargs = {"foreach": {"foreach": True}, "fused": {"fused": True}, "for-loop": {"foreach": False}}[impl]
        row = {"impl": impl, "bytes_per_param": 28,
               "bytes_per_param_detail": "read p,g,m,v 16 B + write p,m,v 12 B (counted; foreach moves more)"}
        try:
            row["check_max_rel_err_vs_fp64"] = check(kwargs)
            t0 = time.perf_counter()
            params = []
            for k, s in enumerate(sizes):
                p = torch.nn.Parameter(torch.empty(s).uniform_(-0.05, 0.05))
                p.grad = torch.empty(s).uniform_(-1e-3, 1e-3)
                params.append(p)
            opt = torch.optim.AdamW(params, lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WEIGHT_DECAY, **kwargs)
            print(f"{impl}: allocated in {time.perf_counter() - t0:.1f} s", flush=True)
            seconds = []
            for it in range(a.warmup + a.iterations):
                start = time.perf_counter()
                opt.step()
                s = time.perf_counter() - start
                if it >= a.warmup:
                    seconds.append(s)
            med = statistics.median(seconds)
            row.update({"median_s": med, "seconds": seconds, "params_per_s": n / med, "gb_per_s": 28 * n / med / 1e9})
            print(f"{impl}: {row}", flush=True)
        except Exception as e:  # fused=True unsupported on this build or device, out of memory, ...
            row["error"] = f"{type(e).__name__}: {e}"
            print(f"{impl}: {row['error']}", flush=True)
        result["rows"].append(row)
        opt = params = p = None
        gc.collect()

    text = json.dumps(result, indent=2)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
