package dev.longtune.cuda;

import dev.longtune.tensor.DType;
import org.bytedeco.javacpp.BytePointer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** Java arrays to and from host memory by address, on the CPU: the same values and roundings as DType's. */
class PinnedHostTest {
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"FP32", "BF16", "FP16"})
    void encodeThenDecodeRoundsAsTheDtype(DType dtype) {
        int n = (1 << 20) * 2 + 37; // more than one parallel block, with a ragged tail
        Random r = new Random(5);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
        }
        x[0] = 65504f;
        x[1] = -0f;
        x[2] = 1e-7f;
        try (BytePointer memory = new BytePointer((long) n * dtype.bytes)) {
            PinnedHost.encode(x, memory.address(), dtype);
            float[] back = new float[n];
            PinnedHost.decode(memory.address(), dtype, back);
            for (int i = 0; i < n; i++) {
                float expected = switch (dtype) {
                    case BF16 -> DType.bf16ToFloat(DType.floatToBf16(x[i]));
                    case FP16 -> DType.fp16ToFloat(DType.floatToFp16(x[i]));
                    default -> x[i];
                };
                if (Float.floatToRawIntBits(back[i]) != Float.floatToRawIntBits(expected)) {
                    assertThat(back[i]).as("element %d of %s (from %s)", i, dtype, x[i]).isEqualTo(expected);
                }
            }
            // the memory holds the dtype's own bits: its size is the dtype's
            if (dtype == DType.BF16) {
                short first = memory.getShort(2L * 5);
                assertThat(first).isEqualTo(DType.floatToBf16(x[5]));
            }
        }
    }
}
