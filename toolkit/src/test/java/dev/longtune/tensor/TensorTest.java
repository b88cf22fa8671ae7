package dev.longtune.tensor;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TensorTest {
    @Test
    void bf16RoundsToNearestEven() {
        assertThat(DType.BF16.round(1.0f)).isEqualTo(1.0f);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1
        assertThat(DType.BF16.round(1.0f + 0x1p-8f)).isEqualTo(1.0f);
        assertThat(DType.BF16.round(1.0f + 0x1p-8f + 0x1p-20f)).isEqualTo(1.0f + 0x1p-7f);
        // 3e38 is 0x7F61B1E6: the low half 0xB1E6 is above the midpoint, so it rounds up to 0x7F62
        assertThat(DType.floatToBf16(3.0e38f)).isEqualTo((short) 0x7F62);
        assertThat(Float.isNaN(DType.BF16.round(Float.NaN))).isTrue();
    }

    @Test
    void fp16MatchesIeeeHalfEverywhere() {
        assertThat(DType.FP16.round(1.0f + 0x1p-11f)).isEqualTo(1.0f);                  // tie to even
        assertThat(DType.FP16.round(1.0f + 0x1p-11f + 0x1p-20f)).isEqualTo(1.0f + 0x1p-10f);
        assertThat(DType.FP16.round(65504f)).isEqualTo(65504f);                          // largest finite
        assertThat(DType.FP16.round(65520f)).isEqualTo(Float.POSITIVE_INFINITY);        // overflows
        assertThat(DType.FP16.round(0x1p-24f)).isEqualTo(0x1p-24f);                      // smallest subnormal
        assertThat(DType.FP16.round(0x1p-26f)).isEqualTo(0f);
        assertThat(DType.FP16.round(-3 * 0x1p-25f)).isEqualTo(-2 * 0x1p-24f);           // tie to even subnormal
        // every half value survives a round trip exactly
        for (int h = 0; h < 0x7c00; h++) {
            float f = DType.fp16ToFloat((short) h);
            assertThat(DType.floatToFp16(f)).as("half %x", h).isEqualTo((short) h);
        }
    }

    @Test
    void trackerCountsCurrentAndPeakPerCategory() {
        CpuMemory memory = new CpuMemory();
        MemoryTracker t = memory.tracker();
        Tensor w = memory.allocate("w", DType.BF16, MemoryCategory.WEIGHTS, 3, 5);
        Tensor a = memory.allocate("a", DType.FP32, MemoryCategory.ACTIVATIONS, 7);
        assertThat(t.current(MemoryCategory.WEIGHTS)).isEqualTo(30);
        assertThat(t.current(MemoryCategory.ACTIVATIONS)).isEqualTo(28);
        a.close();
        a.close(); // closing twice is harmless
        assertThat(t.current(MemoryCategory.ACTIVATIONS)).isZero();
        assertThat(t.peak(MemoryCategory.ACTIVATIONS)).isEqualTo(28);
        assertThat(t.peakTotal()).isEqualTo(58);
        assertThat(t.currentTotal()).isEqualTo(30);
        assertThatThrownBy(a::floats).hasMessageContaining("closed");
        w.floats()[0] = 1.0f + 0x1p-8f + 0x1p-20f;
        w.roundToDtype();
        assertThat(w.floats()[0]).isEqualTo(1.0f + 0x1p-7f);
        for (int i = 0; i < 1000; i++) {
            memory.allocate("loop", DType.FP32, MemoryCategory.WORKSPACE, 64).close();
        }
        assertThat(t.current(MemoryCategory.WORKSPACE)).isZero();
    }
}
