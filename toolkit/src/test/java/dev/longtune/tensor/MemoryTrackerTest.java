package dev.longtune.tensor;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class MemoryTrackerTest {
    @Test
    void theBreakdownAtThePeakIsOneMomentNotEachCategorysOwnPeak() {
        MemoryTracker t = new MemoryTracker(MemoryLocation.GPU);
        t.allocated(MemoryCategory.WEIGHTS, 100);
        t.allocated(MemoryCategory.ACTIVATIONS, 500); // total 600: the peak
        t.freed(MemoryCategory.ACTIVATIONS, 500);
        t.allocated(MemoryCategory.LOGITS, 300);      // total 400, but logits' own peak
        t.freed(MemoryCategory.LOGITS, 300);
        assertThat(t.peakTotal()).isEqualTo(600);
        assertThat(t.peak(MemoryCategory.LOGITS)).isEqualTo(300);
        var atPeak = t.atPeakTotal();
        assertThat(atPeak.get(MemoryCategory.WEIGHTS)).isEqualTo(100);
        assertThat(atPeak.get(MemoryCategory.ACTIVATIONS)).isEqualTo(500);
        assertThat(atPeak.get(MemoryCategory.LOGITS)).isZero();
        assertThat(atPeak.values().stream().mapToLong(Long::longValue).sum()).isEqualTo(t.peakTotal());
        // a new window starts at what is held now
        t.resetPeaks();
        assertThat(t.atPeakTotal().get(MemoryCategory.ACTIVATIONS)).isZero();
        assertThat(t.atPeakTotal().get(MemoryCategory.WEIGHTS)).isEqualTo(100);
        t.allocated(MemoryCategory.GRADS, 50);
        assertThat(t.atPeakTotal().get(MemoryCategory.GRADS)).isEqualTo(50);
        assertThat(t.peakTotal()).isEqualTo(150);
    }

    @Test
    void freeingMoreThanIsHeldNamesTheCategory() {
        MemoryTracker t = new MemoryTracker(MemoryLocation.GPU);
        t.allocated(MemoryCategory.GRADS, 10);
        assertThatThrownBy(() -> t.freed(MemoryCategory.GRADS, 11)).hasMessageContaining("grads");
    }
}
