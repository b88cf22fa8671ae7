package dev.longtune.ops;

import dev.longtune.ops.reference.SwiGluReference;
import org.junit.jupiter.api.Test;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class SwiGluTest {
    // odd on purpose: N = 3·37 rows of F = 131; gates over [-8, 8) cover both tails of the sigmoid
    static final int N = 3 * 37, F = 131;
    final float[] gate = randomFloats(1, N * F, 8f);
    final float[] up = randomFloats(2, N * F, 2f);
    final float[] dout = randomFloats(3, N * F, 1f);

    @Test
    void forwardMatchesReference() {
        float[] out = new float[N * F];
        SwiGlu.forward(out, gate, up, N, F);
        double[] ref = new double[N * F];
        SwiGluReference.forward(ref, toDouble(gate), toDouble(up), N, F);
        assertClose(out, ref, 1e-6, "out");
    }

    @Test
    void backwardMatchesReference() {
        float[] dgate = new float[N * F], dup = new float[N * F];
        SwiGlu.backward(dgate, dup, dout, gate, up, N, F);
        double[] refDgate = new double[N * F], refDup = new double[N * F];
        SwiGluReference.backward(refDgate, refDup, toDouble(dout), toDouble(gate), toDouble(up), N, F);
        assertClose(dgate, refDgate, 1e-6, "dgate");
        assertClose(dup, refDup, 1e-6, "dup");
    }

    @Test
    void backwardAddsIntoGradients() {
        float[] dgate0 = new float[N * F], dup0 = new float[N * F];
        SwiGlu.backward(dgate0, dup0, dout, gate, up, N, F);
        float[] dgate = randomFloats(4, N * F, 1f), dup = randomFloats(5, N * F, 1f);
        float[] dgateBefore = dgate.clone(), dupBefore = dup.clone();
        SwiGlu.backward(dgate, dup, dout, gate, up, N, F);
        for (int i = 0; i < dgate.length; i++) {
            assertThat(dgate[i]).isEqualTo(dgateBefore[i] + dgate0[i]);
            assertThat(dup[i]).isEqualTo(dupBefore[i] + dup0[i]);
        }
    }

    @Test
    void referenceGradientsMatchFiniteDifferences() {
        int n = 3, f = 5;
        double[] g = randomDoubles(10, n * f, 4), u = randomDoubles(11, n * f, 2), probe = randomDoubles(12, n * f, 1);
        double[] dg = new double[n * f], du = new double[n * f];
        SwiGluReference.backward(dg, du, probe, g, u, n, f);
        double[] numDg = numericGradient(g, gv -> {
            double[] o = new double[n * f];
            SwiGluReference.forward(o, gv, u, n, f);
            return dot(o, probe);
        }, 1e-6);
        double[] numDu = numericGradient(u, uv -> {
            double[] o = new double[n * f];
            SwiGluReference.forward(o, g, uv, n, f);
            return dot(o, probe);
        }, 1e-6);
        assertClose(dg, numDg, 1e-8, "reference dgate vs finite differences");
        assertClose(du, numDu, 1e-8, "reference dup vs finite differences");
    }

    @Test
    void extremeGatesStayFinite() {
        float[] g = {-1000f, -88f, 88f, 1000f};
        float[] u = {1f, 1f, 1f, 1f};
        float[] out = new float[4], dg = new float[4], du = new float[4];
        SwiGlu.forward(out, g, u, 1, 4);
        SwiGlu.backward(dg, du, u, g, u, 1, 4);
        assertThat(out).containsExactly(new float[] {0f, 0f, 88f, 1000f}, within(1e-30f));
        for (int i = 0; i < 4; i++) {
            assertThat(Float.isFinite(dg[i])).isTrue();
        }
        assertThat(dg[3]).isEqualTo(1f);
    }
}
