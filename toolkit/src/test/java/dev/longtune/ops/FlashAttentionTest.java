package dev.longtune.ops;

import dev.longtune.ops.reference.AttentionReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.function.Function;
import java.util.stream.Stream;

import static dev.longtune.ops.GradCheck.assertClose;
import static dev.longtune.ops.GradCheck.dot;
import static dev.longtune.ops.GradCheck.numericGradient;
import static dev.longtune.ops.GradCheck.randomDoubles;
import static dev.longtune.ops.GradCheck.randomFloats;
import static dev.longtune.ops.GradCheck.toDouble;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.offset;

/**
 * FlashAttention (fp32, tiled, online softmax) against AttentionReference (fp64, materialised softmax) on
 * awkward shapes; finite-difference checks of the reference; document isolation, causality and += semantics.
 */
class FlashAttentionTest {
    /** fp32 against fp64, relative to the reference's largest element. */
    private static final double FP32_TOLERANCE = 1e-5;

    /** One attention problem: shapes, document offsets, tiles, and seeded inputs (q, k, v and upstream dout). */
    record Problem(String name, int t, int[] cuSeqlens, int hq, int hkv, int d, int br, int bc) {
        float[] q() { return randomFloats(11, t * hq * d, 2f); }
        float[] k() { return randomFloats(12, t * hkv * d, 2f); }
        float[] v() { return randomFloats(13, t * hkv * d, 1f); }
        float[] dout() { return randomFloats(14, t * hq * d, 1f); }

        @Override
        public String toString() { return name; }
    }

    static Stream<Arguments> problems() {
        return Stream.of(
                new Problem("T=37 one doc, Hq=4 Hkv=2 D=16, Br=16 Bc=8", 37, new int[] {0, 37}, 4, 2, 16, 16, 8),
                new Problem("T=37 one doc, Hq=4 Hkv=2 D=16, default 64x64 tiles", 37, new int[] {0, 37}, 4, 2, 16, 64, 64),
                new Problem("T=131 docs 1+57+73, Hq=6 Hkv=2 D=16, Br=16 Bc=8", 131, new int[] {0, 1, 58, 131}, 6, 2, 16, 16, 8),
                new Problem("T=131 docs 1+57+73, Hq=6 Hkv=2 D=16, default tiles", 131, new int[] {0, 1, 58, 131}, 6, 2, 16, 64, 64),
                new Problem("T=131 docs 1+57+73, Hq=6 Hkv=2 D=16, Br=8 Bc=16", 131, new int[] {0, 1, 58, 131}, 6, 2, 16, 8, 16),
                new Problem("T=19 one doc, Hq=32 Hkv=8 D=64", 19, new int[] {0, 19}, 32, 8, 64, 64, 64),
                new Problem("T=19 one doc, Hq=32 Hkv=8 D=128", 19, new int[] {0, 19}, 32, 8, 128, 64, 64),
                new Problem("T=19 docs 7+12, Hq=32 Hkv=8 D=128, Br=4 Bc=4", 19, new int[] {0, 7, 19}, 32, 8, 128, 4, 4),
                new Problem("T=200 one doc, Hq=4 Hkv=1 D=128, default tiles (4 blocks each way)", 200, new int[] {0, 200}, 4, 1, 128, 64, 64),
                new Problem("T=23 docs 5+0+18 (one empty), Hq=Hkv=3 D=5, Br=5 Bc=7", 23, new int[] {0, 5, 5, 23}, 3, 3, 5, 5, 7),
                new Problem("T=29 one doc, Hq=5 Hkv=1 D=7, 1x1 tiles", 29, new int[] {0, 29}, 5, 1, 7, 1, 1))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("problems")
    void matchesTheFp64Reference(Problem p) {
        float[] q = p.q(), k = p.k(), v = p.v(), dout = p.dout();
        float[] out = new float[q.length], lse = new float[p.hq() * p.t()];
        FlashAttention.forward(out, lse, q, k, v, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d(), p.br(), p.bc());
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        FlashAttention.backward(dq, dk, dv, dout, q, k, v, out, lse, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d(),
                p.br(), p.bc());

        double[] qd = toDouble(q), kd = toDouble(k), vd = toDouble(v);
        double[] refOut = new double[q.length], refLse = new double[lse.length];
        AttentionReference.forward(refOut, refLse, qd, kd, vd, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        double[] refDq = new double[q.length], refDk = new double[k.length], refDv = new double[v.length];
        AttentionReference.backward(refDq, refDk, refDv, toDouble(dout), qd, kd, vd, refOut, p.cuSeqlens(),
                p.t(), p.hq(), p.hkv(), p.d());

        assertClose(out, refOut, FP32_TOLERANCE, "out");
        assertClose(lse, refLse, FP32_TOLERANCE, "lse");
        assertClose(dq, refDq, FP32_TOLERANCE, "dq");
        assertClose(dk, refDk, FP32_TOLERANCE, "dk");
        assertClose(dv, refDv, FP32_TOLERANCE, "dv");
    }

    @Test
    void referenceGradientsMatchFiniteDifferences() {
        int t = 5, hq = 2, hkv = 1, d = 3;
        int[] cuSeqlens = {0, 2, 5};
        double[] q = randomDoubles(21, t * hq * d, 1.5), k = randomDoubles(22, t * hkv * d, 1.5);
        double[] v = randomDoubles(23, t * hkv * d, 1.0), w = randomDoubles(24, t * hq * d, 1.0);

        double[] out = new double[q.length], lse = new double[hq * t];
        AttentionReference.forward(out, lse, q, k, v, cuSeqlens, t, hq, hkv, d);
        double[] dq = new double[q.length], dk = new double[k.length], dv = new double[v.length];
        AttentionReference.backward(dq, dk, dv, w, q, k, v, out, cuSeqlens, t, hq, hkv, d);

        // loss = Σ out·w, so dL/dout = w
        Function<double[], Double> loss = ignored -> {
            double[] o = new double[q.length];
            AttentionReference.forward(o, new double[hq * t], q, k, v, cuSeqlens, t, hq, hkv, d);
            return dot(o, w);
        };
        assertClose(dq, numericGradient(q, loss, 1e-5), 1e-6, "dq");
        assertClose(dk, numericGradient(k, loss, 1e-5), 1e-6, "dk");
        assertClose(dv, numericGradient(v, loss, 1e-5), 1e-6, "dv");
    }

    @Test
    void referenceLseIsTheLogSumExpOfTheScaledScores() {
        // T=2, one head, D=2: query 1 sees keys 0 and 1; query 0 sees only key 0, so its lse is its score.
        double[] q = {1, 2, 3, -1}, k = {0.5, 1, -2, 0.25}, v = {1, 2, 3, 4};
        double[] out = new double[4], lse = new double[2];
        AttentionReference.forward(out, lse, q, k, v, new int[] {0, 2}, 2, 1, 1, 2);
        double scale = 1 / Math.sqrt(2);
        double s10 = (3 * 0.5 - 1 * 1) * scale, s11 = (3 * -2 - 1 * 0.25) * scale;
        assertThat(lse[0]).isCloseTo((1 * 0.5 + 2 * 1) * scale, offset(1e-15));
        assertThat(lse[1]).isCloseTo(Math.log(Math.exp(s10) + Math.exp(s11)), offset(1e-15));
        assertThat(out[0]).isEqualTo(1.0);
        assertThat(out[1]).isEqualTo(2.0);
    }

    @Test
    void noAttentionCrossesDocuments() {
        Problem p = new Problem("docs 8+12", 20, new int[] {0, 8, 20}, 4, 2, 8, 4, 4);
        float[] q = p.q(), k = p.k(), v = p.v();
        float[] k2 = k.clone(), v2 = v.clone();
        perturbToken(k2, 3, p.hkv() * p.d());
        perturbToken(v2, 3, p.hkv() * p.d());
        float[][] before = flashForward(p, q, k, v), after = flashForward(p, q, k2, v2);
        int row = p.hq() * p.d();
        // Document 2 (tokens 8..19) sees nothing of document 1: same bits.
        assertThat(slice(after[0], 8 * row, 20 * row)).containsExactly(slice(before[0], 8 * row, 20 * row));
        // Token 3 itself and the later tokens of document 1 do change: the perturbation was seen where it should be.
        assertThat(slice(after[0], 3 * row, 8 * row)).isNotEqualTo(slice(before[0], 3 * row, 8 * row));

        // Backward: an upstream gradient on document 2 only leaves document 1's gradients exactly zero.
        float[] dout = p.dout();
        Arrays.fill(dout, 0, 8 * row, 0f);
        float[][] grads = flashBackward(p, q, k, v, before, dout);
        assertThat(slice(grads[0], 0, 8 * row)).containsOnly(0f);
        assertThat(slice(grads[1], 0, 8 * p.hkv() * p.d())).containsOnly(0f);
        assertThat(slice(grads[2], 0, 8 * p.hkv() * p.d())).containsOnly(0f);
        assertThat(slice(grads[1], 8 * p.hkv() * p.d(), grads[1].length)).doesNotContain(0f);
    }

    @Test
    void attentionIsCausal() {
        Problem p = new Problem("one doc", 20, new int[] {0, 20}, 4, 2, 8, 4, 4);
        float[] q = p.q(), k = p.k(), v = p.v();
        float[] k2 = k.clone(), v2 = v.clone();
        perturbToken(k2, 11, p.hkv() * p.d());
        perturbToken(v2, 11, p.hkv() * p.d());
        float[][] before = flashForward(p, q, k, v), after = flashForward(p, q, k2, v2);
        int row = p.hq() * p.d();
        assertThat(slice(after[0], 0, 11 * row)).containsExactly(slice(before[0], 0, 11 * row));
        for (int h = 0; h < p.hq(); h++) {
            assertThat(slice(after[1], h * p.t(), h * p.t() + 11)).containsExactly(slice(before[1], h * p.t(), h * p.t() + 11));
        }
        assertThat(slice(after[0], 11 * row, 12 * row)).isNotEqualTo(slice(before[0], 11 * row, 12 * row));

        // The reference agrees: causality is the model's, not an artefact of the tiling.
        double[] refBefore = new double[q.length], refAfter = new double[q.length];
        AttentionReference.forward(refBefore, new double[p.hq() * p.t()], toDouble(q), toDouble(k), toDouble(v),
                p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        AttentionReference.forward(refAfter, new double[p.hq() * p.t()], toDouble(q), toDouble(k2), toDouble(v2),
                p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        assertThat(Arrays.copyOfRange(refAfter, 0, 11 * row)).containsExactly(Arrays.copyOfRange(refBefore, 0, 11 * row));
    }

    @Test
    void backwardAddsIntoTheGradientBuffers() {
        Problem p = new Problem("docs 13+24", 37, new int[] {0, 13, 37}, 4, 2, 16, 16, 8);
        float[] q = p.q(), k = p.k(), v = p.v();
        float[][] fwd = flashForward(p, q, k, v);
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        FlashAttention.backward(dq, dk, dv, p.dout(), q, k, v, fwd[0], fwd[1], p.cuSeqlens(), p.t(), p.hq(), p.hkv(),
                p.d(), p.br(), p.bc());
        double[] once = concat(dq, dk, dv);
        FlashAttention.backward(dq, dk, dv, p.dout(), q, k, v, fwd[0], fwd[1], p.cuSeqlens(), p.t(), p.hq(), p.hkv(),
                p.d(), p.br(), p.bc());
        double[] twice = concat(dq, dk, dv);
        double[] doubled = Arrays.stream(once).map(x -> 2 * x).toArray();
        assertClose(twice, doubled, 1e-6, "gradients after two backward calls");

        // The reference accumulates too.
        double[] rq = new double[q.length], rk = new double[k.length], rv = new double[v.length];
        double[] out = toDouble(fwd[0]);
        for (int call = 0; call < 2; call++) {
            AttentionReference.backward(rq, rk, rv, toDouble(p.dout()), toDouble(q), toDouble(k), toDouble(v), out,
                    p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        }
        double[] refOnce = new double[q.length];
        AttentionReference.backward(refOnce, new double[k.length], new double[v.length], toDouble(p.dout()),
                toDouble(q), toDouble(k), toDouble(v), out, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        assertClose(rq, Arrays.stream(refOnce).map(x -> 2 * x).toArray(), 1e-12, "reference dq after two calls");
    }

    @Test
    void resultsAreTheSameBitForBitFromRunToRun() {
        Problem p = new Problem("docs 1+57+73", 131, new int[] {0, 1, 58, 131}, 6, 2, 16, 16, 8);
        float[] q = p.q(), k = p.k(), v = p.v();
        float[][] first = flashForward(p, q, k, v);
        float[][] firstGrads = flashBackward(p, q, k, v, first, p.dout());
        for (int run = 0; run < 3; run++) {
            float[][] again = flashForward(p, q, k, v);
            assertThat(again[0]).containsExactly(first[0]);
            assertThat(again[1]).containsExactly(first[1]);
            float[][] grads = flashBackward(p, q, k, v, again, p.dout());
            for (int x = 0; x < 3; x++) {
                assertThat(grads[x]).containsExactly(firstGrads[x]);
            }
        }
    }

    @Test
    void rejectsInconsistentShapes() {
        float[] q = randomFloats(1, 10 * 3 * 4, 1f), k = randomFloats(2, 10 * 2 * 4, 1f);
        assertThatThrownBy(() -> FlashAttention.forward(new float[q.length], new float[30], q, k, k,
                new int[] {0, 10}, 10, 3, 2, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Hq % Hkv");
        float[] q4 = randomFloats(1, 10 * 4 * 4, 1f);
        assertThatThrownBy(() -> FlashAttention.forward(new float[q4.length], new float[40], q4, k, k,
                new int[] {0, 4, 9}, 10, 4, 2, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("end at T=10");
        assertThatThrownBy(() -> FlashAttention.forward(new float[q4.length], new float[40], q4, k, k,
                new int[] {0, 6, 4, 10}, 10, 4, 2, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("non-decreasing");
    }

    private static float[][] flashForward(Problem p, float[] q, float[] k, float[] v) {
        float[] out = new float[q.length], lse = new float[p.hq() * p.t()];
        FlashAttention.forward(out, lse, q, k, v, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d(), p.br(), p.bc());
        return new float[][] {out, lse};
    }

    private static float[][] flashBackward(Problem p, float[] q, float[] k, float[] v, float[][] fwd, float[] dout) {
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        FlashAttention.backward(dq, dk, dv, dout, q, k, v, fwd[0], fwd[1], p.cuSeqlens(), p.t(), p.hq(), p.hkv(),
                p.d(), p.br(), p.bc());
        return new float[][] {dq, dk, dv};
    }

    /** Adds 0.5 to every element of token {@code token} (all heads) of a (T, H, D) tensor. */
    private static void perturbToken(float[] x, int token, int rowLength) {
        for (int c = 0; c < rowLength; c++) {
            x[token * rowLength + c] += 0.5f;
        }
    }

    private static float[] slice(float[] x, int from, int to) {
        return Arrays.copyOfRange(x, from, to);
    }

    private static double[] concat(float[]... parts) {
        return Arrays.stream(parts).flatMapToDouble(a -> Arrays.stream(toDouble(a))).toArray();
    }
}
