package dev.longtune.ops.nativecpu;

import dev.longtune.ops.AdamW;
import dev.longtune.ops.Rope;
import dev.longtune.ops.reference.AdamWReference;
import dev.longtune.ops.reference.RopeReference;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Parity of the native AdamW and RoPE kernels (kernels/cpu) with the Java ops and the fp64 references. */
class NativeAdamWRopeTest {
    // odd on purpose: 3·37·131 parameters, not a multiple of any vector width
    static final int P = 3 * 37 * 131;
    static final double LR = 3e-3, BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8, WD = 0.1;
    // T = 37 tokens packed from three documents, positions restarting at 0 per document
    static final int T = 37, HQ = 4, HKV = 2;
    static final int[] POSITIONS = positions(T, 13, 29);

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void nativeLibraryLoads() {
        NativeLibrary.requireLoaded();
    }

    // ---- AdamW

    @Test
    void adamWThreeStepsMatchJavaBitForBitAndTheReference() {
        float[] p = randomFloats(1, P, 1f), m = new float[P], v = new float[P];
        float[] jp = p.clone(), jm = new float[P], jv = new float[P];
        double[] rp = toDouble(p), rm = new double[P], rv = new double[P];
        for (int t = 1; t <= 3; t++) {
            float[] g = randomFloats(10 + t, P, 0.5f);
            NativeCpuOps.adamWStep(p, g, m, v, LR, BETA1, BETA2, EPS, WD, t);
            AdamW.step(jp, g, jm, jv, LR, BETA1, BETA2, EPS, WD, t);
            AdamWReference.step(rp, toDouble(g), rm, rv, LR, BETA1, BETA2, EPS, WD, t);
            assertSameBits(p, jp, "params vs Java, step " + t);
            assertSameBits(m, jm, "m vs Java, step " + t);
            assertSameBits(v, jv, "v vs Java, step " + t);
            assertClose(p, rp, 1e-6, "params vs fp64 reference, step " + t);
            assertClose(m, rm, 1e-6, "m vs fp64 reference, step " + t);
            assertClose(v, rv, 1e-6, "v vs fp64 reference, step " + t);
        }
    }

    @Test
    void adamWRangeTouchesOnlyItsRangeAndMatchesJava() {
        int offset = 37, length = 131 * 37 + 5;
        float[] p = randomFloats(2, P, 1f), m = randomFloats(3, P, 0.01f), v = abs(randomFloats(4, P, 1e-4f));
        float[] g = randomFloats(5, P, 0.5f);
        float[] jp = p.clone(), jm = m.clone(), jv = v.clone();
        float[] p0 = p.clone(), m0 = m.clone(), v0 = v.clone();
        NativeCpuOps.adamWStep(p, g, m, v, offset, length, LR, BETA1, 0.95, EPS, 0.0, 7);
        AdamW.step(jp, g, jm, jv, offset, length, LR, BETA1, 0.95, EPS, 0.0, 7);
        assertSameBits(p, jp, "params vs Java");
        assertSameBits(m, jm, "m vs Java");
        assertSameBits(v, jv, "v vs Java");
        for (int i = 0; i < P; i++) {
            if (i < offset || i >= offset + length) {
                assertThat(p[i]).isEqualTo(p0[i]);
                assertThat(m[i]).isEqualTo(m0[i]);
                assertThat(v[i]).isEqualTo(v0[i]);
            } else {
                assertThat(p[i]).isNotEqualTo(p0[i]);
            }
        }
    }

    @Test
    void adamWIsDeterministicAndFloatPointerGivesTheSameBits() {
        int n = 1 << 20 | 3;
        float[] p0 = randomFloats(6, n, 1f), g = randomFloats(7, n, 1f);
        float[] p = p0.clone(), m = new float[n], v = new float[n];
        NativeCpuOps.adamWStep(p, g, m, v, LR, BETA1, BETA2, EPS, WD, 1);
        for (int run = 0; run < 3; run++) {
            float[] q = p0.clone(), qm = new float[n], qv = new float[n];
            NativeCpuOps.adamWStep(q, g, qm, qv, LR, BETA1, BETA2, EPS, WD, 1);
            assertSameBits(q, p, "params");
            assertSameBits(qm, m, "m");
            assertSameBits(qv, v, "v");
        }
        try (FloatPointer pp = new FloatPointer(p0); FloatPointer pg = new FloatPointer(g);
             FloatPointer pm = new FloatPointer(new float[n]); FloatPointer pv = new FloatPointer(new float[n])) {
            NativeCpuKernels.adamWStep(pp, pg, pm, pv, 0, n, LR, BETA1, BETA2, EPS, WD, 1);
            float[] a = new float[n], b = new float[n], c = new float[n];
            pp.get(a);
            pm.get(b);
            pv.get(c);
            assertSameBits(a, p, "params (FloatPointer)");
            assertSameBits(b, m, "m (FloatPointer)");
            assertSameBits(c, v, "v (FloatPointer)");
        }
    }

    @Test
    void adamWArgumentsAreCheckedBeforeTheNativeCall() {
        float[] a = new float[P];
        assertThatThrownBy(() -> NativeCpuOps.adamWStep(a, a.clone(), a.clone(), a.clone(), LR, BETA1, BETA2, EPS, WD, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("t = 0");
        assertThatThrownBy(() -> NativeCpuOps.adamWStep(a, new float[P - 1], a.clone(), a.clone(), LR, BETA1, BETA2,
                EPS, WD, 1)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("grads");
        assertThatThrownBy(() -> NativeCpuOps.adamWStep(a, a.clone(), a.clone(), a.clone(), P - 10, 11, LR, BETA1,
                BETA2, EPS, WD, 1)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("params");
        assertThatThrownBy(() -> NativeCpuOps.adamWStep(a, a.clone(), a.clone(), a.clone(), -1, 5, LR, BETA1,
                BETA2, EPS, WD, 1)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
    }

    // ---- RoPE

    @ParameterizedTest
    @ValueSource(ints = {16, 128})
    void ropeForwardMatchesJavaAndReference(int D) {
        double[] invFreq = llama3(D);
        float[] q = randomFloats(20 + D, T * HQ * D, 2f), k = randomFloats(21 + D, T * HKV * D, 2f);
        float[] nq = q.clone(), nk = k.clone(), jq = q.clone(), jk = k.clone();
        NativeCpuOps.ropeForward(nq, nk, POSITIONS, invFreq, T, HQ, HKV, D);
        Rope.forward(jq, jk, POSITIONS, invFreq, T, HQ, HKV, D);
        assertSameBits(nq, jq, "q vs Java");
        assertSameBits(nk, jk, "k vs Java");

        double[] refQ = new double[q.length], refK = new double[k.length];
        RopeReference.forward(refQ, toDouble(q), POSITIONS, referenceInvFreq(D), T, HQ, D);
        RopeReference.forward(refK, toDouble(k), POSITIONS, referenceInvFreq(D), T, HKV, D);
        assertClose(nq, refQ, 1e-6, "q vs fp64 reference");
        assertClose(nk, refK, 1e-6, "k vs fp64 reference");

        // k null rotates q alone
        float[] onlyQ = q.clone();
        NativeCpuOps.ropeForward(onlyQ, null, POSITIONS, invFreq, T, HQ, 0, D);
        assertSameBits(onlyQ, nq, "q alone");
    }

    @ParameterizedTest
    @ValueSource(ints = {16, 128})
    void ropeBackwardMatchesJavaAndReferenceAndInvertsForward(int D) {
        double[] invFreq = llama3(D);
        float[] dq = randomFloats(30 + D, T * HQ * D, 1f), dk = randomFloats(31 + D, T * HKV * D, 1f);
        float[] nq = dq.clone(), nk = dk.clone(), jq = dq.clone(), jk = dk.clone();
        NativeCpuOps.ropeBackward(nq, nk, POSITIONS, invFreq, T, HQ, HKV, D);
        Rope.backward(jq, jk, POSITIONS, invFreq, T, HQ, HKV, D);
        assertSameBits(nq, jq, "dq vs Java");
        assertSameBits(nk, jk, "dk vs Java");

        double[] refQ = new double[dq.length], refK = new double[dk.length];
        RopeReference.backward(refQ, toDouble(dq), POSITIONS, referenceInvFreq(D), T, HQ, D);
        RopeReference.backward(refK, toDouble(dk), POSITIONS, referenceInvFreq(D), T, HKV, D);
        assertClose(nq, refQ, 1e-6, "dq vs fp64 reference");
        assertClose(nk, refK, 1e-6, "dk vs fp64 reference");

        // backward after forward gives the input back up to rounding
        float[] x = dq.clone();
        NativeCpuOps.ropeForward(x, null, POSITIONS, invFreq, T, HQ, 0, D);
        NativeCpuOps.ropeBackward(x, null, POSITIONS, invFreq, T, HQ, 0, D);
        assertClose(x, toDouble(dq), 1e-6, "backward(forward(x)) vs x");
    }

    @Test
    void ropeIsDeterministicAndFloatPointerGivesTheSameBits() {
        int t = 300, hq = 8, hkv = 2, d = 128;
        int[] pos = positions(t, 100, 250);
        double[] invFreq = llama3(d);
        float[] q0 = randomFloats(40, t * hq * d, 1f), k0 = randomFloats(41, t * hkv * d, 1f);
        float[] q = q0.clone(), k = k0.clone();
        NativeCpuOps.ropeForward(q, k, pos, invFreq, t, hq, hkv, d);
        for (int run = 0; run < 3; run++) {
            float[] rq = q0.clone(), rk = k0.clone();
            NativeCpuOps.ropeForward(rq, rk, pos, invFreq, t, hq, hkv, d);
            assertSameBits(rq, q, "q");
            assertSameBits(rk, k, "k");
        }
        try (FloatPointer pq = new FloatPointer(q0); FloatPointer pk = new FloatPointer(k0);
             IntPointer pp = new IntPointer(pos); DoublePointer pf = new DoublePointer(invFreq)) {
            NativeCpuKernels.ropeForward(pq, pk, pp, pf, t, hq, hkv, d);
            float[] a = new float[q.length], b = new float[k.length];
            pq.get(a);
            pk.get(b);
            assertSameBits(a, q, "q (FloatPointer)");
            assertSameBits(b, k, "k (FloatPointer)");
            NativeCpuKernels.ropeBackward(pq, pk, pp, pf, t, hq, hkv, d);
            float[] jq = q.clone(), jk = k.clone();
            Rope.backward(jq, jk, pos, invFreq, t, hq, hkv, d);
            pq.get(a);
            pk.get(b);
            assertSameBits(a, jq, "dq (FloatPointer)");
            assertSameBits(b, jk, "dk (FloatPointer)");
        }
    }

    @Test
    void ropeArgumentsAreCheckedBeforeTheNativeCall() {
        int d = 16;
        double[] invFreq = llama3(d);
        assertThatThrownBy(() -> NativeCpuOps.ropeForward(new float[T * HQ * d - 1], null, POSITIONS, invFreq, T, HQ,
                HKV, d)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("q");
        assertThatThrownBy(() -> NativeCpuOps.ropeBackward(new float[T * HQ * d], new float[3], POSITIONS, invFreq,
                T, HQ, HKV, d)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("dk");
        assertThatThrownBy(() -> NativeCpuOps.ropeForward(new float[T * HQ * d], null, new int[T - 1], invFreq, T, HQ,
                HKV, d)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("positions");
        assertThatThrownBy(() -> NativeCpuOps.ropeForward(new float[T * HQ * d], null, POSITIONS, llama3(32), T, HQ,
                HKV, d)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("invFreq");
        assertThatThrownBy(() -> NativeCpuOps.ropeForward(new float[T * HQ * 15], null, POSITIONS, invFreq, T, HQ,
                HKV, 15)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("even");
    }

    // ---- helpers

    static double[] llama3(int D) {
        return Rope.inverseFrequencies(D, 500000.0, Rope.Llama3Scaling.LLAMA_3_1);
    }

    static double[] referenceInvFreq(int D) {
        return RopeReference.inverseFrequencies(D, 500000.0, 8.0, 1.0, 4.0, 8192);
    }

    /** Positions of a packed sequence of T tokens whose documents start at 0 and at each of {@code starts}. */
    static int[] positions(int T, int... starts) {
        int[] pos = new int[T];
        int start = 0, next = 0;
        for (int t = 0; t < T; t++) {
            if (next < starts.length && t == starts[next]) {
                start = t;
                next++;
            }
            pos[t] = t - start;
        }
        return pos;
    }

    static float[] abs(float[] a) {
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.abs(a[i]);
        }
        return a;
    }

    /** Bit-for-bit equality ({@link java.util.Arrays#equals(float[], float[])} compares floatToIntBits). */
    private static void assertSameBits(float[] actual, float[] expected, String what) {
        assertThat(java.util.Arrays.equals(actual, expected)).as(what + " bit-for-bit").isTrue();
    }
}
