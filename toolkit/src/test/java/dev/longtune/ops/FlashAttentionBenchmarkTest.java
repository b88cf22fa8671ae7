package dev.longtune.ops;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import static dev.longtune.ops.GradCheck.randomFloats;

/**
 * One timed forward+backward at a Llama-3-8B-like attention shape (T=4096, Hq=32, Hkv=8, D=128, one
 * document). Skipped unless asked for:
 * {@code mvn -B test -pl toolkit -Dtest='FlashAttentionBenchmarkTest' -Dlongtune.benchmark=true}
 */
@EnabledIfSystemProperty(named = "longtune.benchmark", matches = "true")
class FlashAttentionBenchmarkTest {
    @Test
    void forwardAndBackwardAtT4096() {
        int t = 4096, hq = 32, hkv = 8, d = 128;
        int[] cuSeqlens = {0, t};
        float[] q = randomFloats(1, t * hq * d, 2f), k = randomFloats(2, t * hkv * d, 2f);
        float[] v = randomFloats(3, t * hkv * d, 1f), dout = randomFloats(4, t * hq * d, 1f);
        float[] out = new float[q.length], lse = new float[hq * t];
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];

        // CPU seconds as well as wall seconds: on a shared machine the wall time includes other processes.
        com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long c0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        FlashAttention.forward(out, lse, q, k, v, cuSeqlens, t, hq, hkv, d);
        long t1 = System.nanoTime();
        FlashAttention.backward(dq, dk, dv, dout, q, k, v, out, lse, cuSeqlens, t, hq, hkv, d);
        long t2 = System.nanoTime();
        long c2 = os.getProcessCpuTime();

        // Causal FLOPs: 2 matmuls forward, 5 backward (S and dP again, dV, dK, dQ), each 2·T²/2·D per head.
        double matmul = (double) t * t * d * hq;
        System.out.printf("FlashAttention T=%d Hq=%d Hkv=%d D=%d on %d threads: forward %.2f s (%.1f GFLOP/s),"
                        + " backward %.2f s (%.1f GFLOP/s)%n", t, hq, hkv, d, Runtime.getRuntime().availableProcessors(),
                (t1 - t0) / 1e9, 2 * matmul / (t1 - t0), (t2 - t1) / 1e9, 5 * matmul / (t2 - t1));
        System.out.printf("  forward+backward %.2f s wall, %.2f CPU s%n", (t2 - t0) / 1e9, (c2 - c0) / 1e9);
    }
}
