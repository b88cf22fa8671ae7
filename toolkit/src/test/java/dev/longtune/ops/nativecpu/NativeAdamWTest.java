package dev.longtune.ops.nativecpu;

import dev.longtune.ops.AdamW;
import dev.longtune.ops.GradientClipping;
import dev.longtune.tensor.DType;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.ShortPointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static dev.longtune.ops.GradCheck.randomFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The host optimizer's native kernels (kernels/cpu/adamw.h, sum_squares.h through {@link NativeAdamW}) against
 * the Java ops: bit for bit on awkward sizes, every SIMD level this CPU runs, any thread count; the 16-bit
 * copies equal DType's rounding of the fp32 result.
 */
class NativeAdamWTest {
    static final double LR = 3e-3, BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8;
    // odd on purpose: below one vector, one vector and a bit, and past the parallel threshold with a ragged tail
    static final int[] SIZES = {1, 37, 1000003};

    static String initialLevel;
    static int initialThreads;

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void nativeLibraryLoads() {
        NativeLibrary.requireLoaded();
        if (initialLevel == null) {
            initialLevel = NativeAdamW.simdLevel();
            initialThreads = NativeCpuKernels.maxThreads();
        }
    }

    @AfterEach
    void restoreDefaults() {
        NativeAdamW.useSimdLevel(initialLevel);
        NativeCpuKernels.setThreads(initialThreads);
    }

    /** Every level this CPU runs, so the SSE2, AVX2 and AVX-512 code are each compared with Java. */
    static List<String> levels() {
        NativeLibrary.requireLoaded();
        List<String> all = List.of("sse2", "avx2", "avx512"), out = new ArrayList<>();
        for (String l : all) {
            out.add(l);
            if (l.equals(NativeAdamW.simdSupported())) {
                break;
            }
        }
        return out;
    }

    static Stream<Arguments> levelsAndSizes() {
        return levels().stream().flatMap(l -> java.util.Arrays.stream(SIZES).mapToObj(n -> Arguments.of(l, n)));
    }

    @ParameterizedTest(name = "{0}, n = {1}")
    @MethodSource("levelsAndSizes")
    void stepsMatchJavaBitForBitWithAndWithoutWeightDecay(String level, int n) {
        assertThat(NativeAdamW.useSimdLevel(level)).isEqualTo(level);
        for (double wd : new double[] {0.0, 0.1}) {
            float[] p = randomFloats(1, n, 1f), m = new float[n], v = new float[n];
            float[] jp = p.clone(), jm = new float[n], jv = new float[n];
            var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, wd);
            for (int t : new int[] {1, 2, 3, 10, 1000}) {   // the bias corrections change with t; state carries over
                float[] g = randomFloats(10 + t, n, 0.5f);
                NativeAdamW.step(h, t, 1f, p, g, m, v, 0, n);
                AdamW.step(jp, g, jm, jv, LR, BETA1, BETA2, EPS, wd, t);
                String what = level + ", wd " + wd + ", t " + t;
                assertSameBits(p, jp, "params, " + what);
                assertSameBits(m, jm, "m, " + what);
                assertSameBits(v, jv, "v, " + what);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("levels")
    void gradScaleEqualsScalingTheGradientFirstAndARangeTouchesOnlyItself(String level) {
        NativeAdamW.useSimdLevel(level);
        int n = 4099, offset = 13, length = 4000;
        float clip = 0.3712f;
        float[] p = randomFloats(2, n, 1f), m = randomFloats(3, n, 0.01f), v = abs(randomFloats(4, n, 1e-4f));
        float[] g = randomFloats(5, n, 2f);
        float[] jp = p.clone(), jm = m.clone(), jv = v.clone(), jg = g.clone();
        float[] p0 = p.clone(), g0 = g.clone();
        NativeAdamW.step(new NativeAdamW.Hyperparameters(LR, BETA1, 0.95, EPS, 0.01), 7, clip, p, g, m, v, offset, length);
        for (int i = offset; i < offset + length; i++) {
            jg[i] *= clip;   // GradientClipping's in-place scale, then the plain op
        }
        AdamW.step(jp, jg, jm, jv, offset, length, LR, BETA1, 0.95, EPS, 0.01, 7);
        assertSameBits(p, jp, "params");
        assertSameBits(m, jm, "m");
        assertSameBits(v, jv, "v");
        assertSameBits(g, g0, "the gradient is read, not scaled in place");
        for (int i = 0; i < n; i++) {
            if (i < offset || i >= offset + length) {
                assertThat(p[i]).isEqualTo(p0[i]);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("levels")
    void sixteenBitCopiesEqualRoundingTheFp32Result(String level) {
        NativeAdamW.useSimdLevel(level);
        int n = 1000003;
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, 0.1);
        float[] g = randomFloats(6, n, 0.5f);
        // offset 5: the 16-bit copy starts off a 16/32-byte boundary (the vector levels peel to one for their
        // non-temporal stores)
        for (int offset : new int[] {0, 5})
        for (DType type : new DType[] {DType.BF16, DType.FP16}) {
            float[] p = randomFloats(7, n, 3f), m = new float[n], v = new float[n];
            short[] bits = new short[n];
            float[] pr = p.clone(), mr = new float[n], vr = new float[n], rounded = new float[n];
            int length = n - offset - 3;
            NativeAdamW.step(h, 1, 1f, p, g, m, v, offset, length, bits, type);
            NativeAdamW.stepRounded(h, 1, 1f, pr, g, mr, vr, offset, length, rounded, type);
            assertSameBits(pr, p, "fp32 params are the same with either copy");
            for (int i = 0; i < n; i++) {
                if (i < offset || i >= offset + length) {
                    assertThat(bits[i]).as("outside the range").isZero();
                    assertThat(rounded[i]).as("outside the range").isZero();
                    continue;
                }
                short expected = type == DType.BF16 ? DType.floatToBf16(p[i]) : DType.floatToFp16(p[i]);
                if (bits[i] != expected) {
                    throw new AssertionError(type + " bits at " + i + ": " + bits[i] + ", expected " + expected);
                }
                if (Float.floatToRawIntBits(rounded[i]) != Float.floatToRawIntBits(type.round(p[i]))) {
                    throw new AssertionError(type + " rounded float at " + i + ": " + rounded[i] + ", expected " + type.round(p[i]));
                }
            }
        }
    }

    /**
     * With lr = 0 the step leaves every weight's value as it is (p·1 − 0), so the 16-bit copy is the rounding of
     * the given values: random bit patterns (NaNs with payloads, infinities, subnormals) and the rounding edges.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("levels")
    void sixteenBitRoundingCoversSpecialValues(String level) {
        NativeAdamW.useSimdLevel(level);
        Random r = new Random(8);
        int n = 100_003;
        float[] p = new float[n];
        float[] edges = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, 0x1p-25f, 0x1.8p-25f, 0x1p-24f, 0x1p-14f, 0x1.ffcp-15f,
                65504f, 65519.99f, 65520f, -65520f, Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.NaN, Float.intBitsToFloat(0xff800001), Float.intBitsToFloat(0x7fffffff), 1.00390625f, 1.01171875f,
                Float.intBitsToFloat(0x3f808000), Float.intBitsToFloat(0x3f818000), Float.intBitsToFloat(0x7f7fffff)};
        for (int i = 0; i < n; i++) {
            p[i] = i < edges.length ? edges[i] : Float.intBitsToFloat(r.nextInt());
        }
        float[] g = randomFloats(9, n, 1f);
        var h = new NativeAdamW.Hyperparameters(0.0, BETA1, BETA2, EPS, 0.0);
        for (DType type : new DType[] {DType.BF16, DType.FP16}) {
            float[] q = p.clone(), m = new float[n], v = new float[n];
            short[] bits = new short[n];
            NativeAdamW.step(h, 1, 1f, q, g, m, v, 0, n, bits, type);
            for (int i = 0; i < n; i++) {
                if (!Float.isNaN(p[i])) {   // == because −0 − 0·(negative m) is +0
                    assertThat(q[i] == p[i]).as("lr 0 keeps %s, got %s", p[i], q[i]).isTrue();
                }
                short expected = type == DType.BF16 ? DType.floatToBf16(q[i]) : DType.floatToFp16(q[i]);
                if (bits[i] != expected) {
                    throw new AssertionError(type + " of " + Integer.toHexString(Float.floatToRawIntBits(q[i])) + " at " + i
                            + ": " + Integer.toHexString(bits[i] & 0xffff) + ", expected " + Integer.toHexString(expected & 0xffff));
                }
            }
        }
    }

    /**
     * The host optimizer's sequence (train/Optimizer) both ways: Java — unscale, sum of squares, clip in place,
     * AdamW, copy rounded into bf16 weights — and native — fused unscale + sum, clip folded into the step, the
     * bf16 copy written by the step. Same bits everywhere.
     */
    @Test
    void fusedOptimizerSequenceEqualsTheJavaOps() {
        int[] sizes = {4096, 1000003, 37};   // a norm weight, a matrix, a bias-sized tail
        float lossScale = 65536f, inv = (float) (1.0 / lossScale);
        double maxNorm = 1.0;
        List<float[]> grads = new ArrayList<>(), javaGrads = new ArrayList<>();
        for (int k = 0; k < sizes.length; k++) {
            float[] g = randomFloats(20 + k, sizes[k], 3000f);
            DType.BF16.roundInPlace(g, 0, g.length);   // gradients arrive in the compute precision, loss-scaled
            grads.add(g.clone());
            javaGrads.add(g.clone());
        }
        double javaSum = 0, nativeSum = 0;
        for (int k = 0; k < sizes.length; k++) {
            GradientClipping.scale(javaGrads.get(k), inv);
            javaSum += GradientClipping.sumOfSquares(javaGrads.get(k));
            nativeSum += NativeAdamW.unscaleAndSumSquares(grads.get(k), 0, sizes[k], inv).value();
        }
        assertThat(nativeSum).isEqualTo(javaSum);
        double coefficient = maxNorm / (Math.sqrt(javaSum) + 1e-6);
        assertThat(coefficient).as("the test clips").isLessThan(1.0);
        float clip = (float) coefficient;
        for (int k = 0; k < sizes.length; k++) {
            int n = sizes[k];
            GradientClipping.scale(javaGrads.get(k), clip);
            float[] master = randomFloats(30 + k, n, 1f), m = randomFloats(31 + k, n, 1e-3f), v = abs(randomFloats(32 + k, n, 1e-6f));
            float[] jMaster = master.clone(), jm = m.clone(), jv = v.clone(), jWeights = new float[n], weights = new float[n];
            double wd = k == 0 ? 0.0 : 0.1;
            AdamW.step(jMaster, javaGrads.get(k), jm, jv, LR, BETA1, BETA2, EPS, wd, 5);
            System.arraycopy(jMaster, 0, jWeights, 0, n);
            DType.BF16.roundInPlace(jWeights, 0, n);
            NativeAdamW.stepRounded(new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, wd), 5, clip, master,
                    grads.get(k), m, v, 0, n, weights, DType.BF16);
            assertSameBits(master, jMaster, "master " + k);
            assertSameBits(m, jm, "m " + k);
            assertSameBits(v, jv, "v " + k);
            assertSameBits(weights, jWeights, "bf16 weights " + k);
        }
    }

    @Test
    void resultsDoNotDependOnTheNumberOfThreads() {
        int n = 1 << 21 | 5;
        float[] p0 = randomFloats(11, n, 1f), g = randomFloats(12, n, 1f);
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, 0.1);
        float[] expectedP = null, expectedM = null;
        short[] expectedBits = null;
        double expectedSum = 0;
        for (int threads : new int[] {1, 2, 3, 7}) {
            NativeCpuKernels.setThreads(threads);
            float[] p = p0.clone(), m = new float[n], v = new float[n];
            short[] bits = new short[n];
            NativeAdamW.step(h, 1, 0.5f, p, g, m, v, 0, n, bits, DType.BF16);
            NativeAdamW.step(h, 2, 1f, p, g, m, v, 0, n, bits, DType.BF16);
            double sum = NativeAdamW.unscaleAndSumSquares(p.clone(), 0, n, 0.25f).value();
            if (expectedP == null) {
                expectedP = p;
                expectedM = m;
                expectedBits = bits;
                expectedSum = sum;
            } else {
                assertSameBits(p, expectedP, threads + " threads: params");
                assertSameBits(m, expectedM, threads + " threads: m");
                assertThat(bits).as(threads + " threads: bf16").isEqualTo(expectedBits);
                assertThat(sum).as(threads + " threads: sum of squares").isEqualTo(expectedSum);
            }
        }
    }

    /**
     * Gradients read where backward left them (kernels/cpu/scaled_gradients.h: floats, or bf16/fp16 bits at an
     * address) give the bits of the FP32 path they replace: decode into floats, scale in place by 1/loss scale with
     * the fused sum of squares, then AdamW with the clipping coefficient. Sizes: the odd 3×37×131, past eight
     * 16,384-element chunks with a tail, and past the parallel threshold; one thread and all.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("levels")
    void scaledGradientsGiveTheBitsOfAnFp32Copy(String level) {
        NativeAdamW.useSimdLevel(level);
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, 0.1);
        float unscale = 1f / 1024, clip = 0.37f;
        for (int n : new int[] {3 * 37 * 131, 9 * 16384 + 77, 1000003}) {
            float[] p0 = randomFloats(31, n, 1f), m0 = randomFloats(32, n, 0.01f), v0 = randomFloats(33, n, 0.01f);
            for (int i = 0; i < n; i++) {
                v0[i] = Math.abs(v0[i]);
            }
            float[] raw = randomFloats(34, n, 300f); // scaled-loss gradients
            for (DType type : new DType[] {DType.FP32, DType.BF16, DType.FP16}) {
                short[] bits = new short[n];
                float[] decoded = new float[n];
                for (int i = 0; i < n; i++) {
                    bits[i] = type == DType.FP16 ? DType.floatToFp16(raw[i]) : DType.floatToBf16(raw[i]);
                    decoded[i] = type == DType.FP32 ? raw[i]
                            : type == DType.FP16 ? DType.fp16ToFloat(bits[i]) : DType.bf16ToFloat(bits[i]);
                }
                DType out = type == DType.FP16 ? DType.FP16 : DType.BF16;
                // the path replaced: an FP32 copy, unscaled in place with its sum, AdamW with the clip as gradScale
                float[] g32 = decoded.clone(), p = p0.clone(), m = m0.clone(), v = v0.clone();
                short[] expectedWeights = new short[n];
                double expectedSum = NativeAdamW.unscaleAndSumSquares(g32, 0, n, unscale).value();
                NativeAdamW.step(h, 3, clip, p, g32, m, v, 0, n, expectedWeights, out);
                for (int threads : new int[] {1, initialThreads}) {
                    NativeCpuKernels.setThreads(threads);
                    String what = level + ", " + type.id + ", n=" + n + ", " + threads + " threads";
                    float[] q = p0.clone(), mq = m0.clone(), vq = v0.clone();
                    double sum;
                    short[] weights = new short[n];
                    if (type == DType.FP32) {
                        float[] g = decoded.clone();
                        sum = NativeAdamW.sumSquaresScaled(g, unscale).value();
                        float[] rounded = new float[n];
                        NativeAdamW.stepScaled(h, 3, unscale, clip, q, g, mq, vq, rounded, out);
                        assertSameBits(g, decoded, "gradients unchanged, " + what);
                        for (int i = 0; i < n; i++) {
                            weights[i] = DType.floatToBf16(rounded[i]);
                        }
                    } else {
                        try (ShortPointer g = new ShortPointer(bits); ShortPointer w = new ShortPointer(n)) {
                            sum = NativeAdamW.sumSquaresScaled(g.address(), type, n, unscale).value();
                            NativeAdamW.stepScaled(h, 3, unscale, clip, q, g.address(), type, mq, vq, w.address(), out);
                            w.get(weights);
                        }
                    }
                    assertThat(sum).as("sum of squares, " + what).isEqualTo(expectedSum);
                    assertSameBits(q, p, "params, " + what);
                    assertSameBits(mq, m, "m, " + what);
                    assertSameBits(vq, v, "v, " + what);
                    assertThat(weights).as("16-bit weights, " + what).isEqualTo(expectedWeights);
                }
            }
        }
    }

    @Test
    void scaledSumsFindTheFirstNonFiniteGradient() {
        int n = 9 * 16384 + 5;
        short[] bits = new short[n];
        for (int i = 0; i < n; i++) {
            bits[i] = DType.floatToBf16(0.5f + i % 7);
        }
        bits[70001] = DType.floatToBf16(Float.POSITIVE_INFINITY);
        bits[90000] = DType.floatToBf16(Float.NaN);
        try (ShortPointer g = new ShortPointer(bits)) {
            var s = NativeAdamW.sumSquaresScaled(g.address(), DType.BF16, n, 0.5f);
            assertThat(s.finite()).isFalse();
            assertThat(s.firstNonFinite()).isEqualTo(70001);
            // fp16 overflow of the scaled loss: 60000 is finite in fp16, but not once a huge unscale meets it
            try (ShortPointer h = new ShortPointer(new short[] {DType.floatToFp16(1f), DType.floatToFp16(60000f)})) {
                var big = NativeAdamW.sumSquaresScaled(h.address(), DType.FP16, 2, 1e35f);
                assertThat(big.finite()).isFalse();
                assertThat(big.firstNonFinite()).isEqualTo(1);
            }
        }
        assertThatThrownBy(() -> NativeAdamW.sumSquaresScaled(0, DType.BF16, 3, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("null address");
        assertThatThrownBy(() -> NativeAdamW.sumSquaresScaled(8, DType.FP32, 3, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("BF16 or FP16");
    }

    @Test
    void stepIntoWritesTheSixteenBitWeightsAtAnAddress() {
        int n = 100003;
        float[] p0 = randomFloats(21, n, 1f), g = randomFloats(22, n, 1f);
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, 0.1);
        for (DType type : new DType[] {DType.BF16, DType.FP16}) {
            float[] p = p0.clone(), m = new float[n], v = new float[n];
            short[] bits = new short[n];
            NativeAdamW.step(h, 2, 0.5f, p, g, m, v, 0, n, bits, type);
            float[] q = p0.clone(), mq = new float[n], vq = new float[n];
            try (ShortPointer out = new ShortPointer(n)) {
                NativeAdamW.stepInto(h, 2, 0.5f, q, g, mq, vq, out.address(), type);
                short[] c = new short[n];
                out.get(c);
                assertThat(c).as(type.id).isEqualTo(bits);
            }
            assertSameBits(q, p, "params (" + type.id + ")");
            assertSameBits(vq, v, "v (" + type.id + ")");
        }
        assertThatThrownBy(() -> NativeAdamW.stepInto(h, 1, 1f, new float[1], new float[1], new float[1], new float[1], 0,
                DType.BF16)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("null address");
    }

    @Test
    void offHeapPointersGiveTheSameBitsAsArrays() {
        int n = 300007;
        float[] p0 = randomFloats(13, n, 1f), g = randomFloats(14, n, 1f);
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, 0.1);
        float[] p = p0.clone(), m = new float[n], v = new float[n];
        short[] bits = new short[n];
        NativeAdamW.step(h, 3, 0.75f, p, g, m, v, 0, n, bits, DType.FP16);
        try (FloatPointer pp = new FloatPointer(p0); FloatPointer pg = new FloatPointer(g);
             FloatPointer pm = new FloatPointer(new float[n]); FloatPointer pv = new FloatPointer(new float[n]);
             ShortPointer out = new ShortPointer(n)) {
            NativeAdamW.step(h, 3, 0.75f, pp, pg, pm, pv, n, out, DType.FP16);
            float[] a = new float[n], b = new float[n];
            short[] c = new short[n];
            pp.get(a);
            pm.get(b);
            out.get(c);
            assertSameBits(a, p, "params (pointer)");
            assertSameBits(b, m, "m (pointer)");
            assertThat(c).isEqualTo(bits);

            var sum = NativeAdamW.unscaleAndSumSquares(pg, n, 0.5f);
            float[] jg = g.clone();
            GradientClipping.scale(jg, 0.5f);
            assertThat(sum.value()).isEqualTo(GradientClipping.sumOfSquares(jg));
            float[] scaled = new float[n];
            pg.get(scaled);
            assertSameBits(scaled, jg, "unscaled in place (pointer)");

            // a pointer's position is where its elements start
            pg.position(n - 10);
            assertThat(NativeAdamW.unscaleAndSumSquares(pg, 10, 1f).value())
                    .isEqualTo(GradientClipping.sumOfSquares(java.util.Arrays.copyOfRange(jg, n - 10, n)));
            assertThatThrownBy(() -> NativeAdamW.unscaleAndSumSquares(pg, 11, 1f))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("g holds 10");
        }
    }

    @ParameterizedTest(name = "n = {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {0, 1, 37, 16384, 16385, 1000003, 8 * 16384 * 3 + 77})
    void sumOfSquaresEqualsGradientClippingBitForBit(int n) {
        for (String level : levels()) {
            NativeAdamW.useSimdLevel(level);
            float[] g = randomFloats(15 + n, n, 3f);
            float[] scaled = g.clone(), unscaledOnce = g.clone();
            var plain = NativeAdamW.unscaleAndSumSquares(g.clone(), 0, n, 1f);
            var fused = NativeAdamW.unscaleAndSumSquares(scaled, 0, n, 1f / 1024);
            GradientClipping.scale(unscaledOnce, 1f / 1024);
            assertThat(plain.value()).isEqualTo(GradientClipping.sumOfSquares(g));
            assertThat(fused.value()).isEqualTo(GradientClipping.sumOfSquares(unscaledOnce));
            assertSameBits(scaled, unscaledOnce, "scaled in place");
            assertThat(plain.finite()).isTrue();
            assertThat(fused.firstNonFinite()).isEqualTo(-1);
        }
    }

    @Test
    void nonFiniteGradientsAreFoundWithTheirFirstIndex() {
        int n = 1000003;
        float[] g = randomFloats(16, n, 1f);
        g[777_777] = Float.NaN;
        g[900_001] = Float.POSITIVE_INFINITY;
        var s = NativeAdamW.unscaleAndSumSquares(g.clone(), 0, n, 1f);
        assertThat(s.finite()).isFalse();
        assertThat(s.firstNonFinite()).isEqualTo(777_777);
        assertThat(s.value()).isNaN();

        float[] onlyInf = randomFloats(17, n, 1f);
        onlyInf[5] = Float.NEGATIVE_INFINITY;
        var inf = NativeAdamW.unscaleAndSumSquares(onlyInf, 0, n, 0.5f);
        assertThat(inf.value()).isInfinite();
        assertThat(inf.firstNonFinite()).isEqualTo(5);

        // overflow of the scaling itself (a loss scale below 1) counts too; relative to the range's start
        float[] big = {1f, 3e38f, 2f};
        var overflow = NativeAdamW.unscaleAndSumSquares(big, 1, 2, 4f);
        assertThat(overflow.finite()).isFalse();
        assertThat(overflow.firstNonFinite()).isEqualTo(0);
    }

    @Test
    void badArgumentsAreRejectedBeforeTheNativeCall() {
        int n = 37;
        float[] a = new float[n];
        var h = new NativeAdamW.Hyperparameters(LR, BETA1, BETA2, EPS, 0.1);
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, new float[n - 1], a.clone(), a.clone(), 0, n))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("grads has 36");
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, a.clone(), a.clone(), new float[n - 1], 0, n))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("v has 36");
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, a.clone(), null, a.clone(), 0, n))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("m");
        assertThatThrownBy(() -> NativeAdamW.step(h, 0, 1f, a, a.clone(), a.clone(), a.clone(), 0, n))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("t = 0");
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, a.clone(), a.clone(), a.clone(), 30, 8))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("params has 37");
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, a.clone(), a.clone(), a.clone(), -1, 8))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, a.clone(), a.clone(), a.clone(), 0, n, new short[n - 1], DType.BF16))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("weights16 has 36");
        assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, a, a.clone(), a.clone(), a.clone(), 0, n, new short[n], DType.FP32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bf16 or fp16");
        assertThatThrownBy(() -> NativeAdamW.stepRounded(h, 1, 1f, a, a.clone(), a.clone(), a.clone(), 0, n, null, DType.BF16))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("rounded");
        assertThatThrownBy(() -> NativeAdamW.unscaleAndSumSquares((float[]) null, 0, 1, 1f))
                .isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> NativeAdamW.unscaleAndSumSquares(a, 10, 28, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("g has 37");
        assertThatThrownBy(() -> new NativeAdamW.Hyperparameters(LR, 1.0, BETA2, EPS, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("betas");
        assertThatThrownBy(() -> NativeAdamW.useSimdLevel("neon"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sse2, avx2 or avx512");
        try (FloatPointer small = new FloatPointer(n); FloatPointer big = new FloatPointer(n + 1)) {
            assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, big, big, big, small, n + 1, null, DType.BF16))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("v holds 37");
            assertThatThrownBy(() -> NativeAdamW.step(h, 1, 1f, big, big, big, new FloatPointer(), n, null, DType.BF16))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("v is a null pointer");
        }
    }

    static float[] abs(float[] a) {
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.abs(a[i]);
        }
        return a;
    }

    private static void assertSameBits(float[] actual, float[] expected, String what) {
        assertThat(actual.length).as(what + ": length").isEqualTo(expected.length);
        for (int i = 0; i < actual.length; i++) {
            if (Float.floatToRawIntBits(actual[i]) != Float.floatToRawIntBits(expected[i])) {
                throw new AssertionError(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}
