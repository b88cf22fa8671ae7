package dev.longtune.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Conversions between {@code float} and the stored floating-point types (F16, BF16, F32, F64), one element at a
 * time and in bulk over little-endian buffers.
 *
 * <p>Narrowing rounds to nearest, ties to even, as PyTorch's {@code tensor.to(torch.bfloat16)} and
 * {@code .half()} do; values beyond the range become infinity; NaN stays NaN (quiet).
 */
public final class FloatCodec {

    private FloatCodec() {}

    /** BF16 is the upper half of an IEEE-754 binary32, so widening is a shift. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * Round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate (the formula of PyTorch's
     * {@code c10::detail::round_to_nearest_even}). A carry out of the mantissa correctly bumps the exponent,
     * up to infinity.
     */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }

    /** IEEE-754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
    public static float halfToFloat(short half) {
        int h = half & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1F;
        int mantissa = h & 0x3FF;
        if (exponent == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            // zero or subnormal: mantissa × 2^-24, exact in float
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
    }

    /** Round to nearest even into binary16, with subnormals, overflow to infinity and NaN kept NaN. */
    public static short floatToHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xFF;
        int mantissa = bits & 0x7FFFFF;
        if (exponent == 0xFF) {
            // infinity, or NaN with its top payload bits and the quiet bit set so it cannot become infinity
            return (short) (sign | 0x7C00 | (mantissa == 0 ? 0 : 0x200 | (mantissa >>> 13)));
        }
        int e = exponent - 127 + 15;
        if (e >= 0x1F) {
            return (short) (sign | 0x7C00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign; // below half the smallest subnormal (2^-25): rounds to zero
            }
            // subnormal result: (1.mantissa × 2^(e-15)) / 2^-24 = full mantissa >> (14 - e)
            int full = mantissa | 0x800000;
            int shift = 14 - e;
            return (short) (sign | roundShift(full, shift));
        }
        // normal: keep 10 mantissa bits; a carry out of the mantissa bumps the exponent, up to infinity
        return (short) (sign | roundShift((e << 23) | mantissa, 13));
    }

    /** {@code value >> shift}, rounded to nearest with ties to even. */
    private static int roundShift(int value, int shift) {
        int kept = value >>> shift;
        int rest = value & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        return rest > half || (rest == half && (kept & 1) != 0) ? kept + 1 : kept;
    }

    /**
     * Reads {@code count} elements of {@code dtype} from {@code src} (little-endian, from its position, which
     * advances) into {@code dst[offset..offset+count)}.
     */
    public static void decode(ByteBuffer src, SafetensorsDType dtype, float[] dst, int offset, int count) {
        ByteBuffer in = src.order() == ByteOrder.LITTLE_ENDIAN ? src : src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype) {
            case F32 -> in.asFloatBuffer().get(dst, offset, count);
            case F64 -> {
                for (int i = 0; i < count; i++) {
                    dst[offset + i] = (float) in.getDouble(in.position() + 8 * i);
                }
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    dst[offset + i] = bf16ToFloat(in.getShort(in.position() + 2 * i));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst[offset + i] = halfToFloat(in.getShort(in.position() + 2 * i));
                }
            }
            default -> throw notFloat(dtype);
        }
        src.position(src.position() + count * dtype.byteSize());
    }

    /**
     * Writes {@code src[offset..offset+count)} as {@code dtype} into {@code dst} (little-endian, at its position,
     * which advances).
     */
    public static void encode(float[] src, int offset, int count, SafetensorsDType dtype, ByteBuffer dst) {
        ByteBuffer out = dst.order() == ByteOrder.LITTLE_ENDIAN ? dst : dst.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int at = dst.position();
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < count; i++) {
                    out.putFloat(at + 4 * i, src[offset + i]);
                }
            }
            case F64 -> {
                for (int i = 0; i < count; i++) {
                    out.putDouble(at + 8 * i, src[offset + i]);
                }
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    out.putShort(at + 2 * i, floatToBf16(src[offset + i]));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    out.putShort(at + 2 * i, floatToHalf(src[offset + i]));
                }
            }
            default -> throw notFloat(dtype);
        }
        dst.position(at + count * dtype.byteSize());
    }

    private static UnsupportedOperationException notFloat(SafetensorsDType dtype) {
        return new UnsupportedOperationException("dtype " + dtype + " does not convert to or from float; "
                + "only F16, BF16, F32 and F64 do");
    }
}
