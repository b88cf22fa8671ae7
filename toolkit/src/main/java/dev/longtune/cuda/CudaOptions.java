package dev.longtune.cuda;

import java.nio.file.Path;

/**
 * How to open a GPU: which one, a cap on its memory (so an H200 stands in for a 16 GiB V100 or a 48 GiB
 * A6000; Long.MAX_VALUE for none), where compiled kernels are cached, whether FlashAttention must take its
 * WMMA (Volta) path even where the mma.sync path fits (what a V100 runs, so that a newer GPU can check it), a
 * limit on shared memory per block to choose kernels as a smaller GPU would (an A6000's 99 KiB), and the memory the
 * fused linear cross-entropy's logits may take (1 GiB; smaller only to run its many-chunk path on small shapes).
 */
public record CudaOptions(int deviceIndex, long memoryCap, Path kernelCache, boolean wmmaAttention, int sharedMemoryLimit,
                          long lossChunkBytes) {
    /** What the fused loss's two chunks of FP32 logits may take by default. */
    public static final long LOSS_CHUNK_BYTES = 1L << 30;
    /** An A6000's (sm_86) opt-in shared memory per block, 99 KiB: {@link #withSharedMemoryLimit} emulates it. */
    public static final int A6000_SHARED_PER_BLOCK = 99 * 1024;

    public static CudaOptions defaults() {
        return new CudaOptions(0, Long.MAX_VALUE, NvrtcCompiler.defaultCacheDir(), false, 0, LOSS_CHUNK_BYTES);
    }

    /** The GPU with this CUDA index (one per rank of data parallelism). */
    public CudaOptions withDevice(int index) { return new CudaOptions(index, memoryCap, kernelCache, wmmaAttention, sharedMemoryLimit, lossChunkBytes); }

    public CudaOptions withMemoryCap(long bytes) { return new CudaOptions(deviceIndex, bytes, kernelCache, wmmaAttention, sharedMemoryLimit, lossChunkBytes); }

    /** FlashAttention on the WMMA path, compiled with FA_FORCE_VOLTA_PATH on sm_80+ (what a V100 runs). */
    public CudaOptions withWmmaAttention() { return new CudaOptions(deviceIndex, memoryCap, kernelCache, true, sharedMemoryLimit, lossChunkBytes); }

    /**
     * Kernels chosen as if the GPU allowed at most {@code bytes} of shared memory per block (e.g.
     * {@link #A6000_SHARED_PER_BLOCK}: FlashAttention's 99 KiB build, as an A6000 runs it); 0 for the GPU's own.
     */
    public CudaOptions withSharedMemoryLimit(int bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("shared memory limit per block: " + bytes + " bytes (0 for the GPU's own)");
        }
        return new CudaOptions(deviceIndex, memoryCap, kernelCache, wmmaAttention, bytes, lossChunkBytes);
    }

    /**
     * The fused linear cross-entropy's two chunks of FP32 logits within {@code bytes}
     * (ops/FusedLinearCrossEntropy.gpuChunkRows); the default, {@link #LOSS_CHUNK_BYTES}, is what the planner counts.
     */
    public CudaOptions withLossChunkBytes(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("fused loss chunk budget: " + bytes + " bytes (must be positive)");
        }
        return new CudaOptions(deviceIndex, memoryCap, kernelCache, wmmaAttention, sharedMemoryLimit, bytes);
    }
}
