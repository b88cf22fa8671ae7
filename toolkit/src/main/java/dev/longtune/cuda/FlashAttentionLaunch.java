package dev.longtune.cuda;

import dev.longtune.tensor.DType;

import java.util.HashSet;
import java.util.Set;

/**
 * Block shape of one FlashAttention kernel: rows per tile (queries in forward, keys in backward), threads,
 * dynamic shared memory. Values from kernels/cuda/flash_attention.md; PLACEHOLDER until the kernel lands.
 */
record FlashAttentionLaunch(int tile, int threads, int sharedBytes) {
    private static final Set<String> prepared = new HashSet<>();

    static FlashAttentionLaunch forward(DType e, int d, int arch) {
        return new FlashAttentionLaunch(64, 128, 0);
    }

    static FlashAttentionLaunch preprocess(DType e, int d, int arch) {
        return new FlashAttentionLaunch(64, 128, 0);
    }

    static FlashAttentionLaunch backward(DType e, int d, int arch) {
        return new FlashAttentionLaunch(64, 128, 0);
    }

    /** Raises the kernel's shared-memory limit once when it needs more than the default 48 KiB. */
    void prepare(CudaKernels kernels, String name) {
        if (sharedBytes > 48 * 1024) {
            synchronized (prepared) {
                if (prepared.add(name)) {
                    kernels.allowSharedMemory(name, sharedBytes);
                }
            }
        }
    }
}
