package dev.longtune.cuda;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The host side of the TMA tensor maps the Hopper attention kernels take: shapes the copy engine cannot fetch are
 * refused with the tensor's name before the driver is asked (the encoding itself runs on the GPU machine, through
 * every attention test there: bench/gpu-test.sh).
 */
class TensorMapTest {
    @Test
    void aMapIsOneHundredTwentyEightBytesAndCopiedIn() {
        long[] bits = new long[16];
        bits[3] = 42;
        TensorMap m = new TensorMap(bits);
        bits[3] = 7;
        assertThat(m.bits()[3]).as("the record keeps its own copy").isEqualTo(42);
        assertThatThrownBy(() -> new TensorMap(new long[8])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("128 bytes, not 64");
    }

    @Test
    void boxesTheCopyEngineCannotFetchAreRefusedByName() {
        long aligned = 1L << 20;
        // a box row wider than the 128-byte swizzle (128 values of 2 bytes)
        assertThatThrownBy(() -> TensorMap.rowsOfHeads16("q", aligned, 4096, 32, 128, 128, 64))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no tensor map for q")
                .hasMessageContaining("boxes of 128 values × 64 rows");
        // more than 256 rows a box
        assertThatThrownBy(() -> TensorMap.rowsOfHeads16("k", aligned, 4096, 8, 128, 64, 257))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no tensor map for k");
        // a tensor that is not 16-byte aligned
        assertThatThrownBy(() -> TensorMap.rowsOfHeads16("dout", aligned + 8, 4096, 32, 128, 64, 64))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no tensor map for dout")
                .hasMessageContaining("at address " + (aligned + 8));
        // no rows
        assertThatThrownBy(() -> TensorMap.rowsOfHeads16("v", aligned, 0, 8, 128, 64, 128))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 rows");
    }
}
