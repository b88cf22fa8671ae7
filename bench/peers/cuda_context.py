"""The device memory of one PyTorch process's CUDA context, as nvidia-smi sees it, step by step.

Checks docs/memory-model.md §2.3 (GpuRuntime): context = SMs x resident threads x 1 KiB of stack + 9 MiB
(printf FIFO, device heap) + driver and lazily loaded kernels. Prints JSON: nvidia-smi's used MiB for this
process after each step, the allocator's allocated/reserved bytes, and the GPU's SM count.
Run on the GPU machine: python3 bench/peers/cuda_context.py > bench/results/cuda-context-h200.json
"""
import json
import os
import subprocess

import torch


def smi_used_mib():
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.strip().splitlines():
        pid, used = [x.strip() for x in line.split(",")]
        if int(pid) == os.getpid():
            return int(used)
    return 0


def main():
    steps = {}
    torch.cuda.init()
    torch.cuda.synchronize()
    steps["context"] = smi_used_mib()
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    (a @ a).sum().item()
    steps["cublas_gemm"] = smi_used_mib()
    q = torch.randn(1, 32, 4096, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, 8, 4096, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 8, 4096, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).sum().backward()
    torch.cuda.synchronize()
    steps["sdpa_fwd_bwd"] = smi_used_mib()
    props = torch.cuda.get_device_properties(0)
    print(json.dumps({
        "gpu": props.name, "sms": props.multi_processor_count,
        "max_threads_per_sm": getattr(props, "max_threads_per_multi_processor", None),
        "nvidia_smi_used_mib": steps,
        "allocated_bytes": torch.cuda.memory_allocated(), "reserved_bytes": torch.cuda.memory_reserved(),
        "cuda_module_loading": os.environ.get("CUDA_MODULE_LOADING", "(default: lazy)"),
        "torch": torch.__version__,
    }, indent=1))


if __name__ == "__main__":
    main()
