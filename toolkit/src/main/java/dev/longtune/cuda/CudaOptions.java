package dev.longtune.cuda;

import java.nio.file.Path;

/**
 * How to open a GPU: which one, a cap on its memory (so an H200 stands in for a 16 GiB V100 or a 48 GiB
 * A6000; Long.MAX_VALUE for none), and where compiled kernels are cached.
 */
public record CudaOptions(int deviceIndex, long memoryCap, Path kernelCache) {
    public static CudaOptions defaults() {
        return new CudaOptions(0, Long.MAX_VALUE, NvrtcCompiler.defaultCacheDir());
    }

    public CudaOptions withMemoryCap(long bytes) { return new CudaOptions(deviceIndex, bytes, kernelCache); }
}
