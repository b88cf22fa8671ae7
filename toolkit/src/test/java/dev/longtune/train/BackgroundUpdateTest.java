package dev.longtune.train;

import dev.longtune.ops.nativecpu.NativeCpuKernels;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The host optimizer's thread: how many OpenMP threads it runs with, alone and beside other ranks of the process. */
class BackgroundUpdateTest {
    @Test
    void ranksInOneProcessSplitTheCoresLeavingOneEachForItsGpuThread() {
        assertThat(BackgroundUpdate.threadsPerRank(32, 1)).isEqualTo(31);
        assertThat(BackgroundUpdate.threadsPerRank(32, 2)).isEqualTo(15);
        assertThat(BackgroundUpdate.threadsPerRank(16, 3)).isEqualTo(4);
        assertThat(BackgroundUpdate.threadsPerRank(2, 2)).isEqualTo(1);  // never none
        assertThat(BackgroundUpdate.threadsPerRank(1, 1)).isEqualTo(1);
    }

    @Test
    void theOptimizersThreadRunsWithItsShareOfTheCores() {
        int cores = NativeCpuKernels.maxThreads();
        for (int ranks : new int[] {1, 2}) {
            AtomicInteger seen = new AtomicInteger();
            try (BackgroundUpdate b = new BackgroundUpdate()) {
                b.shareCores(ranks);
                b.submit(() -> seen.set(NativeCpuKernels.maxThreads()));
                b.awaitAll();
            }
            assertThat(seen.get()).as("OpenMP threads with %d rank(s) on %d cores", ranks, cores)
                    .isEqualTo(BackgroundUpdate.threadsPerRank(cores, ranks));
        }
    }

    @Test
    void sharingIsSetBeforeTheThreadStartsAndNamesABadCount() {
        try (BackgroundUpdate b = new BackgroundUpdate()) {
            assertThatThrownBy(() -> b.shareCores(0)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("ranks sharing the host's cores: 0");
            b.submit(() -> { });
            b.awaitAll();
            assertThatThrownBy(() -> b.shareCores(2)).isInstanceOf(IllegalStateException.class);
        }
    }
}
