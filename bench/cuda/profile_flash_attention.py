#!/usr/bin/env python3
"""One forward and one backward of ours and of SDPA flash at T tokens (causal, 32/8 heads, d=128, bf16), for ncu:

    ncu --clock-control none --set full -k regex:'flash_attention_backward_bf16|flash_bwd_dq' -c 2 \
        -o bwd python3 profile_flash_attention.py [T] [--hopper DEFINE=1,...]
"""
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

import check_flash_attention as c

t = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
hq, hkv, d, dt = 32, 8, 128, torch.bfloat16
if "--hopper" in sys.argv:  # the sm_90a kernels, built with the defines that follow (A=1,B=2)
    i = sys.argv.index("--hopper")
    defines = tuple("-D" + x for x in sys.argv[i + 1].split(",")) if len(sys.argv) > i + 1 else ()
    fa = c.FA(c.load_module(), sm90=c.load_sm90_module(defines), sm90_defines=defines)
else:
    fa = c.FA(c.load_module())
cu = torch.tensor([0, t], dtype=torch.int32, device="cuda")
q, dout = (torch.randn(t, hq, d, device="cuda", dtype=dt) for _ in range(2))
k, v = (torch.randn(t, hkv, d, device="cuda", dtype=dt) for _ in range(2))
out, dq = torch.empty_like(q), torch.zeros_like(q)
lse, delta = torch.empty(hq, t, device="cuda"), torch.empty(hq, t, device="cuda")
dq_accum = torch.zeros(t, hq, d, device="cuda")
dk, dv = torch.zeros_like(k), torch.zeros_like(v)
scale = 1.0 / math.sqrt(d)
fa.forward(out, lse, q, k, v, cu, scale)
fa.preprocess(delta, out, dout)
fa.backward(dq_accum, dk, dv, q, k, v, dout, lse, delta, cu, scale)
fa.dq_finish(dq, dq_accum)
qt, kt, vt = (x.view(1, t, -1, d).transpose(1, 2).detach().requires_grad_(True) for x in (q, k, v))
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    o = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=True)
o.backward(dout.view(1, t, hq, d).transpose(1, 2))
torch.cuda.synchronize()
print("profiled T =", t)
