package dev.longtune.cuda;

import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryLocation;
import dev.longtune.tensor.MemoryTracker;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The allocator's bookkeeping on a fake raw memory (the same class runs over cudaMalloc on a GPU). */
class CachingAllocatorTest {
    /** Hands out increasing addresses until {@code capacity} bytes are taken; records what is live. */
    static final class FakeMemory implements CachingAllocator.RawMemory {
        final long capacity;
        final Map<Long, Long> live = new HashMap<>();
        long next = 0x1000, used;

        FakeMemory(long capacity) { this.capacity = capacity; }

        @Override
        public long allocate(long bytes) {
            if (used + bytes > capacity) {
                return 0;
            }
            long a = next;
            next += bytes;
            used += bytes;
            live.put(a, bytes);
            return a;
        }

        @Override
        public void free(long address) {
            Long b = live.remove(address);
            if (b == null) {
                throw new AssertionError("double free of " + address);
            }
            used -= b;
        }
    }

    private final MemoryTracker tracker = new MemoryTracker(MemoryLocation.GPU);

    @Test
    void roundsSmallTo512BytesAndLargeTo2MiB() {
        assertThat(CachingAllocator.roundUp(1)).isEqualTo(512);
        assertThat(CachingAllocator.roundUp(513)).isEqualTo(1024);
        assertThat(CachingAllocator.roundUp((1 << 20) + 1)).isEqualTo(2L << 20);
        assertThat(CachingAllocator.roundUp(5L << 20)).isEqualTo(6L << 20);
    }

    @Test
    void reusesFreedBlocksOfTheSameClassWithoutAskingRawMemoryAgain() {
        FakeMemory raw = new FakeMemory(1L << 30);
        CachingAllocator a = new CachingAllocator("test gpu", raw, Long.MAX_VALUE, tracker);
        long x = a.allocate(3_000_000, MemoryCategory.ACTIVATIONS, "x");
        a.free(x, 3_000_000);
        long y = a.allocate(2_500_000, MemoryCategory.ACTIVATIONS, "y"); // same 4 MiB class
        assertThat(y).isEqualTo(x);
        assertThat(a.rawAllocations()).isEqualTo(1);
        assertThat(a.fragmentation()).isEqualTo((4L << 20) - 2_500_000);
    }

    @Test
    void aLoopOfAllocateAndFreeLeaksNothing() {
        FakeMemory raw = new FakeMemory(1L << 30);
        CachingAllocator a = new CachingAllocator("test gpu", raw, 64L << 20, tracker);
        long[] sizes = {100, 4096, 1 << 20, 3 << 20, 777_777, 12_345_678};
        for (int round = 0; round < 1000; round++) {
            long[] held = new long[sizes.length];
            for (int i = 0; i < sizes.length; i++) {
                held[i] = a.allocate(sizes[i], MemoryCategory.WORKSPACE, "w" + i);
            }
            for (int i = sizes.length - 1; i >= 0; i--) {
                a.free(held[i], sizes[i]);
            }
        }
        assertThat(a.liveBlocks()).isZero();
        assertThat(a.requested()).isZero();
        assertThat(a.rawAllocations()).isEqualTo(sizes.length);
        a.close();
        assertThat(raw.live).isEmpty();
        assertThat(a.reserved()).isZero();
    }

    @Test
    void overTheCapItReleasesTheCacheAndRetriesBeforeFailing() {
        FakeMemory raw = new FakeMemory(1L << 30);
        CachingAllocator a = new CachingAllocator("test gpu", raw, 10L << 20, tracker);
        long x = a.allocate(6L << 20, MemoryCategory.ACTIVATIONS, "x");
        a.free(x, 6L << 20);
        // 8 MiB does not fit next to the cached 6 MiB block under a 10 MiB cap, but does once it is released
        long y = a.allocate(8L << 20, MemoryCategory.ACTIVATIONS, "y");
        assertThat(a.reserved()).isEqualTo(8L << 20);
        assertThat(raw.live).containsOnlyKeys(y);
    }

    @Test
    void outOfMemoryNamesTheRequestWhatIsHeldTheCapAndTheAdvice() {
        FakeMemory raw = new FakeMemory(1L << 30);
        CachingAllocator a = new CachingAllocator("cuda:0", raw, 16L << 20, tracker);
        tracker.allocated(MemoryCategory.WEIGHTS, 12L << 20);
        a.allocate(12L << 20, MemoryCategory.WEIGHTS, "model.embed_tokens.weight");
        a.setAdvice(() -> "the planner fits 8,192 tokens under this cap with offloaded checkpoints");
        assertThatThrownBy(() -> a.allocate(6L << 20, MemoryCategory.ACTIVATIONS, "'d gate' [4096, 768] bf16"))
                .isInstanceOf(GpuOutOfMemoryException.class)
                .hasMessageContaining("'d gate' [4096, 768] bf16")
                .hasMessageContaining("6.00 MiB of activations")
                .hasMessageContaining("the cap of 16.00 MiB")
                .hasMessageContaining("weights 12.00 MiB")
                .hasMessageContaining("the planner fits 8,192 tokens");
        assertThat(a.liveBlocks()).isEqualTo(1);
    }

    @Test
    void rawExhaustionWithoutACapIsAnOutOfMemoryErrorToo() {
        CachingAllocator a = new CachingAllocator("cuda:0", new FakeMemory(4L << 20), Long.MAX_VALUE, tracker);
        assertThatThrownBy(() -> a.allocate(8L << 20, MemoryCategory.LOGITS, "logits chunk"))
                .isInstanceOf(GpuOutOfMemoryException.class)
                .hasMessageContaining("the GPU's free memory")
                .hasMessageContaining("max-context");
    }

    @Test
    void freeingAnUnknownBlockIsAnError() {
        CachingAllocator a = new CachingAllocator("cuda:0", new FakeMemory(1L << 30), Long.MAX_VALUE, tracker);
        assertThatThrownBy(() -> a.free(0x42, 10)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("freed twice");
    }
}
