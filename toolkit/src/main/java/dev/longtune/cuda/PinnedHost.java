package dev.longtune.cuda;

import dev.longtune.tensor.DType;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.ShortPointer;

import java.util.stream.IntStream;

/**
 * Values between Java arrays and pinned host memory, converted on the CPU in parallel blocks: the host side of
 * offloaded parameters and gradients (the optimizer reads 16-bit gradients and writes 16-bit weights there) needs
 * no trip through the GPU. Rounding to BF16/FP16 is {@link DType}'s (round to nearest even), as the GPU's casts.
 */
final class PinnedHost {
    private static final int BLOCK = 1 << 20;

    private PinnedHost() {}

    /** dst = the {@code dtype} values at {@code address} (dst.length of them). */
    static void decode(long address, DType dtype, float[] dst) {
        blocks(dst.length, (from, n) -> {
            switch (dtype) {
                case FP32 -> floats(address, from, n).get(dst, from, n);
                case BF16, FP16 -> {
                    short[] bits = new short[n];
                    shorts(address, from, n).get(bits, 0, n);
                    for (int i = 0; i < n; i++) {
                        dst[from + i] = dtype == DType.BF16 ? DType.bf16ToFloat(bits[i]) : DType.fp16ToFloat(bits[i]);
                    }
                }
                default -> throw new IllegalArgumentException("no floats in a " + dtype + " tensor");
            }
        });
    }

    /** The {@code dtype} values of src, rounded, written at {@code address}. */
    static void encode(float[] src, long address, DType dtype) {
        blocks(src.length, (from, n) -> {
            switch (dtype) {
                case FP32 -> floats(address, from, n).put(src, from, n);
                case BF16, FP16 -> {
                    short[] bits = new short[n];
                    for (int i = 0; i < n; i++) {
                        bits[i] = dtype == DType.BF16 ? DType.floatToBf16(src[from + i]) : DType.floatToFp16(src[from + i]);
                    }
                    shorts(address, from, n).put(bits, 0, n);
                }
                default -> throw new IllegalArgumentException("no floats in a " + dtype + " tensor");
            }
        });
    }

    private interface Block {
        void run(int from, int n);
    }

    private static void blocks(int length, Block body) {
        IntStream.range(0, (length + BLOCK - 1) / BLOCK).parallel()
                .forEach(b -> body.run(b * BLOCK, Math.min(BLOCK, length - b * BLOCK)));
    }

    private static FloatPointer floats(long address, long from, int n) {
        FloatPointer p = new FloatPointer(Cuda.at(address + 4 * from));
        p.capacity(n);
        p.limit(n);
        return p;
    }

    private static ShortPointer shorts(long address, long from, int n) {
        ShortPointer p = new ShortPointer(Cuda.at(address + 2 * from));
        p.capacity(n);
        p.limit(n);
        return p;
    }
}
