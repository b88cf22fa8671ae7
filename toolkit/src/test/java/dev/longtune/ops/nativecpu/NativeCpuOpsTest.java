package dev.longtune.ops.nativecpu;

import dev.longtune.ops.RmsNorm;
import dev.longtune.ops.SwiGlu;
import dev.longtune.ops.reference.RmsNormReference;
import dev.longtune.ops.reference.SwiGluReference;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Parity of the native kernels (kernels/cpu) with the Java ops and the fp64 references, on odd shapes. */
class NativeCpuOpsTest {
    // odd on purpose: N = 3·37 rows of C = F = 131 channels (not a multiple of the 8 lanes)
    static final int N = 3 * 37, C = 131, F = 131;
    static final float EPS = 1e-5f;

    final float[] x = randomFloats(1, N * C, 2f);
    final float[] w = randomFloats(2, C, 1.5f);
    final float[] dout = randomFloats(3, N * C, 1f);
    final float[] gate = randomFloats(4, N * F, 6f);
    final float[] up = randomFloats(5, N * F, 2f);
    final float[] doutF = randomFloats(6, N * F, 1f);

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void nativeLibraryLoads() {
        NativeLibrary.requireLoaded();
    }

    @Test
    void rmsNormForwardMatchesJavaAndReference() {
        float[] out = new float[N * C], rstd = new float[N];
        NativeCpuOps.rmsNormForward(out, rstd, x, w, N, C, EPS);
        double[] ref = new double[N * C];
        RmsNormReference.forward(ref, toDouble(x), toDouble(w), N, C, EPS);
        assertClose(out, ref, 1e-5, "out vs fp64 reference");

        float[] javaOut = new float[N * C], javaRstd = new float[N];
        RmsNorm.forward(javaOut, javaRstd, x, w, N, C, EPS);
        assertClose(out, toDouble(javaOut), 1e-6, "out vs Java");
        assertClose(rstd, toDouble(javaRstd), 1e-6, "rstd vs Java");
    }

    @Test
    void rmsNormBackwardMatchesJavaAndReference() {
        float[] out = new float[N * C], rstd = new float[N];
        NativeCpuOps.rmsNormForward(out, rstd, x, w, N, C, EPS);
        float[] dx = new float[N * C], dw = new float[C];
        NativeCpuOps.rmsNormBackward(dx, dw, dout, x, w, rstd, N, C);

        double[] refDx = new double[N * C], refDw = new double[C];
        RmsNormReference.backward(refDx, refDw, toDouble(dout), toDouble(x), toDouble(w), N, C, EPS);
        assertClose(dx, refDx, 1e-5, "dinp vs fp64 reference");
        assertClose(dw, refDw, 1e-5, "dweight vs fp64 reference");

        float[] javaDx = new float[N * C], javaDw = new float[C];
        RmsNorm.backward(javaDx, javaDw, dout, x, w, rstd, N, C);
        assertClose(dx, toDouble(javaDx), 1e-5, "dinp vs Java");
        assertClose(dw, toDouble(javaDw), 1e-5, "dweight vs Java");
    }

    @Test
    void rmsNormBackwardAddsIntoGradientsAndSkipsNulls() {
        float[] out = new float[N * C], rstd = new float[N];
        NativeCpuOps.rmsNormForward(out, rstd, x, w, N, C, EPS);
        float[] dx0 = new float[N * C], dw0 = new float[C];
        NativeCpuOps.rmsNormBackward(dx0, dw0, dout, x, w, rstd, N, C);

        float[] dx = randomFloats(7, N * C, 1f), dw = randomFloats(8, C, 1f);
        float[] dxBefore = dx.clone(), dwBefore = dw.clone();
        NativeCpuOps.rmsNormBackward(dx, dw, dout, x, w, rstd, N, C);
        for (int i = 0; i < dx.length; i++) {
            assertThat(dx[i]).isEqualTo(dxBefore[i] + dx0[i]);
        }
        for (int c = 0; c < C; c++) {
            assertThat(dw[c]).isEqualTo(dwBefore[c] + dw0[c]);
        }

        // a frozen weight (dweight null) or an input needing no gradient (dinp null)
        float[] onlyDx = new float[N * C], onlyDw = new float[C];
        NativeCpuOps.rmsNormBackward(onlyDx, null, dout, x, w, rstd, N, C);
        NativeCpuOps.rmsNormBackward(null, onlyDw, dout, x, w, rstd, N, C);
        assertSameBits(onlyDx, dx0, "onlyDx");
        assertSameBits(onlyDw, dw0, "onlyDw");
    }

    @Test
    void rmsNormIsDeterministicAcrossRuns() {
        int n = 1000, c = 257; // more rows than partial blocks, so every block sums several rows
        float[] xs = randomFloats(11, n * c, 2f), ws = randomFloats(12, c, 1f), dys = randomFloats(13, n * c, 1f);
        float[] out0 = new float[n * c], rstd0 = new float[n], dx0 = new float[n * c], dw0 = new float[c];
        NativeCpuOps.rmsNormForward(out0, rstd0, xs, ws, n, c, EPS);
        NativeCpuOps.rmsNormBackward(dx0, dw0, dys, xs, ws, rstd0, n, c);
        for (int run = 0; run < 5; run++) {
            float[] out = new float[n * c], rstd = new float[n], dx = new float[n * c], dw = new float[c];
            NativeCpuOps.rmsNormForward(out, rstd, xs, ws, n, c, EPS);
            NativeCpuOps.rmsNormBackward(dx, dw, dys, xs, ws, rstd, n, c);
            assertSameBits(out, out0, "out");
            assertSameBits(rstd, rstd0, "rstd");
            assertSameBits(dx, dx0, "dx");
            assertSameBits(dw, dw0, "dw");
        }
    }

    @Test
    void swiGluForwardMatchesJavaAndReference() {
        float[] out = new float[N * F];
        NativeCpuOps.swiGluForward(out, gate, up, N, F);
        double[] ref = new double[N * F];
        SwiGluReference.forward(ref, toDouble(gate), toDouble(up), N, F);
        assertClose(out, ref, 1e-6, "out vs fp64 reference");
        float[] javaOut = new float[N * F];
        SwiGlu.forward(javaOut, gate, up, N, F);
        assertClose(out, toDouble(javaOut), 1e-6, "out vs Java");
    }

    @Test
    void swiGluBackwardMatchesJavaAndReferenceAndAdds() {
        float[] dgate = new float[N * F], dup = new float[N * F];
        NativeCpuOps.swiGluBackward(dgate, dup, doutF, gate, up, N, F);
        double[] refDgate = new double[N * F], refDup = new double[N * F];
        SwiGluReference.backward(refDgate, refDup, toDouble(doutF), toDouble(gate), toDouble(up), N, F);
        assertClose(dgate, refDgate, 1e-6, "dgate vs fp64 reference");
        assertClose(dup, refDup, 1e-6, "dup vs fp64 reference");

        float[] javaDgate = new float[N * F], javaDup = new float[N * F];
        SwiGlu.backward(javaDgate, javaDup, doutF, gate, up, N, F);
        assertClose(dgate, toDouble(javaDgate), 1e-6, "dgate vs Java");
        assertClose(dup, toDouble(javaDup), 1e-6, "dup vs Java");

        float[] dg = randomFloats(9, N * F, 1f), du = randomFloats(10, N * F, 1f);
        float[] dgBefore = dg.clone(), duBefore = du.clone();
        NativeCpuOps.swiGluBackward(dg, du, doutF, gate, up, N, F);
        for (int i = 0; i < dg.length; i++) {
            assertThat(dg[i]).isEqualTo(dgBefore[i] + dgate[i]);
            assertThat(du[i]).isEqualTo(duBefore[i] + dup[i]);
        }
    }

    @Test
    void swiGluIsFiniteForLargeGates() {
        float[] g = {-1000f, -90f, 0f, 90f, 1000f}, u = {1f, 1f, 1f, 1f, 1f}, out = new float[5];
        float[] dg = new float[5], du = new float[5];
        NativeCpuOps.swiGluForward(out, g, u, 1, 5);
        NativeCpuOps.swiGluBackward(dg, du, u, g, u, 1, 5);
        for (int i = 0; i < 5; i++) {
            assertThat(out[i]).isFinite();
            assertThat(dg[i]).isFinite();
            assertThat(du[i]).isFinite();
        }
        assertThat(out[4]).isEqualTo(1000f);
        assertThat(out[0]).isEqualTo(-0f);
    }

    @Test
    void floatPointerOverloadsGiveTheSameBits() {
        float[] out = new float[N * C], rstd = new float[N], dx = new float[N * C], dw = new float[C];
        NativeCpuOps.rmsNormForward(out, rstd, x, w, N, C, EPS);
        NativeCpuOps.rmsNormBackward(dx, dw, dout, x, w, rstd, N, C);
        float[] sg = new float[N * F];
        NativeCpuOps.swiGluForward(sg, gate, up, N, F);

        try (FloatPointer px = new FloatPointer(x); FloatPointer pw = new FloatPointer(w);
             FloatPointer pdy = new FloatPointer(dout); FloatPointer pout = new FloatPointer((long) N * C);
             FloatPointer prstd = new FloatPointer((long) N); FloatPointer pdx = new FloatPointer(new float[N * C]);
             FloatPointer pdw = new FloatPointer(new float[C]); FloatPointer pg = new FloatPointer(gate);
             FloatPointer pu = new FloatPointer(up); FloatPointer psg = new FloatPointer((long) N * F)) {
            NativeCpuKernels.rmsNormForward(pout, prstd, px, pw, N, C, EPS);
            NativeCpuKernels.rmsNormBackward(pdx, pdw, pdy, px, pw, prstd, N, C);
            NativeCpuKernels.swiGluForward(psg, pg, pu, N, F);
            float[] a = new float[N * C], r = new float[N], b = new float[N * C], d = new float[C], s = new float[N * F];
            pout.get(a);
            prstd.get(r);
            pdx.get(b);
            pdw.get(d);
            psg.get(s);
            assertSameBits(a, out, "a");
            assertSameBits(r, rstd, "r");
            assertSameBits(b, dx, "b");
            assertSameBits(d, dw, "d");
            assertSameBits(s, sg, "s");
        }
    }

    @Test
    void shortArraysAreRejectedBeforeTheNativeCall() {
        assertThatThrownBy(() -> NativeCpuOps.rmsNormForward(new float[N * C - 1], new float[N], x, w, N, C, EPS))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("out");
        assertThatThrownBy(() -> NativeCpuOps.rmsNormBackward(new float[N * C], new float[C - 1], dout, x, w,
                new float[N], N, C)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("dweight");
        assertThatThrownBy(() -> NativeCpuOps.swiGluBackward(new float[N * F], new float[N * F], doutF, gate,
                new float[3], N, F)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("up");
    }

    /** Bit-for-bit equality ({@link java.util.Arrays#equals(float[], float[])} compares floatToIntBits). */
    private static void assertSameBits(float[] actual, float[] expected, String what) {
        assertThat(java.util.Arrays.equals(actual, expected)).as(what + " bit-for-bit").isTrue();
    }
}
