package dev.longtune.ops.nativecpu;

import dev.longtune.ops.Embedding;
import dev.longtune.ops.FlashAttention;
import dev.longtune.ops.FusedLinearCrossEntropy;
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

    /** FlashAttention at T=2048 (Llama 3.1 8B heads: 32 query, 8 KV, d=128; and the tiny model's 8/2, d=32). */
    @Test
    void attentionNativeAgainstJava() {
        assumeTrue(NativeCpuOps.isAvailable(), () -> "native unavailable: " + NativeCpuOps.unavailableReason());
        int t = 2048;
        int[] cu = {0, t};
        for (int[] heads : new int[][] {{32, 8, 128}, {8, 2, 32}}) {
            int hq = heads[0], hkv = heads[1], d = heads[2];
            float[] q = randomFloats(1, t * hq * d, 1f), k = randomFloats(2, t * hkv * d, 1f);
            float[] v = randomFloats(3, t * hkv * d, 1f), dout = randomFloats(4, t * hq * d, 1f);
            float[] out = new float[q.length], lse = new float[hq * t];
            float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
            System.out.printf("T=%d one document, Hq=%d Hkv=%d D=%d, %d OpenMP threads; median ms of 3 runs%n",
                    t, hq, hkv, d, NativeCpuOps.threads());
            report("attention forward",
                    time(() -> FlashAttention.forward(out, lse, q, k, v, cu, t, hq, hkv, d), 1, 3),
                    time(() -> NativeCpuOps.flashAttentionForward(out, lse, q, k, v, cu, t, hq, hkv, d), 1, 3));
            report("attention backward",
                    time(() -> FlashAttention.backward(dq, dk, dv, dout, q, k, v, out, lse, cu, t, hq, hkv, d), 1, 3),
                    time(() -> NativeCpuOps.flashAttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, cu, t, hq, hkv, d), 1, 3));
        }
    }

    /** Embedding at T=2048, C=4096 from a 128,256-row table; cross-entropy rows of a 256-token chunk, V=128,256. */
    @Test
    void embeddingAndCrossEntropyRowsNativeAgainstJava() {
        assumeTrue(NativeCpuOps.isAvailable(), () -> "native unavailable: " + NativeCpuOps.unavailableReason());
        int vocab = 128256, rows = 256;
        int[] ids = new int[N];
        java.util.Random r = new java.util.Random(5);
        for (int i = 0; i < N; i++) {
            ids[i] = r.nextInt(vocab);
        }
        float[] table = randomFloats(6, vocab * C, 1f), out = new float[N * C], dout = randomFloats(7, N * C, 1f);
        System.out.printf("embedding T=%d C=%d, cross-entropy rows %d x V=%d; median ms of %d runs%n", N, C, rows,
                vocab, REPS);
        report("embedding forward", time(() -> Embedding.forward(out, ids, table, N, C)),
                time(() -> NativeCpuOps.embeddingForward(out, ids, table, N, C)));
        report("embedding backward", time(() -> Embedding.backward(table, dout, ids, N, C)),
                time(() -> NativeCpuOps.embeddingBackward(table, dout, ids, N, C)));
        float[] logits0 = randomFloats(8, rows * vocab, 4f), logits = new float[rows * vocab];
        int[] labels = java.util.Arrays.copyOf(ids, rows);
        double[] loss = new double[rows];
        // each run overwrites the logits with their gradient, so copy them back first (timed on both sides)
        report("CE rows", time(() -> {
                    System.arraycopy(logits0, 0, logits, 0, logits.length);
                    FusedLinearCrossEntropy.JAVA_ROWS.lossAndGradient(logits, loss, labels, rows, vocab, 1f / rows);
                }),
                time(() -> {
                    System.arraycopy(logits0, 0, logits, 0, logits.length);
                    NativeCpuOps.crossEntropyRows(logits, loss, labels, rows, vocab, 1f / rows);
                }));
    }

    private static void report(String what, double javaMs, double nativeMs) {
        System.out.printf("  %-17s Java %8.2f ms   native %8.2f ms   x%.2f%n", what, javaMs, nativeMs, javaMs / nativeMs);
    }

    private static double time(Runnable r) {
        return time(r, 3, REPS);
    }

    private static double time(Runnable r, int warmups, int reps) {
        for (int i = 0; i < warmups; i++) {
            r.run();
        }
        double[] ms = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            r.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        java.util.Arrays.sort(ms);
        return ms[reps / 2];
    }
}
