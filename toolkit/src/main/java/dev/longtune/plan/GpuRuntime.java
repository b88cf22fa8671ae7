package dev.longtune.plan;

import dev.longtune.config.GpuProfile;

/**
 * What a GPU's memory holds besides the tensors the planner's terms count, and so the three figures a user
 * meets (docs/memory-model.md §2.3):
 * <ul>
 *   <li><b>allocated</b>: the sum of the terms, what {@code torch.cuda.max_memory_allocated} (or longtune's
 *       tracker) reports at the peak;</li>
 *   <li><b>reserved</b>: allocated plus the caching allocator's rounding, what {@code max_memory_reserved}
 *       reports at least (it is a floor: a cache that keeps freed blocks holds more until memory runs short,
 *       then frees them and retries);</li>
 *   <li><b>nvidia-smi</b>: reserved plus the process's CUDA context, what {@code nvidia-smi} shows at least.</li>
 * </ul>
 * Whether a plan fits is decided on the nvidia-smi floor: the context and the rounding take GPU memory too.
 */
public final class GpuRuntime {
    /** PyTorch's caching allocator: requests up to 1 MiB share 2 MiB segments (kSmallBuffer, kSmallSize). */
    static final long SMALL_SEGMENT = 2L << 20;
    /** Requests between 1 MiB and 10 MiB share 20 MiB segments (kLargeBuffer, kMinLargeAlloc). */
    static final long LARGE_BUFFER_SEGMENT = 20L << 20;
    /** Larger requests get their own segment rounded up to 2 MiB (kRoundLarge). */
    static final long ROUND_LARGE = 2L << 20;
    /** Default per-thread stack (cudaLimitStackSize), reserved for every thread the GPU can hold resident. */
    static final long STACK_PER_THREAD = 1024;
    /** Default printf FIFO (cudaLimitPrintfFifoSize, 1 MiB) and device malloc heap (cudaLimitMallocHeapSize, 8 MiB). */
    static final long PRINTF_AND_HEAP = 9L << 20;
    /**
     * The driver's own context structures and the kernel images it loads lazily (CUDA ≥ 11.7 with
     * CUDA_MODULE_LOADING=LAZY, PyTorch's default), measured: a bare context (PyTorch 2.11, CUDA 13.0, lazy
     * loading) took 518 MiB in nvidia-smi on the H200 (bench/results/cuda-context-h200.json: 132 SMs × 2,048
     * threads, so 264 MiB of stack and 9 MiB of FIFO and heap), leaving 245 MiB. The remainder is taken to be
     * the same on every GPU (it is the driver's, not the SMs'). Kernels a training step loads later come on
     * top (the same file: 774 MiB after a cuBLAS GEMM, 1,056 MiB after an SDPA forward and backward): the
     * figure is a floor, and bench/peers/cuda_context.py measures it on the GPU at hand.
     */
    static final long DRIVER_AND_MODULES = 245L << 20;

    private GpuRuntime() {}

    /** Device memory one process's CUDA context takes before any tensor: 0 for the CPU engine. */
    public static long cudaContextBytes(GpuProfile gpu) {
        if (gpu.isCpu()) {
            return 0;
        }
        return localMemoryBytes(gpu) + PRINTF_AND_HEAP + DRIVER_AND_MODULES;
    }

    /**
     * The workspace cuBLAS allocates for itself on first use (PyTorch's default per handle: 32 MiB on sm_90, 8 MiB
     * before; cuBLAS's own default is the same order), outside any caching allocator: 0 for the CPU engine.
     */
    public static long cublasWorkspaceBytes(GpuProfile gpu) {
        if (gpu.isCpu()) {
            return 0;
        }
        return (gpu.computeCapability() >= 90 ? 32L : 8L) << 20;
    }

    /** Stack for every resident thread: SMs × threads per SM × 1 KiB (160 MiB on a V100, 264 MiB on an H200). */
    static long localMemoryBytes(GpuProfile gpu) {
        return (long) gpu.sms() * gpu.maxThreadsPerSm() * STACK_PER_THREAD;
    }

    /**
     * The least the caching allocator holds above the allocated bytes at the peak: every term's blocks rounded
     * up to its 2 MiB segments, plus one small-pool segment and one 20 MiB segment that the step's small and
     * medium tensors (norm weights, scalars, buckets under 10 MiB) keep alive. 0 for the CPU engine.
     */
    public static long allocatorReserveBytes(GpuProfile gpu, Breakdown atPeak) {
        if (gpu.isCpu()) {
            return 0;
        }
        long rounding = 0;
        for (Term t : atPeak.terms()) {
            rounding += Units.roundUp(t.bytes(), ROUND_LARGE) - t.bytes();
        }
        return rounding + SMALL_SEGMENT + LARGE_BUFFER_SEGMENT;
    }
}
