package dev.longtune.ops.nativecpu;

import dev.longtune.ops.RmsNorm;
import dev.longtune.ops.SwiGlu;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import static dev.longtune.ops.GradCheck.randomFloats;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Native kernels against the Java ops at N=2048, C=F=4096: median of a few timed runs after warm-up. Skipped
 * unless asked for:
 * {@code mvn -B test -pl toolkit -Dtest='NativeCpuBenchmarkTest' -Dlongtune.benchmark=true}
 */
@EnabledIfSystemProperty(named = "longtune.benchmark", matches = "true")
class NativeCpuBenchmarkTest {
    static final int N = 2048, C = 4096, REPS = 7;

    @Test
    void nativeAgainstJava() {
        assumeTrue(NativeCpuOps.isAvailable(), () -> "native unavailable: " + NativeCpuOps.unavailableReason());
        float[] x = randomFloats(1, N * C, 2f), w = randomFloats(2, C, 1f), dy = randomFloats(3, N * C, 1f);
        float[] up = randomFloats(4, N * C, 2f);
        float[] out = new float[N * C], rstd = new float[N], dx = new float[N * C], dw = new float[C];
        float[] dg = new float[N * C], du = new float[N * C];
        System.out.printf("N=%d C=F=%d, %d JVM processors, %d OpenMP threads; median ms of %d runs%n",
                N, C, Runtime.getRuntime().availableProcessors(), NativeCpuOps.threads(), REPS);
        report("RMSNorm forward",
                time(() -> RmsNorm.forward(out, rstd, x, w, N, C, 1e-5f)),
                time(() -> NativeCpuOps.rmsNormForward(out, rstd, x, w, N, C, 1e-5f)));
        report("RMSNorm backward",
                time(() -> RmsNorm.backward(dx, dw, dy, x, w, rstd, N, C)),
                time(() -> NativeCpuOps.rmsNormBackward(dx, dw, dy, x, w, rstd, N, C)));
        report("SwiGLU forward",
                time(() -> SwiGlu.forward(out, x, up, N, C)),
                time(() -> NativeCpuOps.swiGluForward(out, x, up, N, C)));
        report("SwiGLU backward",
                time(() -> SwiGlu.backward(dg, du, dy, x, up, N, C)),
                time(() -> NativeCpuOps.swiGluBackward(dg, du, dy, x, up, N, C)));

        // FloatPointer path: kernel on off-heap memory alone, and with the copies in and out of float[]
        try (FloatPointer px = new FloatPointer(x); FloatPointer pw = new FloatPointer(w);
             FloatPointer pout = new FloatPointer((long) N * C); FloatPointer prstd = new FloatPointer((long) N)) {
            double kernel = time(() -> NativeCpuKernels.rmsNormForward(pout, prstd, px, pw, N, C, 1e-5f));
            double copying = time(() -> {
                px.put(x);
                pw.put(w);
                NativeCpuKernels.rmsNormForward(pout, prstd, px, pw, N, C, 1e-5f);
                pout.get(out);
                prstd.get(rstd);
            });
            System.out.printf("  RMSNorm forward via FloatPointer: kernel only %.2f ms, with copies from/to float[] %.2f ms%n",
                    kernel, copying);
        }
    }

    private static void report(String what, double javaMs, double nativeMs) {
        System.out.printf("  %-17s Java %8.2f ms   native %8.2f ms   x%.2f%n", what, javaMs, nativeMs, javaMs / nativeMs);
    }

    private static double time(Runnable r) {
        for (int i = 0; i < 3; i++) {
            r.run();
        }
        double[] ms = new double[REPS];
        for (int i = 0; i < REPS; i++) {
            long t0 = System.nanoTime();
            r.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        java.util.Arrays.sort(ms);
        return ms[REPS / 2];
    }
}
