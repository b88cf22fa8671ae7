#!/usr/bin/env python3
"""GPU check of kernels/cuda/*.cu against float64 references that mirror the Java ops (dev.longtune.ops.*).

Runs on a machine with a GPU, torch and cupy; no Java. Every .cu file gets our headers (common.cuh, …) pasted
in place of their #include exactly as dev.longtune.cuda.NvrtcCompiler does (kernel_source.py), is compiled by NVRTC through
cupy.RawModule, and every entry point runs for f32, bf16 and f16 storage on awkward shapes (odd sizes,
grids smaller than the data so grid-stride loops wrap). Prints one line per check and exits non-zero on any
failure.

Error measure: max_i |got_i - ref_i| / max(|ref_i|, floor · max|ref|, tiny), i.e. relative, with elements
far below the tensor's scale (cancellation) judged against `floor` of that scale; `tiny` is the smallest
normal number of the storage type (fp16 gradients underflow to subnormals). Tolerances: about one ulp of the
output type (bf16 2^-7, fp16 2^-10), fp32 1e-5. Checks named `bits` count elements whose bits differ from an
fp32 emulation of the Java op's exact operation order (torch eager fp32 ops round each step, like Java).

    cd bench/cuda && python3 check_kernels.py [CHECK …]      (e.g. cross_entropy adamw; none: every check)
"""
import math
import pathlib
import sys
import traceback

import numpy as np
import torch
import cupy as cp

KERNELS = pathlib.Path(__file__).resolve().parents[2] / "kernels" / "cuda"
DEV = torch.device("cuda")
TYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
TOL = {"f32": 1e-5, "bf16": 2.0 ** -7 * 1.01, "f16": 2.0 ** -10 * 1.01}
TINY = {"f32": 1.2e-38, "bf16": 1.2e-38, "f16": 6.11e-5}
BLOCK = 256
FAILURES = []
ROWS = []


from kernel_source import source  # noqa: E402  (our headers pasted in, as the Java loader does)


MODULES = {}


def module(name):
    if name not in MODULES:
        MODULES[name] = cp.RawModule(code=source(name), options=("--std=c++17",))
        MODULES[name].compile()
    return MODULES[name]


def ptr(t):
    return np.uint64(0 if t is None else t.data_ptr())


def i32(x):
    return np.int32(x)


def i64(x):
    return np.int64(x)


def f32(x):
    return np.float32(x)


def f64(x):
    return np.float64(x)


def launch(file, name, grid, *args, block=BLOCK):
    torch.cuda.synchronize()
    fn = module(file).get_function(name)
    fn((int(grid),), (block,), args)
    cp.cuda.runtime.deviceSynchronize()


def cdiv(a, b):
    return (a + b - 1) // b


def rnd(shape, dtype, scale=1.0, gen=None):
    """Random values already rounded to dtype (the tensor holds them as its storage type)."""
    return (torch.randn(shape, generator=gen, dtype=torch.float64, device=DEV) * scale).to(dtype)


def f64t(t):
    return t.to(torch.float64)


def rel_err(got, ref, s, floor=1e-2, denom=None):
    got = f64t(got).flatten()
    ref = f64t(ref).flatten()
    if ref.numel() == 0:
        return 0.0
    scale = ref.abs().max().item()
    d = torch.clamp(ref.abs(), min=max(floor * scale, TINY[s]))
    if denom is not None:
        d = torch.maximum(d, denom.flatten())
    diff = (got - ref).abs()
    bad = torch.isnan(got) != torch.isnan(ref)
    if bad.any():
        return float("inf")
    diff = torch.where(torch.isnan(ref), torch.zeros_like(diff), diff)
    return (diff / d).max().item()


def record(kernel, s, shape, what, err, tol):
    ok = err <= tol
    ROWS.append((kernel, s, shape, what, err, tol, ok))
    print(f"{kernel:<26} {s:<5} {shape:<26} {what:<14} {err:>11.3e} {tol:>9.1e}  {'pass' if ok else 'FAIL'}", flush=True)
    if not ok:
        FAILURES.append(f"{kernel} {s} {shape} {what}")


def bits_differ(a, b):
    """Count of elements whose bits differ (same dtype)."""
    a = a.contiguous().flatten()
    b = b.contiguous().flatten()
    if a.dtype == torch.float32:
        return int((a.view(torch.int32) != b.view(torch.int32)).sum().item())
    return int((a.view(torch.int16) != b.view(torch.int16)).sum().item())


def check(fn):
    def run():
        try:
            fn()
        except Exception:
            traceback.print_exc()
            FAILURES.append(f"{fn.__name__}: exception")
            ROWS.append((fn.__name__, "-", "-", "exception", float("inf"), 0, False))
    return run


def norm_block(c, s):
    """CudaDevice.normBlock: at most two 16-byte packs of a row per thread, 256 to 1,024 threads."""
    per_pack = 4 if s == "f32" else 8
    threads = cdiv(c, 2 * per_pack)
    return min(1024, max(BLOCK, cdiv(threads, 32) * 32))


def view_at(t, offset):
    """t's values in a fresh buffer, starting `offset` elements in (offset 1: no 16-byte alignment)."""
    if offset == 0:
        return t
    buf = torch.empty(t.numel() + offset, dtype=t.dtype, device=DEV)
    v = buf[offset:].view(t.shape)
    v.copy_(t)
    return v


# ---------------------------------------------------------------------------------------------------- RMSNorm
@check
def rms_norm():
    for s, dt in TYPES.items():
        # (37, 4096) and (37, 4104): the packed register-resident form at CudaDevice.normBlock's block sizes;
        # "+1": every tensor a view one element into its buffer, so the packed form must fall back to elements
        for n, c, offset in ((111, 131, 0), (37, 4096, 0), (37, 4104, 0), (37, 4096, 1), (5, 37, 0)):
            shape = f"n={n} c={c}" + (" +1" if offset else "")
            block = norm_block(c, s)
            eps = 1e-5
            x = view_at(rnd((n, c), dt), offset)
            w = view_at((1 + 0.1 * rnd((c,), torch.float64)).to(dt), offset)
            out = view_at(torch.zeros((n, c), dtype=dt, device=DEV), offset)
            rstd = torch.zeros((n,), dtype=torch.float32, device=DEV)
            launch("rms_norm.cu", f"rms_norm_forward_{s}", n, ptr(out), ptr(rstd), ptr(x), ptr(w), i32(n), i32(c), f32(eps),
                   block=block)
            x64, w64 = f64t(x), f64t(w)
            r64 = 1.0 / torch.sqrt((x64 * x64).mean(dim=1) + eps)
            record(f"rms_norm_forward_{s}", s, shape, "rstd", rel_err(rstd, r64, "f32", floor=0), 1e-6)
            record(f"rms_norm_forward_{s}", s, shape, "out", rel_err(out, x64 * r64[:, None] * w64, s, floor=0), TOL[s])

            # backward: dinp +=, dweight via block partials and add_row_sums (dweight +=)
            dout = view_at(rnd((n, c), dt), offset)
            dinp0 = rnd((n, c), dt, 0.5)
            dinp = view_at(dinp0.clone(), offset)
            rows_per_block = 8
            blocks = cdiv(n, rows_per_block) + 1  # one extra block: its partial row must come out zero
            partial = torch.full((blocks, c), float("nan"), dtype=torch.float32, device=DEV)
            launch("rms_norm.cu", f"rms_norm_backward_{s}", blocks, ptr(dinp), ptr(partial), ptr(dout), ptr(x), ptr(w),
                   ptr(rstd), i32(n), i32(c), i32(rows_per_block), block=block)
            dw0 = rnd((c,), dt, 0.5)
            dw = dw0.clone()
            launch("rms_norm.cu", f"add_row_sums_{s}", 1 if c > 300 else cdiv(c, BLOCK), ptr(dw), ptr(partial),
                   i32(blocks), i32(c))
            r = f64t(rstd)[:, None]  # the saved rstd, as Java's backward uses it
            dy = f64t(dout)
            xhat = x64 * r
            g = dy * w64
            mean_dot = (g * xhat).mean(dim=1, keepdim=True)
            ref_dinp = f64t(dinp0) + r * (g - xhat * mean_dot)
            ref_dw = f64t(dw0) + (dy * xhat).sum(dim=0)
            den_dinp = f64t(dinp0).abs() + r * (g.abs() + (xhat * mean_dot).abs())
            den_dw = f64t(dw0).abs() + (dy * xhat).abs().sum(dim=0)
            record(f"rms_norm_backward_{s}", s, shape, "dinp +=", rel_err(dinp, ref_dinp, s, 0, den_dinp), TOL[s])
            record(f"add_row_sums_{s}", s, shape, "dweight +=", rel_err(dw, ref_dw, s, 0, den_dw), TOL[s])
            # dweight_partial == NULL: same dinp, bit for bit
            dinp2 = view_at(dinp0.clone(), offset)
            launch("rms_norm.cu", f"rms_norm_backward_{s}", blocks, ptr(dinp2), ptr(None), ptr(dout), ptr(x), ptr(w),
                   ptr(rstd), i32(n), i32(c), i32(rows_per_block), block=block)
            record(f"rms_norm_backward_{s}", s, shape, "NULL dw bits", bits_differ(dinp2, dinp), 0)


# ---------------------------------------------------------------------------------------------------- RoPE
def llama3_inv_freq(d, theta=500000.0, factor=8.0, low=1.0, high=4.0, orig=8192):
    """Rope.inverseFrequencies with Llama 3.1 scaling, in double."""
    out = []
    for i in range(d // 2):
        inv = math.pow(theta, -2.0 * i / d)
        wavelen = 2 * math.pi / inv
        if wavelen > orig / low:
            inv = inv / factor
        elif wavelen >= orig / high:
            smooth = (orig / wavelen - low) / (high - low)
            inv = (1 - smooth) * inv / factor + smooth * inv
        out.append(inv)
    return out


@check
def rope():
    t = 37
    # a packed sequence: a document ending at position 131071, then one restarting at 0
    positions = list(range(131071 - 14, 131072)) + list(range(0, t - 15))
    pos = torch.tensor(positions, dtype=torch.int32, device=DEV)
    for d in (64, 128):
        half = d // 2
        inv = torch.tensor(llama3_inv_freq(d), dtype=torch.float64, device=DEV)
        cos_t = torch.zeros((t, half), dtype=torch.float32, device=DEV)
        sin_t = torch.zeros((t, half), dtype=torch.float32, device=DEV)
        launch("rope.cu", "rope_table", cdiv(t * half, BLOCK), ptr(cos_t), ptr(sin_t), ptr(pos), ptr(inv), i32(t), i32(half))
        # reference angle and cos/sin in double on the CPU (numpy, libm), as Java's Math.cos/Math.sin
        ang = np.array(positions, dtype=np.float64)[:, None] * np.array(llama3_inv_freq(d))[None, :]
        cref, sref = np.cos(ang), np.sin(ang)
        cg, sg = cos_t.cpu().numpy().astype(np.float64), sin_t.cpu().numpy().astype(np.float64)
        err = max(np.abs(cg - cref).max(), np.abs(sg - sref).max())
        record("rope_table", "f32", f"t={t} d={d} pos<=131071", "abs err", err, 6e-8)
        flips = int((cos_t.cpu().numpy() != cref.astype(np.float32)).sum() + (sin_t.cpu().numpy() != sref.astype(np.float32)).sum())
        record("rope_table", "f32", f"t={t} d={d}", "bits vs libm", flips, 0)
        for s, dt in TYPES.items():
            for heads in (4, 2):
                for inverse in (0, 1):
                    shape = f"t={t} h={heads} d={d}"
                    x0 = rnd((t, heads, d), dt)
                    x = x0.clone()
                    launch("rope.cu", f"rope_rotate_{s}", cdiv(t * heads * half, BLOCK) if heads == 4 else 3, ptr(x),
                           ptr(cos_t), ptr(sin_t), i32(t), i32(heads), i32(d), i32(inverse))
                    c64 = f64t(cos_t)[:, None, :]
                    s64 = f64t(sin_t)[:, None, :] * (-1.0 if inverse else 1.0)
                    x1, x2 = f64t(x0)[..., :half], f64t(x0)[..., half:]
                    ref = torch.cat([x1 * c64 - x2 * s64, x2 * c64 + x1 * s64], dim=-1)
                    name = f"rope_rotate_{s}"
                    what = "inverse" if inverse else "forward"
                    den = torch.cat([(x1 * c64).abs() + (x2 * s64).abs(), (x2 * c64).abs() + (x1 * s64).abs()], dim=-1)
                    record(name, s, shape, what, rel_err(x, ref, s, 0, den), TOL[s])
                    # fp32 emulation of Rope.rotateToken's exact order
                    cf = cos_t[:, None, :]
                    sf = sin_t[:, None, :] * (-1.0 if inverse else 1.0)
                    y1, y2 = x0[..., :half].float(), x0[..., half:].float()
                    emu = torch.cat([y1 * cf - y2 * sf, y2 * cf + y1 * sf], dim=-1).to(dt)
                    record(name, s, shape, what + " bits", bits_differ(x, emu), 0)


# ---------------------------------------------------------------------------------------------------- SwiGLU
@check
def swiglu():
    for s, dt in TYPES.items():
        # grid=50: grid-stride loops wrap; +1: views one element in (the packed loops must fall back to elements)
        for n, grid, offset in ((111 * 131, None, 0), (1_000_003, 50, 0), (111 * 131, None, 1)):
            shape = f"n={n}" + (f" grid={grid}" if grid else "") + (" +1" if offset else "")
            gr = grid or cdiv(n, BLOCK)
            gate = view_at(rnd((n,), dt, 3.0), offset)
            up = view_at(rnd((n,), dt), offset)
            out = view_at(torch.zeros((n,), dtype=dt, device=DEV), offset)
            launch("swiglu.cu", f"swiglu_forward_{s}", gr, ptr(out), ptr(gate), ptr(up), i64(n))
            g64, u64 = f64t(gate), f64t(up)
            sig = 1.0 / (1.0 + torch.exp(-g64))
            record(f"swiglu_forward_{s}", s, shape, "out", rel_err(out, g64 * sig * u64, s, 0), TOL[s])
            dout = view_at(rnd((n,), dt), offset)
            dg0, du0 = rnd((n,), dt, 0.5), rnd((n,), dt, 0.5)
            dg, du = view_at(dg0.clone(), offset), view_at(du0.clone(), offset)
            launch("swiglu.cu", f"swiglu_backward_{s}", gr, ptr(dg), ptr(du), ptr(dout), ptr(gate), ptr(up), i64(n))
            dy = f64t(dout)
            den_du = f64t(du0).abs() + (dy * g64 * sig).abs()
            record(f"swiglu_backward_{s}", s, shape, "dup +=", rel_err(du, f64t(du0) + dy * g64 * sig, s, 0, den_du), TOL[s])
            ref_dg = f64t(dg0) + dy * u64 * sig * (1 + g64 * (1 - sig))
            den_dg = f64t(dg0).abs() + (dy * u64 * sig).abs() * (1 + (g64 * (1 - sig)).abs())
            record(f"swiglu_backward_{s}", s, shape, "dgate +=", rel_err(dg, ref_dg, s, 0, den_dg), TOL[s])
            # the write form: the old values (non-zero) are not read; equal to adding into zeros (0 + x is x, -0 aside)
            dgw, duw = view_at(dg0.clone(), offset), view_at(du0.clone(), offset)
            launch("swiglu.cu", f"swiglu_backward_write_{s}", gr, ptr(dgw), ptr(duw), ptr(dout), ptr(gate), ptr(up), i64(n))
            dgz, duz = view_at(torch.zeros_like(dg0), offset), view_at(torch.zeros_like(du0), offset)
            launch("swiglu.cu", f"swiglu_backward_{s}", gr, ptr(dgz), ptr(duz), ptr(dout), ptr(gate), ptr(up), i64(n))
            differ = int((dgw != dgz).sum().item() + (duw != duz).sum().item())
            record(f"swiglu_backward_write_{s}", s, shape, "= vs 0 + x", differ, 0)
            record(f"swiglu_backward_write_{s}", s, shape, "dgate =",
                   rel_err(dgw, dy * u64 * sig * (1 + g64 * (1 - sig)), s, 0,
                           (dy * u64 * sig).abs() * (1 + (g64 * (1 - sig)).abs())), TOL[s])


# ---------------------------------------------------------------------------------------------------- Embedding
@check
def embedding():
    V = 1000
    for s, dt in TYPES.items():
        for t, c in ((37, 131), (300, 4096)):
            shape = f"t={t} c={c} V={V}"
            gen = torch.Generator(device="cpu").manual_seed(t)
            ids_cpu = torch.randint(0, 12, (t,), generator=gen, dtype=torch.int32)  # many repeats
            ids_cpu[::5] = torch.randint(0, V, (len(ids_cpu[::5]),), generator=gen, dtype=torch.int32)
            ids_cpu[-1] = V - 1
            ids = ids_cpu.to(DEV)
            table = rnd((V, c), dt)
            out = torch.zeros((t, c), dtype=dt, device=DEV)
            launch("embedding.cu", f"embedding_forward_{s}", cdiv(t * c, BLOCK), ptr(out), ptr(ids), ptr(table), i32(t), i32(c))
            record(f"embedding_forward_{s}", s, shape, "bits", bits_differ(out, table[ids.long()]), 0)
            # host side of the deterministic backward: stable sort by id, segments, distinct ids
            order_cpu = torch.from_numpy(np.argsort(ids_cpu.numpy(), kind="stable").astype(np.int32))
            sorted_ids = ids_cpu[order_cpu.long()]
            uniq, counts = torch.unique_consecutive(sorted_ids, return_counts=True)
            seg = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)]).to(torch.int32)
            u = len(uniq)
            order, seg_d, uniq_d = order_cpu.to(DEV), seg.to(DEV), uniq.to(torch.int32).to(DEV)
            dout = rnd((t, c), dt)
            dtab0 = rnd((V, c), dt, 0.5)
            dtab = dtab0.clone()
            launch("embedding.cu", f"embedding_backward_{s}", u if t < 100 else 5, ptr(dtab), ptr(dout), ptr(order),
                   ptr(seg_d), ptr(uniq_d), i32(u), i32(c))
            ref = f64t(dtab0).index_add(0, ids.long(), f64t(dout))
            den = f64t(dtab0).abs().index_add(0, ids.long(), f64t(dout).abs())
            record(f"embedding_backward_{s}", s, shape, "dtable +=", rel_err(dtab, ref, s, 0, den), TOL[s])
            # Embedding.backward's serial fp32 loop in token order, rounded once
            emu = dtab0.float().clone()
            for k in range(t):
                emu[ids_cpu[k].item()] += dout[k].float()
            record(f"embedding_backward_{s}", s, shape, "bits", bits_differ(dtab, emu.to(dt)), 0)
            # the forward's inverse over distinct rows (the fused loss's scatter of its valid tokens' dhidden rows)
            rows_d = torch.randperm(V, generator=gen)[:t].to(torch.int32).to(DEV)
            src = rnd((t, c), dt)
            dst0 = rnd((V, c), dt)
            dst = dst0.clone()
            launch("embedding.cu", f"rows_scatter_{s}", 3, ptr(dst), ptr(rows_d), ptr(src), i32(t), i32(c))
            want = dst0.clone()
            want[rows_d.long()] = src
            record(f"rows_scatter_{s}", s, shape, "bits", bits_differ(dst, want), 0)


# ---------------------------------------------------------------------------------------------------- elementwise
@check
def elementwise():
    for n, grid in ((37, None), (111 * 131, 7), (1_000_003, None)):
        for s, dt in TYPES.items():
            shape = f"n={n}" + (f" grid={grid}" if grid else "")
            gr = grid or cdiv(n, BLOCK)
            a, b = rnd((n,), dt), rnd((n,), dt)
            out = torch.zeros((n,), dtype=dt, device=DEV)
            launch("elementwise.cu", f"add_{s}", gr, ptr(out), ptr(a), ptr(b), i64(n))
            record(f"add_{s}", s, shape, "bits", bits_differ(out, (a.float() + b.float()).to(dt)), 0)
            dst = a.clone()
            launch("elementwise.cu", f"accumulate_{s}", gr, ptr(dst), ptr(b), i64(n))
            record(f"accumulate_{s}", s, shape, "bits", bits_differ(dst, (a.float() + b.float()).to(dt)), 0)
            x = a.clone()
            sc = 0.3721
            launch("elementwise.cu", f"scale_{s}", gr, ptr(x), f32(sc), i64(n))
            record(f"scale_{s}", s, shape, "bits", bits_differ(x, (a.float() * np.float32(sc).item()).to(dt)), 0)
            # sum of squares: one double per block, the host adds them in order
            G = min(cdiv(n, BLOCK), 1024) if grid is None else grid
            for sq_scale in (1.0, 0.3721):  # x·scale rounded to float, then squared in double
                partial = torch.full((G,), float("nan"), dtype=torch.float64, device=DEV)
                launch("elementwise.cu", f"sum_squares_{s}", G, ptr(partial), ptr(a), i64(n), f32(sq_scale))
                total = 0.0
                for p in partial.cpu().tolist():
                    total += p
                ref = (f64t(a.float() * np.float32(sq_scale).item()) ** 2).sum().item()
                what = f"{shape} G={G} scale={sq_scale}"
                record(f"sum_squares_{s}", s, what, "rel", abs(total - ref) / ref, 1e-12)
                partial2 = torch.zeros_like(partial)
                launch("elementwise.cu", f"sum_squares_{s}", G, ptr(partial2), ptr(a), i64(n), f32(sq_scale))
                record(f"sum_squares_{s}", s, what, "repeat bits", int((partial2 != partial).sum().item()), 0)
        # casts, with values that overflow fp16 and bf16-only range, subnormals too
        for ss, sdt in TYPES.items():
            src = rnd((n,), torch.float64, 1.0)
            src[::11] *= 1e5
            src[::13] *= 1e-6
            src = src.to(sdt)
            for ds, ddt in TYPES.items():
                dst = torch.zeros((n,), dtype=ddt, device=DEV)
                launch("elementwise.cu", f"cast_{ss}_to_{ds}", grid or cdiv(n, BLOCK), ptr(dst), ptr(src), i64(n))
                record(f"cast_{ss}_to_{ds}", ds, f"n={n}", "bits", bits_differ(dst, src.float().to(ddt)), 0)


# ---------------------------------------------------------------------------------------------------- cross-entropy
@check
def cross_entropy():
    rows = 37
    for v in (37, 1000, 128256):
        gen = torch.Generator(device="cpu").manual_seed(v)
        labels_cpu = torch.randint(0, v, (rows,), generator=gen, dtype=torch.int32)
        labels_cpu[[0, 5, 6, 20]] = -100
        logits = (torch.randn((rows, v), generator=gen, dtype=torch.float32) * 4).to(DEV)
        logits[3, int(labels_cpu[3])] += 60.0  # a confident row: softmax of the label near 1 (cancellation in p − 1)
        labels = labels_cpu.to(DEV)
        valid = int((labels_cpu != -100).sum())
        # reference: LossAndLogitGradient, with z − max in fp32 as Java does, exp and sums in double
        m = logits.max(dim=1, keepdim=True).values
        e = torch.exp(f64t(logits - m))
        S = e.sum(dim=1, keepdim=True)
        lab = labels.long().clamp(min=0)
        target = f64t(logits.gather(1, lab[:, None]))
        loss_ref = (f64t(m) + torch.log(S) - target).squeeze(1)
        mask = (labels != -100)
        loss_ref = torch.where(mask, loss_ref, torch.zeros_like(loss_ref))
        onehot = torch.zeros_like(e).scatter_(1, lab[:, None], 1.0)
        for s, dt in TYPES.items():
            scale = (4096.0 if s == "f16" else 1.0) / valid
            scale32 = float(np.float32(scale))
            ref = (e / S - onehot) * scale32
            ref = torch.where(mask[:, None], ref, torch.zeros_like(ref))
            # the label entry is judged against the scale (p − 1 cancels when p is near 1), the rest relative
            denom = onehot * scale32
            shape = f"rows={rows} v={v}"
            loss = torch.full((rows,), float("nan"), dtype=torch.float32, device=DEV)
            dlog = torch.full((rows, v), float("nan"), dtype=torch.float32, device=DEV).to(dt)
            launch("cross_entropy.cu", f"cross_entropy_rows_{s}", rows, ptr(dlog), ptr(loss), ptr(logits), ptr(labels),
                   i32(rows), i32(v), f32(scale32))
            record(f"cross_entropy_rows_{s}", s, shape, "loss", rel_err(loss, loss_ref, "f32", floor=1e-2), 1e-6)
            record(f"cross_entropy_rows_{s}", s, shape, "dlogits", rel_err(dlog, ref, s, floor=0, denom=denom), TOL[s])
            ign = dlog[~mask].float()
            record(f"cross_entropy_rows_{s}", s, shape, "ignored rows", float(ign.abs().max().item()) if ign.numel() else 0.0, 0)


# ---------------------------------------------------------------------------------------------------- AdamW
@check
def adamw():
    n = 111 * 131
    lr, b1, b2, eps, wd, t = 1e-3, 0.9, 0.999, 1e-8, 0.1, 3
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    c = dict(decay=np.float32(1 - lr * wd), b1=np.float32(b1), omb1=np.float32(1 - b1), b2=np.float32(b2),
             omb2=np.float32(1 - b2), step=np.float32(lr / bc1), sc2=np.float32(math.sqrt(bc2)), eps=np.float32(eps))
    c = {k: float(v) for k, v in c.items()}
    for s, dt in [("", torch.float32)] + list(TYPES.items()):
        name = "adamw_step" + (f"_{s}" if s else "")
        st = s or "f32"
        for grid in (None, 5):
            shape = f"n={n}" + (f" grid={grid}" if grid else "")
            p0 = torch.randn(n, dtype=torch.float32, device=DEV)
            g = rnd((n,), dt, 0.01)
            m0 = torch.randn(n, dtype=torch.float32, device=DEV) * 0.01
            v0 = torch.rand(n, dtype=torch.float32, device=DEV) * 1e-4
            p, m, v = p0.clone(), m0.clone(), v0.clone()
            launch("adamw.cu", name, grid or cdiv(n, BLOCK), ptr(p), ptr(g), ptr(m), ptr(v), i64(n), f64(lr), f64(b1),
                   f64(b2), f64(eps), f64(wd), f64(bc1), f64(bc2))
            # AdamW.step's fp32 arithmetic, one rounding per operation
            gf = g.float()
            me = c["b1"] * m0 + c["omb1"] * gf
            ve = c["b2"] * v0 + (c["omb2"] * gf) * gf
            # tensor divisors: torch turns division by a Python scalar into a multiply by its reciprocal
            den = torch.sqrt(ve) / torch.full_like(ve, c["sc2"]) + c["eps"]
            pe = p0 * c["decay"] - c["step"] * (me / den)
            record(name, st, shape, "bits p,m,v", bits_differ(p, pe) + bits_differ(m, me) + bits_differ(v, ve), 0)
            g64 = f64t(g)
            m64 = c["b1"] * f64t(m0) + c["omb1"] * g64
            v64 = c["b2"] * f64t(v0) + c["omb2"] * g64 * g64
            p64 = f64t(p0) * c["decay"] - c["step"] * (m64 / (torch.sqrt(v64) / c["sc2"] + c["eps"]))
            record(name, st, shape, "param", rel_err(p, p64, "f32"), 1e-5)
            record(name, st, shape, "m, v", max(rel_err(m, m64, "f32"), rel_err(v, v64, "f32")), 1e-5)


def main():
    torch.manual_seed(1234)
    print(f"torch {torch.__version__}, cupy {cp.__version__}, {torch.cuda.get_device_name()}, "
          f"NVRTC {cp.cuda.nvrtc.getVersion()}", flush=True)
    for f in sorted(KERNELS.glob("*.cu")):
        if f.name in ("rms_norm.cu", "rope.cu", "swiglu.cu", "embedding.cu", "elementwise.cu", "cross_entropy.cu", "adamw.cu"):
            module(f.name)
            print(f"compiled {f.name}", flush=True)
    print(f"{'kernel':<26} {'type':<5} {'shape':<26} {'what':<14} {'max err':>11} {'tol':>9}", flush=True)
    wanted = sys.argv[1:]  # check names (e.g. cross_entropy adamw); none: all
    for name, c in (("rms_norm", rms_norm), ("rope", rope), ("swiglu", swiglu), ("embedding", embedding),
                    ("elementwise", elementwise), ("cross_entropy", cross_entropy), ("adamw", adamw)):
        if not wanted or name in wanted:
            c()
    print(f"\n{len(ROWS)} checks, {len(FAILURES)} failed", flush=True)
    for f in FAILURES:
        print("FAILED:", f)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
