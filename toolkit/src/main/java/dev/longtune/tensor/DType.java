package dev.longtune.tensor;

/**
 * Element types. BF16 and FP16 values are held as floats rounded to the type (round to nearest even), so
 * CPU arithmetic sees exactly what a GPU kernel reading that type would see, while accumulating in FP32.
 */
public enum DType {
    FP32("fp32", 4), BF16("bf16", 2), FP16("fp16", 2), INT32("int32", 4);

    public final String id;
    public final int bytes;

    DType(String id, int bytes) {
        this.id = id;
        this.bytes = bytes;
    }

    /** {@code x} rounded to this type's precision (identity for FP32). */
    public float round(float x) {
        return switch (this) {
            case FP32, INT32 -> x;
            case BF16 -> bf16ToFloat(floatToBf16(x));
            case FP16 -> fp16ToFloat(floatToFp16(x));
        };
    }

    /** Rounds every element in place. */
    public void roundInPlace(float[] x, int from, int to) {
        if (this == FP32 || this == INT32) {
            return;
        }
        for (int i = from; i < to; i++) {
            x[i] = round(x[i]);
        }
    }

    /** FP32 bits to BF16 bits, round to nearest even; NaN stays NaN. */
    public static short floatToBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40); // quiet NaN
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7fff + lsb) >>> 16);
    }

    public static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xffff) << 16); }

    /** FP32 to FP16 bits, round to nearest even, overflow to infinity, subnormals kept (as a GPU cast does). */
    public static short floatToFp16(float x) {
        int bits = Float.floatToRawIntBits(x);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7fffffff;
        if (abs > 0x7f800000) {
            return (short) (sign | 0x7e00);                       // NaN
        }
        if (abs >= 0x477ff000) {
            return (short) (sign | 0x7c00);                       // rounds to ≥ 65520: infinity
        }
        if (abs < 0x38800000) {                                    // below 2^-14: FP16 subnormal or zero
            if (abs < 0x33000000) {
                return (short) sign;                               // below half the smallest subnormal
            }
            int exp = abs >>> 23;
            int mantissa = (abs & 0x7fffff) | 0x800000;
            int shift = 126 - exp;                                 // so that 2^-24 becomes 1
            int value = mantissa >>> shift;
            int rest = mantissa & ((1 << shift) - 1), half = 1 << (shift - 1);
            if (rest > half || (rest == half && (value & 1) == 1)) {
                value++;
            }
            return (short) (sign | value);
        }
        int rebased = abs - 0x38000000;                            // exponent bias 127 → 15
        int value = rebased >>> 13, rest = rebased & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (value & 1) == 1)) {
            value++;
        }
        return (short) (sign | value);
    }

    public static float fp16ToFloat(short h) {
        int bits = h & 0xffff, sign = (bits & 0x8000) << 16, exp = (bits >>> 10) & 0x1f, mantissa = bits & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exp == 0) {
            float v = mantissa * 0x1p-24f;
            return sign == 0 ? v : -v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mantissa << 13));
    }
}
