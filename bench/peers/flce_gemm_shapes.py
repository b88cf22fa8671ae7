"""The three cuBLAS GEMMs of one fused-linear-cross-entropy chunk, timed alone through PyTorch at several chunk sizes,
to see which of them keeps the fused loss below the GEMM row's rate (docs/benchmarks.md, issue 11's FLCE target).

    python3 bench/peers/flce_gemm_shapes.py [--chunks 1280,2560,4096] [--blas cublas|cublaslt] [--json FILE]

Shapes (Llama 3.1 8B head: h = 4096, V = 128,256; bf16 inputs, fp32 accumulation):
  logits = H·Wᵀ   (chunk × h)·(h × V), fp32 output as our kernel writes it (bf16 output beside it)
  dH     = dZ·W   (chunk × V)·(V × h)
  dW    += dZᵀ·H  (V × chunk)·(chunk × h), accumulated (beta = 1)
Medians of CUDA-event times; no zeros as data."""
import argparse, json
import torch

from sdpa_backends import timed  # median of CUDA-event times after a warm-up

H, V = 4096, 128256


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="1280,2560,4096")
    ap.add_argument("--blas", choices=("cublas", "cublaslt"), default=None,
                    help="torch.backends.cuda.preferred_blas_library (default: PyTorch's own choice)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.blas:
        torch.backends.cuda.preferred_blas_library(args.blas)
    print("BLAS library:", torch.backends.cuda.preferred_blas_library(), flush=True)
    torch.manual_seed(0)
    w = torch.randn(V, H, device="cuda", dtype=torch.bfloat16) * 0.02
    dw = torch.randn(V, H, device="cuda", dtype=torch.bfloat16) * 0.01
    rows = []
    for c in (int(x) for x in args.chunks.split(",")):
        h = torch.randn(c, H, device="cuda", dtype=torch.bfloat16)
        dz = torch.randn(c, V, device="cuda", dtype=torch.bfloat16) * 1e-3
        flops = 2.0 * c * H * V
        ops = {
            "logits_bf16_out": lambda: torch.mm(h, w.t()),
            "dH": lambda: torch.mm(dz, w),
            "dW_accumulate": lambda: dw.addmm_(dz.t(), h),
        }
        try:
            torch.mm(h[:8], w[:8].t(), out_dtype=torch.float32)
            ops["logits_fp32_out"] = lambda: torch.mm(h, w.t(), out_dtype=torch.float32)
        except (TypeError, RuntimeError) as e:
            print("no out_dtype=float32 for torch.mm here:", e)
        for name, fn in ops.items():
            ms = timed(fn, reps=15)
            rows.append({"chunk": c, "gemm": name, "ms": ms, "tflops": flops / (ms * 1e9)})
            print(f"chunk {c:5d} {name:16s} {ms:8.3f} ms {flops / (ms * 1e9):7.1f} TFLOP/s", flush=True)
        del h, dz
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "blas": str(torch.backends.cuda.preferred_blas_library()),
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
