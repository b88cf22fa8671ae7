"""PyTorch peer of the GPU benchmark: the same rows as dev.longtune.bench.GpuBench, measured through PyTorch.

Each row: {"impl": "torch", "op", "tokens", "dtype": "bf16", "median_ms", "tflops", "peak_bytes", "rel_err",
"note"} (train steps add "tokens_per_s"; a row that could not run has "error" and nulls). Rules:
- correctness first: each op is checked against an fp32/fp64 reference before it is timed;
  rel_err = max|x - ref| / max|ref|, the largest over the op's outputs (forward output and gradients);
- timing: CUDA events around each repeat, warm-up first, the median of >= 10 repeats (3 for training steps);
- peak_bytes: what the op ADDS, max_memory_allocated during the timed repeats minus the memory held before
  them (inputs, and where stated outputs and grads, allocated beforehand); for train steps the whole
  max_memory_allocated of the step (weights, grads and AdamW state included);
- inputs are seeded random normal (no zeros); token ids and labels are seeded random integers.
The JSON file is rewritten after every row, so a run cut short still leaves the rows it finished.

On the GPU machine, from the repo root:
    python3 bench/peers/torch_peer.py --out torch.json            # all rows (76 s on one H200, 2026-11-28)
    python3 bench/peers/torch_peer.py --out torch.json --quick    # smallest size of each op (smoke test)
    python3 bench/peers/torch_peer.py --out torch.json --only attention_fwd,gemm
"""
import argparse, json, math, statistics, sys, time, traceback

import torch
import torch.nn.functional as F

HQ, HKV, D = 32, 8, 128
HIDDEN, INTER, VOCAB = 4096, 14336, 128256

ATTN_TOKENS = [4096, 16384, 65536, 131072]
LCE_TOKENS = [32768, 131072]
ELEM_TOKENS = [32768]
GEMM_TOKENS = [8192]
TRAIN_TOKENS = [8192, 32768, 131072]

DEV = "cuda"
BF16 = torch.bfloat16


# ---------------------------------------------------------------- helpers

def gen(seed):
    g = torch.Generator(device=DEV)
    g.manual_seed(seed)
    return g


def randn(shape, seed, dtype=BF16, scale=1.0):
    x = torch.randn(shape, device=DEV, dtype=torch.float32, generator=gen(seed))
    if scale != 1.0:
        x.mul_(scale)
    return x.to(dtype)


def rel_err(x, ref):
    """max|x - ref| / max|ref|, computed in float64."""
    x = x.detach().double()
    ref = ref.detach().double()
    if not torch.isfinite(x).all():
        return float("inf")
    den = ref.abs().max().item()
    return (x - ref).abs().max().item() / (den if den > 0 else 1.0)


def time_op(fn, reps=None, warmup=1, target_s=1.0, min_reps=10, max_reps=50):
    """Median ms over CUDA-event-timed repeats, and the bytes the repeats added over what was held before.
    reps=None: chosen from the warm-up so the timed part lasts about target_s, at least min_reps."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    if reps is None:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        one = time.perf_counter() - t0
        reps = int(max(min_reps, min(max_reps, target_s / max(one, 1e-6))))
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for s, e in ev:
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    ms = [s.elapsed_time(e) for s, e in ev]
    return statistics.median(ms), peak, reps


def row(op, tokens, median_ms=None, tflops=None, peak_bytes=None, rel=None, note="", **extra):
    r = {"impl": "torch", "op": op, "tokens": int(tokens), "dtype": "bf16",
         "median_ms": None if median_ms is None else round(float(median_ms), 4),
         "tflops": None if tflops is None else round(float(tflops), 2),
         "peak_bytes": None if peak_bytes is None else int(peak_bytes),
         "rel_err": None if rel is None else float(f"{rel:.3e}"),
         "note": note}
    r.update(extra)
    return r


def free():
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


# ---------------------------------------------------------------- attention

_GQA = {}  # whether the flash backend takes enable_gqa=True


def flash_sdpa(q, k, v):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        if k.shape[1] != q.shape[1]:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def flash_takes_gqa():
    if "ok" not in _GQA:
        q = randn((1, HQ, 256, D), 1)
        k = randn((1, HKV, 256, D), 2)
        try:
            flash_sdpa(q, k, k)
            torch.cuda.synchronize()
            _GQA["ok"], _GQA["why"] = True, ""
        except Exception as e:  # the flash backend refuses GQA: repeat kv outside the timed region
            _GQA["ok"], _GQA["why"] = False, repr(e)[:200]
    return _GQA["ok"]


def attn_inputs(T, seed):
    # HF layout: projections give [b, T, h, d], viewed as [b, h, T, d] (strided, as in LlamaAttention)
    q = randn((1, T, HQ, D), seed).transpose(1, 2)
    k = randn((1, T, HKV, D), seed + 1).transpose(1, 2)
    v = randn((1, T, HKV, D), seed + 2).transpose(1, 2)
    return q, k, v


def sample_rows(T, n=256):
    idx = torch.linspace(0, T - 1, n - 8, device=DEV).round().long()
    idx = torch.cat([idx, torch.arange(T - 8, T, device=DEV)]).unique()
    return idx


def attn_ref_rows(q, k, v, do, idx, o_rows=None):
    """fp32 causal attention output (and dq, when do is given) at query rows idx, over all keys."""
    T = q.shape[2]
    scale = 1.0 / math.sqrt(D)
    n_rep = HQ // HKV
    kmax = int(idx.max().item()) + 1
    mask = torch.arange(kmax, device=DEV)[None, :] > idx[:, None]  # [r, kmax]
    outs, dqs = [], []
    for h0 in range(0, HQ, 8):
        hs = list(range(h0, h0 + 8))
        kv = [h // n_rep for h in hs]
        qh = q[0, hs][:, idx].float()                     # [8, r, D]
        kh = k[0, kv][:, :kmax].float()                   # [8, kmax, D]
        vh = v[0, kv][:, :kmax].float()
        s = torch.matmul(qh, kh.transpose(1, 2)) * scale  # [8, r, kmax]
        s.masked_fill_(mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        del s
        o = torch.matmul(p, vh)
        outs.append(o)
        if do is not None:
            doh = do[0, hs][:, idx].float()
            dp = torch.matmul(doh, vh.transpose(1, 2))
            dd = (doh * o).sum(-1, keepdim=True)
            ds = p * (dp - dd)
            dqs.append(torch.matmul(ds, kh) * scale)
            del dp, ds
        del p
    o = torch.cat(outs, 0)
    return o, (torch.cat(dqs, 0) if do is not None else None)


def bench_attention(T, bwd):
    gqa = flash_takes_gqa()
    q, k, v = attn_inputs(T, 100 + T % 997)
    note = "SDPA flash backend only, causal, GQA 32/8, d=128, batch 1"
    if gqa:
        note += ", enable_gqa=True"
        kk, vv = k, v
    else:
        kk = k.repeat_interleave(HQ // HKV, dim=1)
        vv = v.repeat_interleave(HQ // HKV, dim=1)
        note += ", flash refused enable_gqa: kv repeat_interleave'd to 32 heads outside the timed region" + \
                (" (dk/dv are w.r.t. the repeated kv)" if bwd else "")
    fwd_flops = 2 * 2 * T * T * HQ * D / 2
    flops = fwd_flops * (3.5 if bwd else 1.0)
    idx = sample_rows(T)

    if not bwd:
        with torch.no_grad():
            out = flash_sdpa(q, kk, vv)
            o_ref, _ = attn_ref_rows(q, k, v, None, idx)
            err = rel_err(out[0].transpose(0, 1)[idx].transpose(0, 1), o_ref)
            del out, o_ref
            note += f"; checked against fp32 at {len(idx)} query rows"
            ms, peak, reps = time_op(lambda: flash_sdpa(q, kk, vv))
        return row("attention_fwd", T, ms, flops / ms / 1e9, peak, err, note + f"; {reps} reps; peak = output")

    q.requires_grad_(True); kk.requires_grad_(True); vv.requires_grad_(True)
    do = randn((1, T, HQ, D), 7 + T % 991).transpose(1, 2)

    def step():
        o = flash_sdpa(q, kk, vv)
        return torch.autograd.grad(o, (q, kk, vv), do)

    o = flash_sdpa(q, kk, vv)
    dq, dk, dv = torch.autograd.grad(o, (q, kk, vv), do)
    if T <= 8192:
        # full fp32 reference through the math backend, all of o, dq, dk, dv
        from torch.nn.attention import sdpa_kernel, SDPBackend
        q32, k32, v32 = (t.detach().float().requires_grad_(True) for t in (q, k, v))
        with sdpa_kernel(SDPBackend.MATH):
            o32 = F.scaled_dot_product_attention(q32, k32.repeat_interleave(HQ // HKV, 1),
                                                 v32.repeat_interleave(HQ // HKV, 1), is_causal=True)
        g32 = torch.autograd.grad(o32, (q32, k32, v32), do.float())
        if not gqa:  # fold the repeated-kv grads back onto the 8 kv heads
            dk = dk.unflatten(1, (HKV, HQ // HKV)).sum(2)
            dv = dv.unflatten(1, (HKV, HQ // HKV)).sum(2)
        err = max(rel_err(o, o32), rel_err(dq, g32[0]), rel_err(dk, g32[1]), rel_err(dv, g32[2]))
        note += "; o, dq, dk, dv checked against fp32 (math backend), all rows"
        del q32, k32, v32, o32, g32
    else:
        with torch.no_grad():
            o_ref, dq_ref = attn_ref_rows(q.detach(), k.detach(), v.detach(), do, idx)
            sel = lambda t: t[0].transpose(0, 1)[idx].transpose(0, 1)
            err = max(rel_err(sel(o), o_ref), rel_err(sel(dq), dq_ref))
        note += f"; o and dq checked against fp32 at {len(idx)} query rows (dk, dv fully at T<=8192 only)"
        del o_ref, dq_ref
    del o, dq, dk, dv
    free()
    ms, peak, reps = time_op(step)
    return row("attention_fwd_bwd", T, ms, flops / ms / 1e9, peak, err,
               note + f"; {reps} reps; FLOPs = 3.5 x causal fwd; peak = o + grads + workspace")


# ---------------------------------------------------------------- linear cross-entropy

_MM_OUT = {}


def mm_f32(a, b):
    """bf16 x bf16 -> fp32 result (fp32 accumulate); torch.mm(out_dtype=) where this torch has it."""
    if _MM_OUT.get("ok", True):
        try:
            r = torch.mm(a, b, out_dtype=torch.float32)
            _MM_OUT["ok"] = True
            return r
        except (TypeError, RuntimeError):
            _MM_OUT["ok"] = False
    return torch.mm(a, b).float()


LCE_CHUNK = 4096


def lce_chunked(h, W, labels, dh, dW, chunk=LCE_CHUNK):
    """Chunked eager linear cross-entropy, forward + backward, autograd-free across chunks.
    Per chunk: logits = h_c @ W^T in fp32; loss_c = F.cross_entropy(sum); grad_logits by autograd on the
    chunk's logits leaf only; dh_c = g @ W into dh; dW += g^T @ h_c (bf16 addmm_, Liger-style)."""
    T = h.shape[0]
    total = torch.zeros((), device=DEV, dtype=torch.float32)
    for s in range(0, T, chunk):
        e = min(T, s + chunk)
        hc = h[s:e]
        logits = mm_f32(hc, W.t()).requires_grad_(True)
        loss = F.cross_entropy(logits, labels[s:e], reduction="sum", ignore_index=-100)
        (g,) = torch.autograd.grad(loss, logits)
        total += loss.detach()
        del logits, loss
        g = g.to(h.dtype)
        torch.mm(g, W, out=dh[s:e])
        if s == 0:
            torch.mm(g.t(), hc, out=dW)
        else:
            dW.addmm_(g.t(), hc)
        del g
    return total


def lce_ref(h, W, labels, chunk=4096):
    """fp32 reference: loss, dh, dW (fp32 GEMMs, TF32 off)."""
    T = h.shape[0]
    W32 = W.float()
    dW = torch.zeros_like(W32)
    dh = torch.empty(h.shape, device=DEV, dtype=torch.float32)
    total = torch.zeros((), device=DEV, dtype=torch.float64)
    for s in range(0, T, chunk):
        e = min(T, s + chunk)
        hc = h[s:e].float()
        logits = (hc @ W32.t()).requires_grad_(True)
        loss = F.cross_entropy(logits, labels[s:e], reduction="sum", ignore_index=-100)
        (g,) = torch.autograd.grad(loss, logits)
        total += loss.detach().double()
        dh[s:e] = g @ W32
        dW.addmm_(g.t(), hc)
        del logits, g
    return total, dh, dW


def bench_lce(T):
    h = randn((T, HIDDEN), 11)
    W = randn((VOCAB, HIDDEN), 12, scale=0.02)
    g = gen(13)
    labels = torch.randint(0, VOCAB, (T,), device=DEV, generator=g)
    drop = torch.rand((T,), device=DEV, generator=g) < 0.05
    labels[drop] = -100
    dh = torch.empty_like(h)
    dW = torch.empty_like(W)
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    loss = lce_chunked(h, W, labels, dh, dW)
    rl, rdh, rdW = lce_ref(h, W, labels)
    torch.backends.cuda.matmul.allow_tf32 = prev
    err = max(abs(loss.item() - rl.item()) / abs(rl.item()), rel_err(dh, rdh), rel_err(dW, rdW))
    del rl, rdh, rdW, loss
    free()
    ms, peak, reps = time_op(lambda: lce_chunked(h, W, labels, dh, dW))
    flops = 6.0 * T * HIDDEN * VOCAB
    how = "torch.mm(out_dtype=fp32)" if _MM_OUT.get("ok") else "bf16 mm then .float()"
    note = (f"manual autograd-free chunk loop ({LCE_CHUNK}-token chunks): logits fp32 via {how}, F.cross_entropy"
            f"(sum, ignore_index=-100) + autograd.grad on the chunk's logits only, dh = g@W, dW += g^T@h (bf16 addmm_); "
            f"~5% labels -100; loss, dh, dW checked against fp32; {reps} reps; FLOPs = 6*T*H*V; "
            f"peak = added over h, W, labels, dh, dW")
    return row("linear_cross_entropy", T, ms, flops / ms / 1e9, peak, err, note)


# ---------------------------------------------------------------- eager elementwise ops (HF Llama style)

def hf_rmsnorm(x, w, eps=1e-5):
    dt = x.dtype
    x = x.to(torch.float32)
    var = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(var + eps)
    return w * x.to(dt)


def bench_rmsnorm(T):
    x = randn((T, HIDDEN), 21).requires_grad_(True)
    w = (1.0 + randn((HIDDEN,), 22, dtype=torch.float32, scale=0.1)).to(BF16).requires_grad_(True)
    gy = randn((T, HIDDEN), 23)

    def step():
        y = hf_rmsnorm(x, w)
        return torch.autograd.grad(y, (x, w), gy)

    y = hf_rmsnorm(x, w)
    dx, dw = torch.autograd.grad(y, (x, w), gy)
    x64, w64 = x.detach().double().requires_grad_(True), w.detach().double().requires_grad_(True)
    y64 = w64 * (x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5))
    r = torch.autograd.grad(y64, (x64, w64), gy.double())
    err = max(rel_err(y, y64), rel_err(dx, r[0]), rel_err(dw, r[1]))
    del y, dx, dw, x64, w64, y64, r
    free()
    ms, peak, reps = time_op(step)
    return row("rms_norm_fwd_bwd", T, ms, None, peak, err,
               f"eager HF LlamaRMSNorm (fp32 upcast), autograd fwd+bwd, hidden {HIDDEN}; y, dx, dw checked against fp64; {reps} reps")


def bench_swiglu(T):
    a = randn((T, INTER), 31).requires_grad_(True)
    b = randn((T, INTER), 32).requires_grad_(True)
    gy = randn((T, INTER), 33)

    def step():
        y = F.silu(a) * b
        return torch.autograd.grad(y, (a, b), gy)

    y = F.silu(a) * b
    da, db = torch.autograd.grad(y, (a, b), gy)
    a64, b64 = a.detach().double().requires_grad_(True), b.detach().double().requires_grad_(True)
    y64 = F.silu(a64) * b64
    r = torch.autograd.grad(y64, (a64, b64), gy.double())
    err = max(rel_err(y, y64), rel_err(da, r[0]), rel_err(db, r[1]))
    del y, da, db, a64, b64, y64, r
    free()
    ms, peak, reps = time_op(step)
    return row("swiglu_fwd_bwd", T, ms, None, peak, err,
               f"eager silu(gate)*up as in HF LlamaMLP, autograd fwd+bwd, {T}x{INTER}; y, dgate, dup checked against fp64; {reps} reps")


def llama3_inv_freq(dtype=torch.float64, theta=500000.0, factor=8.0, low=1.0, high=4.0, orig=8192):
    """HF _compute_llama3_parameters."""
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, device=DEV, dtype=torch.int64).to(dtype) / D))
    low_wl, high_wl = orig / low, orig / high
    wl = 2 * math.pi / inv
    inv_l = torch.where(wl > low_wl, inv / factor, inv)
    smooth = (orig / wl - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    med = ~(wl < high_wl) * ~(wl > low_wl)
    return torch.where(med, smoothed, inv_l)


def rope_cos_sin(T, dtype):
    inv = llama3_inv_freq(torch.float32 if dtype != torch.float64 else torch.float64)
    pos = torch.arange(T, device=DEV, dtype=inv.dtype)
    f = pos[:, None] * inv[None, :]
    emb = torch.cat((f, f), dim=-1)
    return emb.cos()[None].to(dtype), emb.sin()[None].to(dtype)   # [1, T, D], attention_scaling = 1


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def hf_apply_rope(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def bench_rope(T):
    # [b, T, h, d] -> [b, h, T, d] views, as LlamaAttention hands them to apply_rotary_pos_emb
    q = randn((1, T, HQ, D), 41).transpose(1, 2).requires_grad_(True)
    k = randn((1, T, HKV, D), 42).transpose(1, 2).requires_grad_(True)
    gq = randn((1, HQ, T, D), 43)
    gk = randn((1, HKV, T, D), 44)
    cos, sin = rope_cos_sin(T, BF16)   # HF casts cos/sin to the activations' dtype

    def step():
        qe, ke = hf_apply_rope(q, k, cos, sin)
        return torch.autograd.grad((qe, ke), (q, k), (gq, gk))

    qe, ke = hf_apply_rope(q, k, cos, sin)
    dq, dk = torch.autograd.grad((qe, ke), (q, k), (gq, gk))
    c64, s64 = rope_cos_sin(T, torch.float64)
    q64, k64 = q.detach().double().requires_grad_(True), k.detach().double().requires_grad_(True)
    qe64, ke64 = hf_apply_rope(q64, k64, c64, s64)
    r = torch.autograd.grad((qe64, ke64), (q64, k64), (gq.double(), gk.double()))
    err = max(rel_err(qe, qe64), rel_err(ke, ke64), rel_err(dq, r[0]), rel_err(dk, r[1]))
    del qe, ke, dq, dk, q64, k64, qe64, ke64, r, c64, s64
    free()
    ms, peak, reps = time_op(step)
    return row("rope_fwd_bwd", T, ms, None, peak, err,
               f"eager HF apply_rotary_pos_emb (rotate_half), 32 q + 8 kv heads, d=128, Llama 3 scaled inv_freq "
               f"(theta 5e5, factor 8), bf16 cos/sin precomputed outside timing, strided [b,h,T,d] views; "
               f"outputs and grads checked against fp64 (fp64 cos/sin); {reps} reps")


# ---------------------------------------------------------------- GEMM

def bench_gemm(M):
    N, K = INTER, HIDDEN
    a = randn((M, K), 51)
    b = randn((N, K), 52)
    c = torch.matmul(a, b.t())
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    ref = torch.matmul(a.float(), b.float().t())
    torch.backends.cuda.matmul.allow_tf32 = prev
    err = rel_err(c, ref)
    del c, ref
    free()
    ms, peak, reps = time_op(lambda: torch.matmul(a, b.t()), warmup=5)
    return row("gemm", M, ms, 2.0 * M * N * K / ms / 1e9, peak, err,
               f"torch.matmul bf16 ({M}x{K})·({N}x{K})^T (cuBLAS), checked against fp32; {reps} reps; peak = output")


# ---------------------------------------------------------------- training step (HF Llama, 2 layers)

_MODEL = {}


def _llama_config(style):
    from transformers import LlamaConfig
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    kw = dict(hidden_size=HIDDEN, intermediate_size=INTER, num_attention_heads=HQ, num_key_value_heads=HKV,
              head_dim=D, vocab_size=VOCAB, num_hidden_layers=2, rms_norm_eps=1e-5,
              max_position_embeddings=131072, tie_word_embeddings=False, use_cache=False)
    if style == "legacy":   # transformers 4.x names (5.x converts them)
        cfg = LlamaConfig(rope_theta=500000.0, rope_scaling=rope, **kw)
    else:                   # transformers 5.x names
        cfg = LlamaConfig(rope_parameters=dict(rope, rope_theta=500000.0), **kw)
    cfg._attn_implementation = "sdpa"
    return cfg


def hf_model():
    if "m" not in _MODEL:
        import transformers
        from transformers import LlamaForCausalLM
        m = None
        ref = llama3_inv_freq(torch.float32)
        for style in ("legacy", "v5"):
            try:
                cfg = _llama_config(style)
            except Exception as e:
                print(f"LlamaConfig ({style} rope names) refused: {e!r}"[:300], flush=True)
                continue
            torch.manual_seed(0)
            old = torch.get_default_dtype()
            torch.set_default_dtype(BF16)   # what from_pretrained(dtype=bf16) does during init
            try:
                with torch.device(DEV):
                    m = LlamaForCausalLM(cfg)
            finally:
                torch.set_default_dtype(old)
            rot = m.model.rotary_emb
            inv = rot.inv_freq.float()
            diff = ((inv - ref).abs().max() / ref.abs().max()).item()
            rtype = getattr(rot, "rope_type", "?")
            if rtype == "llama3" and diff < 1e-5:
                break
            print(f"config ({style}): rope_type {rtype}, inv_freq off the llama3 formula by {diff:.2e}", flush=True)
            del m
            m = None
        if m is None:
            raise RuntimeError("could not build a LlamaConfig with llama3 rope scaling")
        dts = {p.dtype for p in m.parameters()}
        assert dts == {BF16}, dts
        m.config.use_cache = False
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        m.train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-5, weight_decay=0.0, fused=False)
        _MODEL.update(m=m, opt=opt, ver=transformers.__version__, style=style, rope_diff=diff,
                      params=sum(p.numel() for p in m.parameters()))
    return _MODEL


def bench_train(T):
    st = hf_model()
    m, opt = st["m"], st["opt"]
    ids = torch.randint(0, VOCAB, (1, T), device=DEV, generator=gen(61))
    losses = []

    def step():
        out = m(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.detach())
        del out

    free()
    ms, _, reps = time_op(step, reps=3, warmup=1)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    l = [x.item() for x in losses]
    ok = all(math.isfinite(x) for x in l)
    note = (f"HF transformers {st['ver']} LlamaForCausalLM, 2 layers, {st['params']/1e9:.2f}B params, random init, "
            f"bf16 weights, sdpa, llama3 rope scaling ({st['style']} config names; HF inv_freq = our llama3 formula "
            f"within {st['rope_diff']:.1e}), gradient checkpointing (non-reentrant), batch 1, "
            f"labels=input_ids (HF loss upcasts logits to fp32), torch.optim.AdamW foreach (fused=False), bf16 states; "
            f"1 warm-up + {reps} timed steps; peak = whole max_memory_allocated; losses {', '.join(f'{x:.3f}' for x in l)}"
            f" (ln V = {math.log(VOCAB):.3f})")
    if not ok:
        return row("train_step_2layer", T, ms, None, peak, None, note, tokens_per_s=None, error="non-finite loss")
    return row("train_step_2layer", T, ms, None, peak, None, note, tokens_per_s=round(T / (ms / 1e3), 1))


# ---------------------------------------------------------------- driver

def plan(quick):
    def sz(l):
        return l[:1] if quick else l
    p = []
    p += [("attention_fwd", T, lambda T=T: bench_attention(T, False)) for T in sz(ATTN_TOKENS)]
    p += [("attention_fwd_bwd", T, lambda T=T: bench_attention(T, True)) for T in sz(ATTN_TOKENS)]
    p += [("linear_cross_entropy", T, lambda T=T: bench_lce(T)) for T in sz(LCE_TOKENS)]
    p += [("rms_norm_fwd_bwd", T, lambda T=T: bench_rmsnorm(T)) for T in sz(ELEM_TOKENS)]
    p += [("swiglu_fwd_bwd", T, lambda T=T: bench_swiglu(T)) for T in sz(ELEM_TOKENS)]
    p += [("rope_fwd_bwd", T, lambda T=T: bench_rope(T)) for T in sz(ELEM_TOKENS)]
    p += [("gemm", T, lambda T=T: bench_gemm(T)) for T in sz(GEMM_TOKENS)]
    p += [("train_step_2layer", T, lambda T=T: bench_train(T)) for T in sz(TRAIN_TOKENS)]
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="only the smallest size of each op")
    ap.add_argument("--only", default="", help="comma-separated ops to run")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_peer.py: no CUDA device")
    only = {s for s in a.only.split(",") if s}
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, python {sys.version.split()[0]}", flush=True)
    rows = []
    t_all = time.perf_counter()
    for op, T, fn in plan(a.quick):
        if only and op not in only:
            continue
        t0 = time.perf_counter()
        try:
            r = fn()
        except Exception as e:
            oom = isinstance(e, torch.cuda.OutOfMemoryError)
            msg = ("out of memory: " if oom else "") + repr(e)[:400]
            if not oom:
                traceback.print_exc()
            r = row(op, T, note="failed", error=msg)
            if op == "train_step_2layer":
                r["tokens_per_s"] = None
        free()
        rows.append(r)
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
        show = {k: r.get(k) for k in ("median_ms", "tflops", "peak_bytes", "rel_err", "tokens_per_s", "error") if r.get(k) is not None}
        print(f"{op:22s} {T:7d}  {time.perf_counter() - t0:6.1f}s  {json.dumps(show)}", flush=True)
    print(f"{len(rows)} rows in {time.perf_counter() - t_all:.1f}s -> {a.out}", flush=True)


if __name__ == "__main__":
    main()
