package dev.longtune.ops.nativecpu;

import dev.longtune.tensor.DType;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.ShortPointer;

import java.util.Objects;

/**
 * The host optimizer's native kernels (kernels/cpu/adamw.h and sum_squares.h): an AdamW step with the arithmetic
 * of {@link dev.longtune.ops.AdamW} (bit for bit, on every SIMD level and for any thread count) that can also
 * write the new weights rounded to 16 bits, and the unscale + sum of squares + inf/NaN check that global-norm
 * clipping and the fp16 overflow check need, equal to {@link dev.longtune.ops.GradientClipping#scale} followed
 * by {@link dev.longtune.ops.GradientClipping#sumOfSquares}.
 *
 * <p>Two forms: on {@code float[]} (today's CPU tensors) and on off-heap pointers (pinned host buffers; a
 * pointer's elements start at its {@code position()}). Arguments are checked here, since the kernels do not
 * check bounds; callers check {@link #isAvailable()} and fall back to the Java ops when it is false.
 *
 * <p>{@code gradScale} multiplies each gradient element as it is read, the same float product as scaling the
 * gradient in place first: pass the clipping coefficient (or 1/loss scale) to save a pass over the gradients,
 * or 1 for the plain op.
 */
public final class NativeAdamW {
    private NativeAdamW() {}

    /** The hyperparameters of one step; coefficients are built from these doubles as ops/AdamW does. */
    public record Hyperparameters(double lr, double beta1, double beta2, double eps, double weightDecay) {
        public Hyperparameters {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("AdamW betas must lie in [0, 1), got β1 = " + beta1 + ", β2 = " + beta2);
            }
        }
    }

    /** Σ x² of a (scaled) gradient and the index of its first inf/NaN element, -1 when all are finite. */
    public record SumOfSquares(double value, long firstNonFinite) {
        /** Whether every element was finite (the sum of finite floats' squares cannot overflow a double). */
        public boolean finite() { return firstNonFinite < 0 && Double.isFinite(value); }
    }

    /** Output kinds of kernels/cpu/adamw.h (LONGTUNE_ADAMW_OUT_*). */
    static final int OUT_NONE = 0, OUT_BF16 = 1, OUT_FP16 = 2, OUT_BF16_AS_FLOAT = 3, OUT_FP16_AS_FLOAT = 4;

    /** True when the native library loaded (see {@link NativeCpuOps#unavailableReason()} otherwise). */
    public static boolean isAvailable() { return NativeCpuOps.isAvailable(); }

    /** The instruction set the kernels use now: "avx512", "avx2" (with F16C) or "sse2" (baseline x86-64). */
    public static String simdLevel() {
        requireAvailable();
        return levelName(NativeCpuKernels.simdLevel());
    }

    /** The best instruction set this CPU runs, as {@link #simdLevel()} names it. */
    public static String simdSupported() {
        requireAvailable();
        return levelName(NativeCpuKernels.simdSupported());
    }

    /**
     * Switches every later call to {@code level} ("sse2", "avx2", "avx512"; capped at the CPU's), process-wide:
     * for tests and benchmarks of one variant. Returns the level now in use.
     */
    public static String useSimdLevel(String level) {
        requireAvailable();
        int wanted = switch (level) {
            case "sse2" -> 0;
            case "avx2" -> 1;
            case "avx512" -> 2;
            default -> throw new IllegalArgumentException("SIMD level '" + level + "': use sse2, avx2 or avx512");
        };
        return levelName(NativeCpuKernels.setSimdLevel(wanted));
    }

    private static String levelName(int level) {
        return switch (level) {
            case 2 -> "avx512";
            case 1 -> "avx2";
            default -> "sse2";
        };
    }

    // ---- float[]: params, grads, m, v (P) each; [offset, offset + length) updated

    /** One AdamW step of [offset, offset + length), fp32 only. */
    public static void step(Hyperparameters h, int t, float gradScale, float[] params, float[] grads, float[] m,
                            float[] v, int offset, int length) {
        checkArrays(t, params, grads, m, v, offset, length);
        NativeCpuKernels.adamWStepRange(params, grads, m, v, (float[]) null, OUT_NONE, offset, length, gradScale,
                h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /**
     * As {@link #step(Hyperparameters, int, float, float[], float[], float[], float[], int, int)}, and writes each
     * new weight's 16-bit pattern ({@code type} BF16 or FP16, rounded as {@link DType#floatToBf16} /
     * {@link DType#floatToFp16}) to {@code weights16} at the same index.
     */
    public static void step(Hyperparameters h, int t, float gradScale, float[] params, float[] grads, float[] m,
                            float[] v, int offset, int length, short[] weights16, DType type) {
        checkArrays(t, params, grads, m, v, offset, length);
        Objects.requireNonNull(weights16, "weights16");
        checkLength(weights16.length, (long) offset + length, "weights16");
        NativeCpuKernels.adamWStepRange(params, grads, m, v, weights16, outKind(type, false), offset, length,
                gradScale, h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /**
     * As {@link #step(Hyperparameters, int, float, float[], float[], float[], float[], int, int)} over whole arrays,
     * and writes each new weight's 16-bit pattern ({@code type} BF16 or FP16) to the host memory at
     * {@code weights16Address} (e.g. the pinned buffer of an offloaded parameter, which the next forward copies
     * to the GPU): no staging copy of the weights.
     */
    public static void stepInto(Hyperparameters h, int t, float gradScale, float[] params, float[] grads, float[] m,
                                float[] v, long weights16Address, DType type) {
        checkArrays(t, params, grads, m, v, 0, params.length);
        NativeCpuKernels.adamWStepRange(params, grads, m, v, at(weights16Address, "weights16"), outKind(type, false), 0, params.length,
                gradScale, h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /**
     * As {@link #step(Hyperparameters, int, float, float[], float[], float[], float[], int, int)}, and writes the
     * new weights rounded to {@code type} (BF16 or FP16) as floats into {@code rounded}, as a CPU tensor of that
     * dtype stores them ({@link DType#round}): the copy of fp32 master weights into compute-precision weights,
     * fused into the step.
     */
    public static void stepRounded(Hyperparameters h, int t, float gradScale, float[] params, float[] grads,
                                   float[] m, float[] v, int offset, int length, float[] rounded, DType type) {
        checkArrays(t, params, grads, m, v, offset, length);
        Objects.requireNonNull(rounded, "rounded");
        checkLength(rounded.length, (long) offset + length, "rounded");
        NativeCpuKernels.adamWStepRange(params, grads, m, v, rounded, outKind(type, true), offset, length, gradScale,
                h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /**
     * Σ (g·scale)² over [offset, offset + length) in double, scaling g in place first unless scale is 1: the
     * unscale of mixed precision (scale = 1/loss scale) fused with the sum for the global norm. Same bits as
     * {@code GradientClipping.scale} then {@code GradientClipping.sumOfSquares} over that range.
     */
    public static SumOfSquares unscaleAndSumSquares(float[] g, int offset, int length, float scale) {
        requireAvailable();
        Objects.requireNonNull(g, "g");
        checkRange(offset, length);
        checkLength(g.length, (long) offset + length, "g");
        long[] first = new long[1];
        double sum = NativeCpuKernels.sumSquares(g, offset, length, scale, first);
        return new SumOfSquares(sum, first[0]);
    }

    // ---- off-heap: n elements from each pointer's position

    /**
     * One AdamW step of n elements of off-heap fp32 params, grads, m and v; when {@code weights16} is not null,
     * also writes the new weights' {@code type} (BF16 or FP16) bits there (e.g. the pinned buffer the next
     * forward copies to the GPU).
     */
    public static void step(Hyperparameters h, int t, float gradScale, FloatPointer params, FloatPointer grads,
                            FloatPointer m, FloatPointer v, long n, ShortPointer weights16, DType type) {
        requireAvailable();
        checkStep(t);
        if (n < 0) {
            throw new IllegalArgumentException("negative length " + n);
        }
        checkPointer(params, n, "params");
        checkPointer(grads, n, "grads");
        checkPointer(m, n, "m");
        checkPointer(v, n, "v");
        int kind = OUT_NONE;
        if (weights16 != null) {
            checkPointer(weights16, n, "weights16");
            kind = outKind(type, false);
        }
        NativeCpuKernels.adamWStepRange(params, grads, m, v, weights16, kind, 0, n, gradScale, h.lr(), h.beta1(),
                h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /** {@link #unscaleAndSumSquares(float[], int, int, float)} over n off-heap floats from g's position. */
    public static SumOfSquares unscaleAndSumSquares(FloatPointer g, long n, float scale) {
        requireAvailable();
        if (n < 0) {
            throw new IllegalArgumentException("negative length " + n);
        }
        checkPointer(g, n, "g");
        try (LongPointer first = new LongPointer(1)) {
            double sum = NativeCpuKernels.sumSquares(g, 0, n, scale, first);
            return new SumOfSquares(sum, first.get());
        }
    }

    // ---- gradients where backward left them (kernels/cpu/scaled_gradients.h): no FP32 copy of them

    /**
     * Σ (g·unscale)² over all of g, g unchanged: the same bits as {@link #unscaleAndSumSquares(float[], int, int, float)}
     * on a copy of g.
     */
    public static SumOfSquares sumSquaresScaled(float[] g, float unscale) {
        requireAvailable();
        Objects.requireNonNull(g, "g");
        long[] first = new long[1];
        double sum = NativeCpuKernels.sumSquaresScaled(g, GRAD_FLOAT, g.length, unscale, first);
        return new SumOfSquares(sum, first[0]);
    }

    /**
     * Σ (g·unscale)² over n 16-bit gradients ({@code type} BF16 or FP16) at a host address (a pinned buffer the GPU
     * copied them into): the same bits as decoding them into floats and calling
     * {@link #unscaleAndSumSquares(float[], int, int, float)}.
     */
    public static SumOfSquares sumSquaresScaled(long address, DType type, long n, float unscale) {
        requireAvailable();
        try (LongPointer first = new LongPointer(1)) {
            double sum = NativeCpuKernels.sumSquaresScaled(at(address, "gradients"), gradKind(type), n, unscale, first);
            return new SumOfSquares(sum, first.get());
        }
    }

    /**
     * One AdamW step over whole arrays reading g = (grads·unscale)·clip, grads unchanged: the same bits as scaling a
     * copy of grads by unscale and calling {@link #step(Hyperparameters, int, float, float[], float[], float[], float[], int, int)}
     * with gradScale = clip. With {@code rounded} (not null) the new weights are also written there rounded to
     * {@code type} as floats, as {@link #stepRounded} does.
     */
    public static void stepScaled(Hyperparameters h, int t, float unscale, float clip, float[] params, float[] grads,
                                  float[] m, float[] v, float[] rounded, DType type) {
        checkArrays(t, params, grads, m, v, 0, params.length);
        int kind = OUT_NONE;
        if (rounded != null) {
            checkLength(rounded.length, params.length, "rounded");
            kind = outKind(type, true);
        }
        NativeCpuKernels.adamWStepScaled(params, grads, GRAD_FLOAT, unscale, m, v, rounded, kind, params.length, clip,
                h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /**
     * As {@link #stepScaled(Hyperparameters, int, float, float, float[], float[], float[], float[], float[], DType)}
     * with the gradients as 16-bit bits ({@code gradType}) at a host address and the new weights' 16-bit bits
     * ({@code weightType}) written to another: an offloaded parameter's pinned gradient and weight buffers.
     */
    public static void stepScaled(Hyperparameters h, int t, float unscale, float clip, float[] params,
                                  long gradAddress, DType gradType, float[] m, float[] v, long weightAddress,
                                  DType weightType) {
        checkArrays(t, params, params, m, v, 0, params.length);
        NativeCpuKernels.adamWStepScaled(params, at(gradAddress, "gradients"), gradKind(gradType), unscale, m, v,
                at(weightAddress, "weights16"), outKind(weightType, false), params.length, clip, h.lr(), h.beta1(),
                h.beta2(), h.eps(), h.weightDecay(), t);
    }

    /** Storage kinds of scaled_gradients.h (LONGTUNE_GRAD_*). */
    static final int GRAD_FLOAT = 0, GRAD_BF16 = 1, GRAD_FP16 = 2;

    private static int gradKind(DType type) {
        Objects.requireNonNull(type, "type");
        return switch (type) {
            case BF16 -> GRAD_BF16;
            case FP16 -> GRAD_FP16;
            default -> throw new IllegalArgumentException("16-bit gradients are BF16 or FP16, not " + type);
        };
    }

    private static ShortPointer at(long where, String name) {
        if (where == 0) {
            throw new IllegalArgumentException(name + ": null address");
        }
        return new ShortPointer(new Pointer() { { address = where; } });
    }

    // ---- checks

    private static int outKind(DType type, boolean asFloat) {
        Objects.requireNonNull(type, "type");
        return switch (type) {
            case BF16 -> asFloat ? OUT_BF16_AS_FLOAT : OUT_BF16;
            case FP16 -> asFloat ? OUT_FP16_AS_FLOAT : OUT_FP16;
            default -> throw new IllegalArgumentException("16-bit weights are bf16 or fp16, not " + type.id);
        };
    }

    private static void checkArrays(int t, float[] params, float[] grads, float[] m, float[] v, int offset, int length) {
        requireAvailable();
        checkStep(t);
        checkRange(offset, length);
        long end = (long) offset + length;
        check(params, end, "params");
        check(grads, end, "grads");
        check(m, end, "m");
        check(v, end, "v");
    }

    private static void checkStep(int t) {
        if (t < 1) {
            throw new IllegalArgumentException("AdamW counts steps from 1 (bias correction divides by 1 − β^t); got t = " + t);
        }
    }

    private static void checkRange(int offset, int length) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("negative range (offset " + offset + ", length " + length + ")");
        }
    }

    private static void check(float[] a, long end, String name) {
        Objects.requireNonNull(a, name);
        checkLength(a.length, end, name);
    }

    private static void checkLength(long have, long end, String name) {
        if (have < end) {
            throw new IllegalArgumentException(name + " has " + have + " elements, the range needs " + end);
        }
    }

    /** A pointer's capacity is known when JavaCPP allocated it (0 for a wrapped address, which is not checked). */
    private static void checkPointer(Pointer p, long n, String name) {
        Objects.requireNonNull(p, name);
        if (p.isNull()) {
            throw new IllegalArgumentException(name + " is a null pointer");
        }
        if (p.capacity() > 0 && p.position() + n > p.capacity()) {
            throw new IllegalArgumentException(name + " holds " + (p.capacity() - p.position()) + " elements from its position "
                    + p.position() + ", the step needs " + n);
        }
    }

    private static void requireAvailable() {
        if (!NativeCpuOps.isAvailable()) {
            throw new IllegalStateException("native CPU kernels unavailable: " + NativeCpuOps.unavailableReason());
        }
    }
}
