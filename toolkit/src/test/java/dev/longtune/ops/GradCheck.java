package dev.longtune.ops;

import java.util.Random;
import java.util.function.Function;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Test support for the fused ops: seeded random data (never zeros), finite-difference gradients in fp64,
 * and relative-error comparisons.
 */
public final class GradCheck {
    private GradCheck() {}

    /** Uniform in [-scale, scale), seeded. */
    public static double[] randomDoubles(long seed, int n, double scale) {
        Random r = new Random(seed);
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = (2 * r.nextDouble() - 1) * scale;
        }
        return x;
    }

    public static float[] randomFloats(long seed, int n, float scale) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (2 * r.nextFloat() - 1) * scale;
        }
        return x;
    }

    public static float[] toFloat(double[] x) {
        float[] f = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            f[i] = (float) x[i];
        }
        return f;
    }

    public static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    /**
     * Central-difference gradient of a scalar loss with respect to {@code x}, perturbing each element by
     * ±h in fp64. {@code loss} must read {@code x} afresh on every call.
     */
    public static double[] numericGradient(double[] x, Function<double[], Double> loss, double h) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + h;
            double plus = loss.apply(x);
            x[i] = keep - h;
            double minus = loss.apply(x);
            x[i] = keep;
            g[i] = (plus - minus) / (2 * h);
        }
        return g;
    }

    /** Scalar loss Σ out·w for fixed weights w: its gradient with respect to out is w. */
    public static double dot(double[] out, double[] w) {
        double s = 0;
        for (int i = 0; i < out.length; i++) {
            s += out[i] * w[i];
        }
        return s;
    }

    /** max |a − b| / max(max |b|, tiny): the error relative to the reference's scale. */
    public static double relativeError(double[] actual, double[] reference) {
        assertThat(actual).hasSameSizeAs(reference);
        double maxDiff = 0, maxRef = 1e-30;
        for (int i = 0; i < actual.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(actual[i] - reference[i]));
            maxRef = Math.max(maxRef, Math.abs(reference[i]));
        }
        return maxDiff / maxRef;
    }

    public static double relativeError(float[] actual, double[] reference) {
        return relativeError(toDouble(actual), reference);
    }

    public static void assertClose(double[] actual, double[] reference, double tolerance, String what) {
        assertThat(relativeError(actual, reference)).as(what + " relative error").isLessThanOrEqualTo(tolerance);
    }

    /** Runs {@code task} in a pool of exactly {@code threads} workers: parallel code must not change its result. */
    public static <T> T inPool(int threads, java.util.concurrent.Callable<T> task) throws Exception {
        java.util.concurrent.ForkJoinPool pool = new java.util.concurrent.ForkJoinPool(threads);
        try {
            return pool.submit(task).get();
        } finally {
            pool.shutdown();
        }
    }

    public static void assertClose(float[] actual, double[] reference, double tolerance, String what) {
        assertClose(toDouble(actual), reference, tolerance, what);
    }
}
