package dev.longtune.ops;

import dev.longtune.ops.reference.RmsNormReference;
import org.junit.jupiter.api.Test;

import java.util.concurrent.Callable;
import java.util.concurrent.ForkJoinPool;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.withinPercentage;

class RmsNormTest {
    // odd on purpose: N = 3·37 rows of C = 131 channels
    static final int N = 3 * 37, C = 131;
    static final float EPS = 1e-5f;

    final float[] x = randomFloats(1, N * C, 2f);
    final float[] w = randomFloats(2, C, 1.5f);
    final float[] dout = randomFloats(3, N * C, 1f);

    @Test
    void forwardMatchesReference() {
        float[] out = new float[N * C];
        float[] rstd = new float[N];
        RmsNorm.forward(out, rstd, x, w, N, C, EPS);
        double[] ref = new double[N * C];
        RmsNormReference.forward(ref, toDouble(x), toDouble(w), N, C, EPS);
        assertClose(out, ref, 1e-5, "out");
        for (int n = 0; n < N; n++) {
            double ss = 0;
            for (int c = 0; c < C; c++) {
                ss += (double) x[n * C + c] * x[n * C + c];
            }
            assertThat((double) rstd[n]).isCloseTo(1 / Math.sqrt(ss / C + EPS), withinPercentage(1e-4));
        }
    }

    @Test
    void backwardMatchesReference() {
        float[] out = new float[N * C], rstd = new float[N];
        RmsNorm.forward(out, rstd, x, w, N, C, EPS);
        float[] dx = new float[N * C], dw = new float[C];
        RmsNorm.backward(dx, dw, dout, x, w, rstd, N, C);
        double[] refDx = new double[N * C], refDw = new double[C];
        RmsNormReference.backward(refDx, refDw, toDouble(dout), toDouble(x), toDouble(w), N, C, EPS);
        assertClose(dx, refDx, 1e-5, "dinp");
        assertClose(dw, refDw, 1e-5, "dweight");
    }

    @Test
    void backwardAddsIntoGradients() {
        float[] out = new float[N * C], rstd = new float[N];
        RmsNorm.forward(out, rstd, x, w, N, C, EPS);
        float[] dx0 = new float[N * C], dw0 = new float[C];
        RmsNorm.backward(dx0, dw0, dout, x, w, rstd, N, C);
        float[] dx = randomFloats(4, N * C, 1f), dw = randomFloats(5, C, 1f);
        float[] dxBefore = dx.clone(), dwBefore = dw.clone();
        RmsNorm.backward(dx, dw, dout, x, w, rstd, N, C);
        for (int i = 0; i < dx.length; i++) {
            assertThat(dx[i]).isEqualTo(dxBefore[i] + dx0[i]);
        }
        for (int i = 0; i < dw.length; i++) {
            assertThat(dw[i]).isEqualTo(dwBefore[i] + dw0[i]);
        }
    }

    @Test
    void referenceGradientsMatchFiniteDifferences() {
        int n = 3, c = 5;
        double eps = 1e-5;
        double[] xs = randomDoubles(10, n * c, 1.5), ws = randomDoubles(11, c, 1.2), probe = randomDoubles(12, n * c, 1);
        double[] dx = new double[n * c], dw = new double[c];
        RmsNormReference.backward(dx, dw, probe, xs, ws, n, c, eps);
        double[] numDx = numericGradient(xs, xv -> {
            double[] o = new double[n * c];
            RmsNormReference.forward(o, xv, ws, n, c, eps);
            return dot(o, probe);
        }, 1e-6);
        double[] numDw = numericGradient(ws, wv -> {
            double[] o = new double[n * c];
            RmsNormReference.forward(o, xs, wv, n, c, eps);
            return dot(o, probe);
        }, 1e-6);
        assertClose(dx, numDx, 1e-7, "reference dinp vs finite differences");
        assertClose(dw, numDw, 1e-7, "reference dweight vs finite differences");
    }

    @Test
    void weightGradientDoesNotDependOnThreadCount() throws Exception {
        int n = 1000; // more rows than partial blocks
        float[] xs = randomFloats(20, n * C, 2f), dy = randomFloats(21, n * C, 1f);
        float[] out = new float[n * C], rstd = new float[n];
        RmsNorm.forward(out, rstd, xs, w, n, C, EPS);
        Callable<float[]> dw = () -> {
            float[] g = new float[C];
            RmsNorm.backward(new float[n * C], g, dy, xs, w, rstd, n, C);
            return g;
        };
        assertThat(inPool(1, dw)).containsExactly(inPool(5, dw));
    }

    @Test
    void nullGradientsAreSkipped() {
        float[] out = new float[N * C], rstd = new float[N];
        RmsNorm.forward(out, rstd, x, w, N, C, EPS);
        float[] dx = new float[N * C], dxOnly = new float[N * C];
        RmsNorm.backward(dx, new float[C], dout, x, w, rstd, N, C);
        RmsNorm.backward(dxOnly, null, dout, x, w, rstd, N, C);
        assertThat(dxOnly).containsExactly(dx);
    }
}
