#!/usr/bin/env python3
"""Speed of the fused RMSNorm and SwiGLU kernels (kernels/cuda) beside PyTorch in the same run, no Java.

Times forward + backward at the sizes of GpuBench's rows (RMSNorm 32,768 × 4,096, SwiGLU 32,768 × 14,336, bf16)
with the launch configuration CudaDevice uses, against the same maths in eager PyTorch (autograd) and under
torch.compile (Inductor's fused Triton kernels: the peer Liger-Kernel is measured against). Correctness first:
each op's output on the full size is compared with a float64 reference before it is timed. CUDA events, warm-up
runs, median of 30 (check_flash_attention.bench_ms). Also reports the bytes each op must move and the HBM bandwidth that implies.

    cd bench/cuda && python3 bench_fused_ops.py [--rows 32768] [--json OUT.json]
"""
import argparse
import json

import torch

from check_flash_attention import bench_ms
from check_kernels import DEV, BLOCK, cdiv, module, norm_block, ptr, i32, i64, f32

REPS = 30


def timed(fn):
    """Median of REPS runs timed with CUDA events, after warm-up runs (torch.compile compiles in the first)."""
    return bench_ms(fn, REPS)


def autograd_step(fn, inputs, dout):
    """A peer's forward and backward: fresh gradients for inputs, then fn(*inputs).backward(dout)."""
    def go():
        for t in inputs:
            t.grad = None
        fn(*inputs).backward(dout)
    return go


def kernel(file, name):
    return module(file).get_function(name)


def run(file, name, grid, block, *args):
    kernel(file, name)((int(grid),), (int(block),), args)


def sms():
    return torch.cuda.get_device_properties(0).multi_processor_count


def element_grid(n):
    return max(1, min(cdiv(n, BLOCK), 32 * sms()))


def rel(got, ref):
    return ((got.double() - ref).abs().max() / ref.abs().max()).item()


def rms_norm(rows, rows_out):
    c, eps = 4096, 1e-5
    x = torch.randn(rows, c, device=DEV).to(torch.bfloat16)
    w = (1 + 0.1 * torch.randn(c, device=DEV)).to(torch.bfloat16)
    dout = torch.randn(rows, c, device=DEV).to(torch.bfloat16)
    out = torch.empty_like(x)
    rstd = torch.empty(rows, dtype=torch.float32, device=DEV)
    dx = torch.zeros_like(x)
    dw = torch.zeros(c, dtype=torch.bfloat16, device=DEV)
    blocks = max(1, min(rows, 2 * sms()))
    rpb = cdiv(rows, blocks)
    blocks = cdiv(rows, rpb)
    partial = torch.empty(blocks, c, dtype=torch.float32, device=DEV)
    block = norm_block(c, "bf16")

    def ours():
        run("rms_norm.cu", "rms_norm_forward_bf16", rows, block, ptr(out), ptr(rstd), ptr(x), ptr(w), i32(rows), i32(c), f32(eps))
        run("rms_norm.cu", "rms_norm_backward_bf16", blocks, block, ptr(dx), ptr(partial), ptr(dout), ptr(x), ptr(w),
            ptr(rstd), i32(rows), i32(c), i32(rpb))
        run("rms_norm.cu", "add_row_sums_bf16", cdiv(c, BLOCK), BLOCK, ptr(dw), ptr(partial), i32(blocks), i32(c))

    ours()
    torch.cuda.synchronize()
    x64, w64 = x[:64].double(), w.double()
    ref = x64 * torch.rsqrt((x64 * x64).mean(-1, keepdim=True) + eps) * w64
    err = rel(out[:64], ref)

    def torch_rms(xx, ww):
        xf = xx.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(xx.dtype) * ww

    compiled = torch.compile(torch_rms)
    inputs = (x.detach().requires_grad_(True), w.detach().requires_grad_(True))

    # bytes: forward reads x, writes out; backward reads dout, x, dx (+=), writes dx (weights and partials are small)
    moved = 6 * rows * c * 2
    rows_out.append(row("rms_norm_fwd_bwd", rows, c, timed(ours), timed(autograd_step(torch_rms, inputs, dout)),
                        timed(autograd_step(compiled, inputs, dout)), moved, err))


def swiglu(rows, rows_out):
    f = 14336
    n = rows * f
    g = (3 * torch.randn(n, device=DEV)).to(torch.bfloat16)
    u = torch.randn(n, device=DEV).to(torch.bfloat16)
    dout = torch.randn(n, device=DEV).to(torch.bfloat16)
    out, dg, du = torch.empty_like(g), torch.empty_like(g), torch.empty_like(g)
    grid = element_grid(cdiv(n, 8))

    def ours(accumulate):
        name = "swiglu_backward_bf16" if accumulate else "swiglu_backward_write_bf16"

        def go():
            run("swiglu.cu", "swiglu_forward_bf16", grid, BLOCK, ptr(out), ptr(g), ptr(u), i64(n))
            run("swiglu.cu", name, grid, BLOCK, ptr(dg), ptr(du), ptr(dout), ptr(g), ptr(u), i64(n))
        return go

    ours(False)()
    torch.cuda.synchronize()
    g64, u64, dy = g[:1 << 20].double(), u[:1 << 20].double(), dout[:1 << 20].double()
    s = torch.sigmoid(g64)
    err = max(rel(out[:1 << 20], g64 * s * u64), rel(dg[:1 << 20], dy * u64 * s * (1 + g64 * (1 - s))),
              rel(du[:1 << 20], dy * g64 * s))

    def torch_swiglu(gg, uu):
        return torch.nn.functional.silu(gg) * uu

    compiled = torch.compile(torch_swiglu)
    inputs = (g.detach().requires_grad_(True), u.detach().requires_grad_(True))
    eager = timed(autograd_step(torch_swiglu, inputs, dout))
    comp = timed(autograd_step(compiled, inputs, dout))
    # forward: read gate, up, write out; backward: read dout, gate, up, write dgate, dup (+ read both with +=)
    rows_out.append(row("swiglu_fwd_bwd", rows, f, timed(ours(False)), eager, comp, 8 * n * 2, err))
    rows_out.append(row("swiglu_fwd_bwd (+= gradients)", rows, f, timed(ours(True)), eager, comp, 10 * n * 2, err))


def row(op, rows, cols, ms, eager_ms, compiled_ms, moved, err):
    r = {"op": op, "shape": f"{rows}x{cols}", "dtype": "bf16", "ms": round(ms, 4), "eager_ms": round(eager_ms, 4),
         "compiled_ms": round(compiled_ms, 4), "vs_eager": round(eager_ms / ms, 3),
         "vs_compiled": round(compiled_ms / ms, 3), "bytes": moved, "tb_per_s": round(moved / ms / 1e9, 3),
         "rel_err": err}
    print(f"{op:<32} {r['shape']:>13}  ours {ms:8.3f} ms ({r['tb_per_s']:.2f} TB/s)  eager {eager_ms:8.3f}  "
          f"compiled {compiled_ms:8.3f}  ×{r['vs_eager']:.2f} eager  ×{r['vs_compiled']:.2f} compiled  "
          f"rel_err {err:.2e}", flush=True)
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=32768)
    p.add_argument("--json")
    a = p.parse_args()
    torch.manual_seed(7)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {sms()} SMs", flush=True)
    rows = []
    rms_norm(a.rows, rows)
    swiglu(a.rows, rows)
    bad = [r for r in rows if not r["rel_err"] < 1e-2]
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, fh, indent=1)
    if bad:
        print("FAILED correctness:", [r["op"] for r in bad])
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
