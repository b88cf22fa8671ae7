package dev.longtune.cuda;

import java.nio.file.Path;

/**
 * How to open a GPU: which one, a cap on its memory (so an H200 stands in for a 16 GiB V100 or a 48 GiB
 * A6000; Long.MAX_VALUE for none), where compiled kernels are cached, and whether FlashAttention must take its
 * WMMA (Volta) path even where the mma.sync path fits (what a V100 or an sm_86 card runs, so that a newer GPU
 * can check it).
 */
public record CudaOptions(int deviceIndex, long memoryCap, Path kernelCache, boolean wmmaAttention) {
    public static CudaOptions defaults() {
        return new CudaOptions(0, Long.MAX_VALUE, NvrtcCompiler.defaultCacheDir(), false);
    }

    /** The GPU with this CUDA index (one per rank of data parallelism). */
    public CudaOptions withDevice(int index) { return new CudaOptions(index, memoryCap, kernelCache, wmmaAttention); }

    public CudaOptions withMemoryCap(long bytes) { return new CudaOptions(deviceIndex, bytes, kernelCache, wmmaAttention); }

    /** FlashAttention on the WMMA path, compiled with FA_FORCE_VOLTA_PATH on sm_80+ (as CudaKernels does for sm_86/89). */
    public CudaOptions withWmmaAttention() { return new CudaOptions(deviceIndex, memoryCap, kernelCache, true); }
}
