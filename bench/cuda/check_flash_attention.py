#!/usr/bin/env python3
"""GPU correctness and timing harness for kernels/cuda/flash_attention.cu.

Compiles the kernel source with NVRTC (through CuPy), the way the Java loader does (our headers pasted in place of
their #include: kernel_source.py), checks forward out/lse and backward dq/dk/dv against a float64 PyTorch reference for fp32, bf16 and
fp16, then times forward and forward+backward against torch's SDPA flash backend (causal, 32 query / 8 KV heads,
d = 128, bf16). Exits non-zero on a correctness failure.

    python3 check_flash_attention.py [--skip-bench] [--sizes 4096,16384,65536] [--volta] [--hopper]
    python3 check_flash_attention.py --volta --hopper --bench-paths mma,volta,hopper --sizes 16384,65536 --json rows.json
    python3 check_flash_attention.py --small-smem --bench-paths mma,small --sizes 16384,65536

--volta compiles with -DFA_FORCE_VOLTA_PATH, which makes sm_80+ run the Volta (WMMA-only) code path as well.
--small-smem compiles with -DFA_SMALL_SMEM: the mma.sync kernels in the tile shape of GPUs with 99 KiB of shared
memory per block (A6000, L40: sm_86/89), checked with exactly their shared memory; the "small" timing path launches
them with 120 KiB so that one block runs per SM, as the A6000's 100 KiB per SM allows (the H200 would fit two).
--hopper also checks (and, with --hopper-bench, times) the sm_90a forward and backward of flash_attention_sm90.cu
(wgmma), which nvcc compiles to a cubin here (CuPy's NVRTC call picks sm_90, not the arch-specific sm_90a wgmma
needs). --hopper-variant "A=1,B=2;C=3" adds builds with those -D defines (experiments).
"""
import argparse
import ctypes
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import cupy

import kernel_source

HERE = os.path.dirname(os.path.abspath(__file__))


def cuda_include_dirs():
    dirs = []
    for base in (os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if base and os.path.exists(os.path.join(base, "include", "mma.h")):
            dirs.append(os.path.join(base, "include"))
    try:
        p = cupy.cuda.get_cuda_path()
        if p and os.path.exists(os.path.join(p, "include", "mma.h")):
            dirs.append(os.path.join(p, "include"))
    except Exception:
        pass
    return dirs[:1]


def load_module(extra=()):
    src = kernel_source.source("flash_attention.cu")
    opts = ["-std=c++17"] + ["-I" + d for d in cuda_include_dirs()] + list(extra)
    return cupy.RawModule(code=src, options=tuple(opts), backend="nvrtc")


def load_sm90_module(extra=()):
    """flash_attention_sm90.cu compiled by nvcc for sm_90a (our headers pasted in, as the Java loader does)."""
    src = kernel_source.source("flash_attention_sm90.cu")
    tmp = tempfile.mkdtemp()
    cu, cubin = os.path.join(tmp, "fa90.cu"), os.path.join(tmp, "fa90.cubin")
    with open(cu, "w") as f:
        f.write(src)
    subprocess.run(["nvcc", "-std=c++17", "-cubin", "-arch=sm_90a", "-lineinfo", "-Xptxas", "-v", *extra, cu,
                    "-o", cubin], check=True)
    return cupy.RawModule(path=cubin)


# Q | stages of K, V | document starts | the stages' mbarriers | align; two MMA warpgroups and a producer
def sm90_fwd_smem(stages=3):
    return (1 + 2 * stages) * 128 * 128 * 2 + 128 * 4 + 4 * stages * 8 + 1024


SM90_FWD_SMEM = sm90_fwd_smem()
SM90_FWD_THREADS = 384
# K, V | two stages of Q, dO | two dSᵀ tiles | staged dQ of both MMA warpgroups | two stages of rows | mbarriers | align
SM90_BWD_SMEM = 2 * 128 * 128 * 2 + 2 * 2 * 64 * 128 * 2 + 2 * 128 * 128 + 2 * 64 * 64 * 4 + 2 * 3 * 64 * 4 + 4 * 8 + 1024
SM90_BWD_THREADS = 384  # two MMA warpgroups and a producer


SUFFIX = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}

_libcuda = None


def libcuda():
    """The driver, for what CuPy's kernel call cannot pass: a tensor map by value."""
    global _libcuda
    if _libcuda is None:
        _libcuda = ctypes.CDLL("libcuda.so.1")
        _libcuda.cuTensorMapEncodeTiled.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64),
            ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32),
            ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        _libcuda.cuLaunchKernel.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    return _libcuda


class TensorMap:
    """A tensor map of a (t, heads, 128) 16-bit tensor: boxes of 64 dims × 1 head × `rows` rows (the backward's Q and dO:
    64, the forward's K and V: 128), 128-byte
    swizzle, zero fill past t (kernels/cuda/flash_attention_sm90.md; the Java side's TensorMap.rowsOfHeads16)."""

    def __init__(self, x, rows=64):
        t, h, d = x.shape
        self.buf = (ctypes.c_uint8 * 192)()
        self.addr = (ctypes.addressof(self.buf) + 63) & ~63
        dims = (ctypes.c_uint64 * 3)(d, h, t)
        strides = (ctypes.c_uint64 * 2)(d * 2, h * d * 2)
        box = (ctypes.c_uint32 * 3)(64, 1, rows)
        ones = (ctypes.c_uint32 * 3)(1, 1, 1)
        # UINT16, no interleave, 128-byte swizzle, 256-byte L2 promotion, zero fill
        r = libcuda().cuTensorMapEncodeTiled(self.addr, 1, 3, x.data_ptr(), dims, strides, box, ones, 0, 3, 3, 0)
        if r != 0:
            raise RuntimeError(f"cuTensorMapEncodeTiled: CUresult {r}")


def launch_raw(f, grid, block, smem, args):
    """cuLaunchKernel of a CuPy RawKernel, each argument a ctypes value or a TensorMap passed by value."""
    ptrs = (ctypes.c_void_p * len(args))(*[a.addr if isinstance(a, TensorMap) else ctypes.addressof(a) for a in args])
    r = libcuda().cuLaunchKernel(f.kernel.ptr, grid[0], grid[1], 1, block, 1, 1, smem, None, ptrs, None)
    if r != 0:
        raise RuntimeError(f"cuLaunchKernel: CUresult {r}")


class FA:
    """Launches the kernels with the launch configuration documented in flash_attention.md."""

    def __init__(self, mod, volta_path=False, sm90=None, small=False, smem_floor=0, sm90_defines=()):
        self.mod = mod
        # the sm_90a kernels' launch: a variant build (sm90_defines) that changes FWD_SMEM, BWD_SMEM or a block size
        # must add its difference here, as earlier variants did (git log of this file); the kernels trap otherwise
        self.sm90_defines = tuple(sm90_defines)
        self.sm90_bwd_smem, self.sm90_bwd_threads = SM90_BWD_SMEM, SM90_BWD_THREADS
        self.sm90_fwd_smem, self.sm90_fwd_threads = SM90_FWD_SMEM, SM90_FWD_THREADS
        for d in self.sm90_defines:  # -DFA90_FWD_STAGES=N
            if d.replace(" ", "").startswith("-DFA90_FWD_STAGES="):
                stages = int(d.split("=")[1])
                if stages < 2:
                    raise SystemExit(f"{d}: the forward needs at least two stages (its hand-over deadlocks with one)")
                self.sm90_fwd_smem = sm90_fwd_smem(stages)
            if d.replace(" ", "").startswith("-DFA90_BWD_STAGES="):
                stages = int(d.split("=")[1])
                self.sm90_bwd_smem = SM90_BWD_SMEM + (stages - 2) * (2 * 64 * 128 * 2 + 3 * 64 * 4 + 2 * 8) - (1024 if stages > 2 else 0)
        self.small = small
        self.smem_floor = smem_floor
        self.sm90 = sm90
        self.cache90 = {}
        self.cache = {}
        # sm_80+ runs the mma.sync path unless compiled with -DFA_FORCE_VOLTA_PATH; sizes differ per path
        self.mma = torch.cuda.get_device_capability() >= (8, 0) and not volta_path

    def fn(self, name, smem=0):
        k = self.cache.get(name)
        if k is None:
            k = self.mod.get_function(name)
            if smem > 48 * 1024:
                k.max_dynamic_shared_size_bytes = smem
            self.cache[name] = k
        return k

    @staticmethod
    def ptr(x):
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.view(torch.int16)
        return cupy.from_dlpack(x.detach())

    def smem(self, kind, d, dt):
        if dt == torch.float32:
            return 0
        ldh = d + 8
        tile = 64 * ldh * 2
        if self.small and d == 128:  # swizzled tiles (no padding); the backward keeps one Q and one dO tile
            sm = 6 * 64 * d * 2 + (128 * 4 if kind == "fwd" else 7 * 64 * 4)
            return max(sm, self.smem_floor)
        if self.mma:
            if kind == "fwd":
                return 6 * tile + 128 * 4
            return 8 * tile + 128 * 72 * 2 + 7 * 64 * 4
        score = 64 * 68 * 4
        if kind == "fwd":
            return 2 * tile + score + 4 * 16 * 4
        return 4 * tile + score + 4 * 256 * 4 + 3 * 64 * 4

    def fn90(self, name, smem):
        f = self.cache90.get(name)
        if f is None:
            f = self.sm90.get_function(name)
            if smem:
                f.max_dynamic_shared_size_bytes = smem
            self.cache90[name] = f
        return f

    def forward(self, out, lse, q, k, v, cu, scale):
        t, hq, d = q.shape
        hkv = k.shape[1]
        suf = SUFFIX[q.dtype]
        if self.sm90 is not None and d == 128 and q.dtype != torch.float32:
            f = self.fn90(f"flash_attention_forward_sm90_{suf}_d128", self.sm90_fwd_smem)
            p = ctypes.c_uint64
            launch_raw(f, ((t + 127) // 128, hq), self.sm90_fwd_threads, self.sm90_fwd_smem,
                       [p(out.data_ptr()), p(lse.data_ptr()), p(q.data_ptr()), p(k.data_ptr()), p(v.data_ptr()),
                        p(cu.data_ptr()), ctypes.c_int32(cu.numel() - 1), ctypes.c_int32(t), ctypes.c_int32(hq),
                        ctypes.c_int32(hkv), ctypes.c_float(scale), TensorMap(k, 128), TensorMap(v, 128)])
            return
        br, threads = (16, 256) if q.dtype == torch.float32 else ((128, 128) if self.mma else (64, 128))
        sm = self.smem("fwd", d, q.dtype)
        f = self.fn(f"flash_attention_forward_{suf}_d{d}", sm)
        f(((t + br - 1) // br, hq), (threads,),
          (self.ptr(out), self.ptr(lse), self.ptr(q), self.ptr(k), self.ptr(v), self.ptr(cu),
           np.int32(cu.numel() - 1), np.int32(t), np.int32(hq), np.int32(hkv), np.float32(scale)), shared_mem=sm)

    def preprocess(self, delta, out, dout):
        t, hq, d = out.shape
        f = self.fn(f"flash_attention_backward_preprocess_{SUFFIX[out.dtype]}_d{d}")
        f(((t * hq + 7) // 8,), (256,), (self.ptr(delta), self.ptr(out), self.ptr(dout), np.int32(t), np.int32(hq)))

    def backward(self, dq_accum, dk, dv, q, k, v, dout, lse, delta, cu, scale):
        t, hq, d = q.shape
        hkv = k.shape[1]
        suf = SUFFIX[q.dtype]
        if self.sm90 is not None and d == 128 and q.dtype != torch.float32:
            f = self.fn90(f"flash_attention_backward_sm90_{suf}_d128", self.sm90_bwd_smem)
            p = ctypes.c_uint64
            launch_raw(f, ((t + 127) // 128, hkv), self.sm90_bwd_threads, self.sm90_bwd_smem,
                       [p(dq_accum.data_ptr()), p(dk.data_ptr()), p(dv.data_ptr()), p(q.data_ptr()), p(k.data_ptr()),
                        p(v.data_ptr()), p(dout.data_ptr()), p(lse.data_ptr()), p(delta.data_ptr()), p(cu.data_ptr()),
                        ctypes.c_int32(cu.numel() - 1), ctypes.c_int32(t), ctypes.c_int32(hq), ctypes.c_int32(hkv),
                        ctypes.c_float(scale), TensorMap(q), TensorMap(dout)])
            return
        bc, threads = (16, 256) if q.dtype == torch.float32 else ((128, 256) if self.mma else (64, 128))
        sm = self.smem("bwd", d, q.dtype)
        f = self.fn(f"flash_attention_backward_{suf}_d{d}", sm)
        f(((t + bc - 1) // bc, hkv), (threads,),
          (self.ptr(dq_accum), self.ptr(dk), self.ptr(dv), self.ptr(q), self.ptr(k), self.ptr(v), self.ptr(dout),
           self.ptr(lse), self.ptr(delta), self.ptr(cu), np.int32(cu.numel() - 1), np.int32(t), np.int32(hq),
           np.int32(hkv), np.float32(scale)), shared_mem=sm)

    def dq_finish(self, dq, dq_accum):
        t, hq, d = dq.shape
        if self.sm90 is not None and d == 128 and dq.dtype != torch.float32:  # the sm_90a backward's dq_accum is by tiles
            f = self.fn90(f"flash_attention_dq_finish_sm90_{SUFFIX[dq.dtype]}_d128", 0)
            f((min((t * hq * 16 + 255) // 256, 65535),), (256,), (self.ptr(dq), self.ptr(dq_accum), np.int32(t), np.int32(hq)))
            return
        n = dq.numel()
        f = self.fn(f"flash_attention_dq_finish_{SUFFIX[dq.dtype]}")
        f((min((n + 255) // 256, 65535),), (256,), (self.ptr(dq), self.ptr(dq_accum), np.int64(n)))


def reference(q, k, v, dout, cu):
    """float64 reference: out, lse, dq, dk, dv."""
    q, k, v, dout = (x.double().detach().requires_grad_(True) for x in (q, k, v, dout))
    t, hq, d = q.shape
    hkv = k.shape[1]
    group = hq // hkv
    doc = torch.zeros(t, dtype=torch.long, device=q.device)
    cul = cu.tolist()
    for i in range(len(cul) - 1):
        doc[cul[i]:cul[i + 1]] = i
    idx = torch.arange(t, device=q.device)
    mask = (doc[:, None] == doc[None, :]) & (idx[None, :] <= idx[:, None])
    kr = k.repeat_interleave(group, dim=1)
    vr = v.repeat_interleave(group, dim=1)
    s = torch.einsum("ihd,jhd->hij", q, kr) / math.sqrt(d)
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None])
    out = torch.einsum("hij,jhd->ihd", p, vr)
    out.backward(dout.double())
    return out.detach(), lse.detach(), q.grad, k.grad, v.grad


def rel(a, b):
    a = a.double()
    b = b.double()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 5e-3}


def check_case(fa, t, cul, hq, hkv, d, dt, gen):
    dev = "cuda"
    cu = torch.tensor(cul, dtype=torch.int32, device=dev)
    q = torch.randn(t, hq, d, generator=gen, device=dev).to(dt)
    k = torch.randn(t, hkv, d, generator=gen, device=dev).to(dt)
    v = torch.randn(t, hkv, d, generator=gen, device=dev).to(dt)
    dout = torch.randn(t, hq, d, generator=gen, device=dev).to(dt)
    scale = 1.0 / math.sqrt(d)
    ro, rl, rdq, rdk, rdv = reference(q, k, v, dout, cu)

    out = torch.full((t, hq, d), float("nan"), device=dev).to(dt)
    lse = torch.full((hq, t), float("nan"), device=dev)
    fa.forward(out, lse, q, k, v, cu, scale)
    delta = torch.full((hq, t), float("nan"), device=dev)
    fa.preprocess(delta, out, dout)
    dq_accum = torch.zeros(t, hq, d, device=dev)
    dq0 = (0.1 * torch.randn(t, hq, d, generator=gen, device=dev)).to(dt)
    dk0 = (0.1 * torch.randn(t, hkv, d, generator=gen, device=dev)).to(dt)
    dv0 = (0.1 * torch.randn(t, hkv, d, generator=gen, device=dev)).to(dt)
    dq, dk, dv = dq0.clone(), dk0.clone(), dv0.clone()
    fa.backward(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu, scale)
    fa.dq_finish(dq, dq_accum)
    torch.cuda.synchronize()

    ref_delta = (out.double() * dout.double()).sum(-1).T
    errs = {
        "out": rel(out, ro),
        "lse": (lse.double() - rl).abs().max().item() if torch.isfinite(lse).all() else float("inf"),
        "delta": rel(delta, ref_delta),
        "dq": rel(dq.double() - dq0.double(), rdq),
        "dk": rel(dk.double() - dk0.double(), rdk),
        "dv": rel(dv.double() - dv0.double(), rdv),
    }
    tol = TOL[dt]
    ok = all(errs[n] <= tol for n in ("out", "dq", "dk", "dv")) and errs["lse"] <= 1e-3 and errs["delta"] <= 1e-4
    return ok, errs


def bench_ms(fn, reps):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return float(np.median(times))


def bench(fa, sizes, hq=32, hkv=8, d=128, dt=torch.bfloat16):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    import torch.nn.functional as F

    rows = []
    dev = "cuda"
    for t in sizes:
        flops_f = 2 * 2 * t * t * hq * d / 2
        flops_fb = 3.5 * flops_f
        reps = 10 if t <= 16384 else 3
        cu = torch.tensor([0, t], dtype=torch.int32, device=dev)
        q = torch.randn(t, hq, d, device=dev, dtype=dt)
        k = torch.randn(t, hkv, d, device=dev, dtype=dt)
        v = torch.randn(t, hkv, d, device=dev, dtype=dt)
        dout = torch.randn(t, hq, d, device=dev, dtype=dt)
        out = torch.empty_like(q)
        lse = torch.empty(hq, t, device=dev)
        delta = torch.empty(hq, t, device=dev)
        dq_accum = torch.empty(t, hq, d, device=dev)
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        scale = 1.0 / math.sqrt(d)

        def ours_f():
            fa.forward(out, lse, q, k, v, cu, scale)

        def ours_fb():
            fa.forward(out, lse, q, k, v, cu, scale)
            dq_accum.zero_()
            fa.preprocess(delta, out, dout)
            fa.backward(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu, scale)
            fa.dq_finish(dq, dq_accum)

        def ours_b():  # the backward alone, after one forward: zeroing dq_accum, preprocess, backward, dq_finish
            dq_accum.zero_()
            fa.preprocess(delta, out, dout)
            fa.backward(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu, scale)
            fa.dq_finish(dq, dq_accum)

        ms_f = bench_ms(ours_f, reps)
        ms_fb = bench_ms(ours_fb, reps)
        ms_b = bench_ms(ours_b, reps)

        qt = q.view(1, t, hq, d).transpose(1, 2).detach().requires_grad_(True)
        kt = k.view(1, t, hkv, d).transpose(1, 2).detach().requires_grad_(True)
        vt = v.view(1, t, hkv, d).transpose(1, 2).detach().requires_grad_(True)
        dot = dout.view(1, t, hq, d).transpose(1, 2)
        gqa = True
        try:
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=True)
        except Exception as e:  # flash backend without GQA support: repeat the kv heads
            print(f"  (SDPA flash refused enable_gqa: {type(e).__name__}; repeating kv heads)")
            gqa = False
            kt = kt.detach().repeat_interleave(hq // hkv, dim=1).requires_grad_(True)
            vt = vt.detach().repeat_interleave(hq // hkv, dim=1).requires_grad_(True)

        def sdpa_f():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.no_grad():
                F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=gqa)

        def sdpa_fb():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                o = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=gqa)
            o.backward(dot)

        sd_f = bench_ms(sdpa_f, reps)
        sd_fb = bench_ms(sdpa_fb, reps)
        row = (t, ms_f, flops_f / ms_f / 1e9, sd_f, flops_f / sd_f / 1e9, sd_f / ms_f,
               ms_fb, flops_fb / ms_fb / 1e9, sd_fb, flops_fb / sd_fb / 1e9, sd_fb / ms_fb,
               ms_b, 2.5 * flops_f / ms_b / 1e9)
        rows.append(row)
        print("  T=%6d fwd %8.2f ms %6.1f TF/s | sdpa %8.2f ms %6.1f TF/s | ratio %.2f || "
              "fwd+bwd %8.2f ms %6.1f TF/s | sdpa %8.2f ms %6.1f TF/s | ratio %.2f || bwd %8.2f ms %6.1f TF/s" % row,
              flush=True)
        del q, k, v, dout, out, lse, delta, dq_accum, dq, dk, dv, qt, kt, vt
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--volta", action="store_true", help="also check the Volta (WMMA-only) path on this GPU")
    ap.add_argument("--hopper", action="store_true", help="also check the sm_90a (wgmma) kernels")
    ap.add_argument("--small-smem", action="store_true",
                    help="also check the mma.sync kernels built for 99 KiB of shared memory per block (A6000)")
    ap.add_argument("--hopper-bench", action="store_true", help="time the sm_90a kernels instead of the default")
    ap.add_argument("--bench-paths", default="",
                    help="time these kernel paths one after another, each beside SDPA flash: any of mma,volta,hopper,small "
                         "(mma: the sm_80+ kernels; volta: the WMMA path a V100 runs; hopper: sm_90a; small: the "
                         "mma.sync kernels in the A6000's 99 KiB, one block per SM)")
    ap.add_argument("--json", default="", help="write the timing rows (path, T, ms, TF/s, SDPA's, ratios) to this file")
    ap.add_argument("--hopper-variant", default="", help="extra sm_90a builds: defines A=1,B=2 per build, builds split by ;")
    ap.add_argument("--sizes", default="4096,16384,65536")
    ap.add_argument("--bench-variants", action="store_true",
                    help="time every sm_90a build (--hopper and each --hopper-variant) one after another")
    args = ap.parse_args()

    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, "cupy", cupy.__version__, flush=True)
    print("CUDA include:", cuda_include_dirs(), flush=True)
    variants = [("default", ())]
    ap_small = args.small_smem
    if args.volta:
        variants.append(("volta-path", ("-DFA_FORCE_VOLTA_PATH",)))
    if ap_small:
        variants.append(("small-smem", ("-DFA_SMALL_SMEM",)))
    if args.hopper or args.hopper_bench:
        variants.append(("hopper", "sm90"))
    for spec in (v for v in args.hopper_variant.split(";") if v):
        variants.append(("hopper " + spec, "sm90", *("-D" + d for d in spec.split(","))))
    failures = 0
    fa_default = None
    fa_hopper = None
    hopper_builds = {}
    for vname, extra, *defines in variants:
        if extra == "sm90":
            fa = FA(load_module(), sm90=load_sm90_module(defines), sm90_defines=tuple(defines))
            fa_hopper = fa_hopper or fa
            hopper_builds[vname] = fa
        else:
            fa = FA(load_module(extra), volta_path="-DFA_FORCE_VOLTA_PATH" in extra,
                    small="-DFA_SMALL_SMEM" in extra)
        if fa_default is None:
            fa_default = fa
        if args.skip_check:
            continue
        gen = torch.Generator(device="cuda")
        gen.manual_seed(1234)
        path = "sm_90a wgmma" if fa.sm90 else ("mma.sync m16n8k16" + (", 99 KiB tiles" if fa.small else "") if fa.mma else "WMMA")
        print(f"== correctness ({vname}, {path} path) ==", flush=True)
        cases = [(37, [0, 13, 29, 37]), (300, [0, 97, 98, 300]), (200, [0, 0, 130, 200])]
        if fa.sm90 or fa.small:  # several 128-key steps, documents straddling steps and tiles, a tail shorter than a tile
            cases += [(700, [0, 5, 260, 261, 700]), (1000, [0, 1000])]
        for dt in (torch.float32, torch.bfloat16, torch.float16):
            if vname != "default" and dt == torch.float32:
                continue
            for d in ((128,) if fa.sm90 else (64, 128)):
                for hq, hkv in ((4, 2), (32, 8)):
                    for t, cul in cases:
                        ok, e = check_case(fa, t, cul, hq, hkv, d, dt, gen)
                        failures += 0 if ok else 1
                        print("  %-4s d=%3d heads %2d/%d t=%3d cu=%-16s out %.2e lse %.2e delta %.2e dq %.2e "
                              "dk %.2e dv %.2e  %s" % (SUFFIX[dt], d, hq, hkv, t, cul, e["out"], e["lse"],
                                                       e["delta"], e["dq"], e["dk"], e["dv"],
                                                       "ok" if ok else "FAIL"), flush=True)
    print(f"correctness failures: {failures}", flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    timed = {}
    if args.bench_paths:
        builders = {"mma": lambda: FA(load_module()),
                    "volta": lambda: FA(load_module(("-DFA_FORCE_VOLTA_PATH",)), volta_path=True),
                    "hopper": lambda: FA(load_module(), sm90=load_sm90_module()),
                    "small": lambda: FA(load_module(("-DFA_SMALL_SMEM",)), small=True, smem_floor=120 * 1024)}
        for path in args.bench_paths.split(","):
            if path not in builders:
                sys.exit(f"--bench-paths: unknown path {path!r}: use mma, volta, hopper or small")
            print(f"== timing, {path} path: causal, 32/8 heads, d=128, bf16, medians of CUDA-event times ==", flush=True)
            timed[path] = bench(builders[path](), sizes)
    elif args.bench_variants:
        for vname, fa in hopper_builds.items():
            print(f"== timing, {vname}: causal, 32/8 heads, d=128, bf16, medians of CUDA-event times ==", flush=True)
            timed[vname] = bench(fa, sizes)
    elif not args.skip_bench:
        print("== timing: causal, 32/8 heads, d=128, bf16, medians of CUDA-event times ==", flush=True)
        timed["hopper" if args.hopper_bench else "default"] = bench(fa_hopper if args.hopper_bench else fa_default, sizes)
    if args.json:
        import json
        keys = ("tokens", "fwd_ms", "fwd_tflops", "sdpa_fwd_ms", "sdpa_fwd_tflops", "fwd_ratio",
                "fwd_bwd_ms", "fwd_bwd_tflops", "sdpa_fwd_bwd_ms", "sdpa_fwd_bwd_tflops", "fwd_bwd_ratio",
                "bwd_ms", "bwd_tflops")
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "correctness_failures": failures,
                       "rows": [dict(path=p, **dict(zip(keys, r))) for p, rows in timed.items() for r in rows]}, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
