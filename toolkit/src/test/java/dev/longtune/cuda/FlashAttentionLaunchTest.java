package dev.longtune.cuda;

import dev.longtune.cuda.FlashAttentionLaunch.Path;
import dev.longtune.tensor.DType;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Which FlashAttention build each GPU runs, and that each build's blocks fit that GPU's shared memory per block:
 * V100 96 KiB (sm_70), T4 64 KiB (sm_75), A6000/L40 99 KiB (sm_86/89), A100 163 KiB (sm_80), H100/H200 227 KiB.
 */
class FlashAttentionLaunchTest {
    static final int V100 = 96 * 1024, T4 = 64 * 1024, A6000 = CudaOptions.A6000_SHARED_PER_BLOCK, A100 = 163 * 1024,
            H200 = 227 * 1024;

    @Test
    void eachGpuGetsTheFastestBuildThatFitsIt() {
        assertThat(FlashAttentionLaunch.pathFor(70, V100)).isEqualTo(Path.WMMA);
        assertThat(FlashAttentionLaunch.pathFor(75, T4)).isEqualTo(Path.WMMA);
        assertThat(FlashAttentionLaunch.pathFor(86, A6000)).isEqualTo(Path.MMA_SMALL);  // was WMMA: a quarter the speed
        assertThat(FlashAttentionLaunch.pathFor(89, A6000)).isEqualTo(Path.MMA_SMALL);
        assertThat(FlashAttentionLaunch.pathFor(80, A100)).isEqualTo(Path.MMA);
        assertThat(FlashAttentionLaunch.pathFor(90, H200)).isEqualTo(Path.MMA);
        assertThat(FlashAttentionLaunch.pathFor(86, 64 * 1024)).as("too little even for the 99 KiB build").isEqualTo(Path.WMMA);
    }

    @Test
    void everyBuildFitsTheGpusThatRunIt() {
        for (DType e : new DType[] {DType.BF16, DType.FP16}) {
            for (int d : new int[] {64, 128}) {
                assertThat(FlashAttentionLaunch.forward(e, d, Path.MMA_SMALL).sharedBytes()).isLessThanOrEqualTo(A6000);
                assertThat(FlashAttentionLaunch.backward(e, d, Path.MMA_SMALL).sharedBytes()).isLessThanOrEqualTo(A6000);
                assertThat(FlashAttentionLaunch.backward(e, d, Path.MMA).sharedBytes()).isLessThanOrEqualTo(A100);
                assertThat(FlashAttentionLaunch.backward(e, d, Path.WMMA).sharedBytes()).isLessThanOrEqualTo(V100);
            }
        }
        // the padded tiles at head dim 128 are what does not fit an A6000 (the reason for the 99 KiB build)
        assertThat(FlashAttentionLaunch.forward(DType.BF16, 128, Path.MMA).sharedBytes()).isGreaterThan(A6000);
        assertThat(FlashAttentionLaunch.backward(DType.BF16, 128, Path.MMA).sharedBytes()).isGreaterThan(A6000);
    }

    @Test
    void theSmallBuildHasTheMmaBlocksAndItsOwnSharedMemory() {
        // kernels/cuda/flash_attention.cu MP<128> with FA_SMALL_SMEM: six unpadded 64 × 128 tiles, plus the forward's
        // document starts (128 ints) or the backward's staged rows (7 × 64 words); head dim 64 keeps the padded tiles
        assertThat(FlashAttentionLaunch.forward(DType.BF16, 128, Path.MMA_SMALL)).isEqualTo(new FlashAttentionLaunch(128, 128, 98_816));
        assertThat(FlashAttentionLaunch.backward(DType.BF16, 128, Path.MMA_SMALL)).isEqualTo(new FlashAttentionLaunch(128, 256, 100_096));
        assertThat(FlashAttentionLaunch.backward(DType.FP16, 64, Path.MMA_SMALL)).isEqualTo(FlashAttentionLaunch.backward(DType.FP16, 64, Path.MMA));
        assertThat(FlashAttentionLaunch.forward(DType.FP32, 128, Path.MMA_SMALL)).isEqualTo(FlashAttentionLaunch.forward(DType.FP32, 128, Path.MMA));
    }
}
