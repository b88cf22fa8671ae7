package dev.longtune.io;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

class FloatCodecTest {

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 lies halfway between BF16 neighbours 1 and 1 + 2^-7: ties go to the even one, 1
        assertThat(FloatCodec.floatToBf16(1f + 0x1p-8f)).isEqualTo((short) 0x3F80);
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up to 1 + 2^-6
        assertThat(FloatCodec.floatToBf16(1f + 3 * 0x1p-8f)).isEqualTo((short) 0x3F82);
        // just above halfway rounds up
        assertThat(FloatCodec.floatToBf16(Math.nextUp(1f + 0x1p-8f))).isEqualTo((short) 0x3F81);
        assertThat(FloatCodec.floatToBf16(-1.5f)).isEqualTo((short) 0xBFC0);
        assertThat(FloatCodec.floatToBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80); // rounds to infinity
        assertThat(FloatCodec.floatToBf16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xFF80);
        assertThat(Float.isNaN(FloatCodec.bf16ToFloat(FloatCodec.floatToBf16(Float.NaN)))).isTrue();
        // a NaN whose payload sits only in the low 16 bits must stay NaN, not become infinity
        float lowPayloadNaN = Float.intBitsToFloat(0x7F800001);
        assertThat(Float.isNaN(FloatCodec.bf16ToFloat(FloatCodec.floatToBf16(lowPayloadNaN)))).isTrue();
    }

    @Test
    void bf16IsWithinHalfAUnitOfTheLastPlace() {
        Random random = new Random(11);
        for (int i = 0; i < 100_000; i++) {
            float v = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(20) - 10));
            float back = FloatCodec.bf16ToFloat(FloatCodec.floatToBf16(v));
            assertThat(Math.abs(back - v)).isLessThanOrEqualTo(Math.abs(v) * 0x1p-8f);
        }
    }

    @Test
    void everyHalfSurvivesARoundTripThroughFloat() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = FloatCodec.halfToFloat((short) bits);
            if (Float.isNaN(f)) {
                assertThat(FloatCodec.floatToHalf(f) & 0x7C00).isEqualTo(0x7C00);
                assertThat(FloatCodec.floatToHalf(f) & 0x3FF).isNotZero();
            } else {
                assertThat(FloatCodec.floatToHalf(f) & 0xFFFF).as("half bits %04x", bits).isEqualTo(bits);
            }
        }
    }

    @Test
    void halfRoundsToNearestEvenIncludingSubnormalsAndOverflow() {
        assertThat(FloatCodec.halfToFloat((short) 0x3C00)).isEqualTo(1f);
        assertThat(FloatCodec.halfToFloat((short) 0x7BFF)).isEqualTo(65504f);
        assertThat(FloatCodec.halfToFloat((short) 0x0001)).isEqualTo(0x1p-24f);
        // halfway between 1 and 1 + 2^-10 goes to 1 (even); halfway above 1 + 2^-10 goes to 1 + 2^-9
        assertThat(FloatCodec.floatToHalf(1f + 0x1p-11f)).isEqualTo((short) 0x3C00);
        assertThat(FloatCodec.floatToHalf(1f + 3 * 0x1p-11f)).isEqualTo((short) 0x3C02);
        // 65520 is halfway between 65504 and the next step (65536, out of range): rounds to infinity
        assertThat(FloatCodec.floatToHalf(65519f)).isEqualTo((short) 0x7BFF);
        assertThat(FloatCodec.floatToHalf(65520f)).isEqualTo((short) 0x7C00);
        assertThat(FloatCodec.floatToHalf(-1e6f)).isEqualTo((short) 0xFC00);
        // subnormals: 2^-25 is halfway between 0 and 2^-24, ties to 0; just above rounds to 2^-24
        assertThat(FloatCodec.floatToHalf(0x1p-25f)).isEqualTo((short) 0x0000);
        assertThat(FloatCodec.floatToHalf(Math.nextUp(0x1p-25f))).isEqualTo((short) 0x0001);
        assertThat(FloatCodec.floatToHalf(3 * 0x1p-25f)).isEqualTo((short) 0x0002);
        assertThat(FloatCodec.floatToHalf(-0x1p-30f)).isEqualTo((short) 0x8000);
        // the largest subnormal rounding up carries into the smallest normal
        assertThat(FloatCodec.floatToHalf(0x1p-14f - 0x1p-26f)).isEqualTo((short) 0x0400);
    }

    @Test
    void bulkDecodeAndEncodeAgreeWithTheScalarForms() {
        float[] values = TestFiles.randomFloats(new Random(5), 1001);
        for (SafetensorsDType dtype : new SafetensorsDType[] {SafetensorsDType.F32, SafetensorsDType.F64,
                SafetensorsDType.BF16, SafetensorsDType.F16}) {
            ByteBuffer bytes = ByteBuffer.allocate(values.length * dtype.byteSize() + 3).order(ByteOrder.LITTLE_ENDIAN);
            bytes.position(3);
            FloatCodec.encode(values, 0, values.length, dtype, bytes);
            assertThat(bytes.remaining()).isZero();
            bytes.position(3);
            float[] back = new float[values.length];
            FloatCodec.decode(bytes, dtype, back, 0, back.length);
            for (int i = 0; i < values.length; i++) {
                float expected = switch (dtype) {
                    case BF16 -> FloatCodec.bf16ToFloat(FloatCodec.floatToBf16(values[i]));
                    case F16 -> FloatCodec.halfToFloat(FloatCodec.floatToHalf(values[i]));
                    default -> values[i];
                };
                assertThat(back[i]).as("%s element %d", dtype, i).isEqualTo(expected);
            }
        }
    }
}
