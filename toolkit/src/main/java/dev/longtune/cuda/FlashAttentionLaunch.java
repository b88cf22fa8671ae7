package dev.longtune.cuda;

import dev.longtune.tensor.DType;

/**
 * Block shape of one FlashAttention kernel: rows per tile (queries in forward, keys in backward), threads,
 * dynamic shared memory; the formulas of kernels/cuda/flash_attention.md. The mma.sync path (sm_80+) needs more
 * shared memory than the WMMA path (sm_70/75, or any GPU the module was built for with FA_FORCE_VOLTA_PATH); its
 * 99 KiB build (sm_86/89) fits an A6000's limit.
 */
public record FlashAttentionLaunch(int tile, int threads, int sharedBytes) {
    private static boolean tensorCores(DType e) { return e != DType.FP32; }

    /** Which build of flash_attention.cu a GPU runs (CudaKernels picks it from the architecture and shared memory). */
    public enum Path {
        /** WMMA (sm_70/75, or FA_FORCE_VOLTA_PATH). */
        WMMA,
        /** mma.sync with padded tiles (sm_80+ with at least {@link #largestMmaPathShared()} bytes per block). */
        MMA,
        /**
         * mma.sync built with FA_SMALL_SMEM for 99 KiB per block (sm_86/89): at head dim 128, swizzled unpadded tiles
         * and, in the backward, one Q and one dO tile (dSᵀ written into dO's); head dim 64 is as {@link #MMA}.
         */
        MMA_SMALL
    }

    static FlashAttentionLaunch forward(DType e, int d, Path path) {
        int ldh = d + 8;
        if (!tensorCores(e)) {
            return new FlashAttentionLaunch(16, 256, 0);
        }
        return switch (path) {
            case WMMA -> new FlashAttentionLaunch(64, 128, 2 * 64 * ldh * 2 + 64 * 68 * 4 + 256);
            case MMA_SMALL -> d == 128 ? new FlashAttentionLaunch(128, 128, 6 * 64 * d * 2 + 128 * 4) : forward(e, d, Path.MMA);
            case MMA -> new FlashAttentionLaunch(128, 128, 6 * 64 * ldh * 2 + 128 * 4);
        };
    }

    static FlashAttentionLaunch backward(DType e, int d, Path path) {
        int ldh = d + 8;
        if (!tensorCores(e)) {
            return new FlashAttentionLaunch(16, 256, 0);
        }
        return switch (path) {
            case WMMA -> new FlashAttentionLaunch(64, 128, 4 * 64 * ldh * 2 + 64 * 68 * 4 + 4096 + 768);
            case MMA_SMALL -> d == 128 ? new FlashAttentionLaunch(128, 256, 6 * 64 * d * 2 + 7 * 64 * 4) : backward(e, d, Path.MMA);
            case MMA -> new FlashAttentionLaunch(128, 256, 8 * 64 * ldh * 2 + 128 * 72 * 2 + 1792);
        };
    }

    /**
     * The Hopper forward (flash_attention_sm90.cu): 128 query rows per block as two MMA warpgroups and a producer
     * warpgroup (384 threads); Q and three stages of a K and a V tile of 128 × 128 16-bit values, the rows' document
     * starts, twelve mbarriers (full and empty for each stage of K and of V), and 1024 bytes to align the swizzled
     * tiles: 231,008 bytes of the 232,448 (227 KiB) a block may have.
     */
    static FlashAttentionLaunch hopperForward() {
        int stages = 3; // FA90_FWD_STAGES in flash_attention_sm90.cu (the kernel traps when given less)
        return new FlashAttentionLaunch(128, 384, (1 + 2 * stages) * 128 * 128 * 2 + 128 * 4 + 4 * stages * 8 + 1024);
    }

    /**
     * The Hopper backward: 128 keys per block as two MMA warpgroups and a producer warpgroup (384 threads); K and V
     * tiles (128 rows), two stages of a Q and a dO tile of 64 rows, two dSᵀ tiles (128 × 64), each MMA warpgroup's
     * 64 × 64 FP32 dQ tile staged for its bulk reduction, lse, delta and document starts of both stages, the stages'
     * four mbarriers, alignment.
     */
    static FlashAttentionLaunch hopperBackward() {
        return new FlashAttentionLaunch(128, 384,
                2 * 128 * 128 * 2 + 2 * 2 * 64 * 128 * 2 + 2 * 128 * 128 + 2 * 64 * 64 * 4 + 2 * 3 * 64 * 4 + 4 * 8 + 1024);
    }

    /** The most shared memory the mma.sync path asks of one block (backward, head dim 128). */
    static int largestMmaPathShared() { return backward(DType.BF16, 128, Path.MMA).sharedBytes(); }

    /** The most the 99 KiB build asks of one block (backward, head dim 128): 100,096 of an A6000's 101,376 bytes. */
    static int largestSmallTileShared() {
        return Math.max(backward(DType.BF16, 128, Path.MMA_SMALL).sharedBytes(), forward(DType.BF16, 128, Path.MMA_SMALL).sharedBytes());
    }

    /** The build a GPU of this architecture and opt-in shared memory per block runs (none forced). */
    static Path pathFor(int arch, int maxSharedPerBlock) {
        if (arch < 80 || maxSharedPerBlock < largestSmallTileShared()) {
            return Path.WMMA;
        }
        return maxSharedPerBlock < largestMmaPathShared() ? Path.MMA_SMALL : Path.MMA;
    }

    /** Raises the kernel's shared-memory limit (once per loaded module) when it needs more than 48 KiB. */
    void prepare(CudaKernels kernels, String name) {
        if (sharedBytes > 48 * 1024) {
            kernels.allowSharedMemory(name, sharedBytes);
        }
    }
}
