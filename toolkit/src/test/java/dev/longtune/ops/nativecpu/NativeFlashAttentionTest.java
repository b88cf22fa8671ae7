package dev.longtune.ops.nativecpu;

import dev.longtune.ops.FlashAttention;
import dev.longtune.ops.reference.AttentionReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.stream.Stream;

import static dev.longtune.ops.GradCheck.assertClose;
import static dev.longtune.ops.GradCheck.randomFloats;
import static dev.longtune.ops.GradCheck.toDouble;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The native FlashAttention-2 (kernels/cpu/flash_attention.h) against the Java op and the fp64 reference on
 * packed documents of uneven lengths, GQA and tiles that divide nothing; += in backward; the same bits from
 * run to run and for 1, 2 or 3 OpenMP threads.
 */
class NativeFlashAttentionTest {
    private static final double FP32_TOLERANCE = 1e-5;

    record Problem(String name, int t, int[] cuSeqlens, int hq, int hkv, int d, int br, int bc) {
        float[] q() { return randomFloats(31, t * hq * d, 2f); }
        float[] k() { return randomFloats(32, t * hkv * d, 2f); }
        float[] v() { return randomFloats(33, t * hkv * d, 1f); }
        float[] dout() { return randomFloats(34, t * hq * d, 1f); }

        @Override
        public String toString() { return name; }
    }

    /** Forward and backward outputs of one run. */
    record Result(float[] out, float[] lse, float[] dq, float[] dk, float[] dv) {
        boolean sameBits(Result o) {
            return Arrays.equals(out, o.out) && Arrays.equals(lse, o.lse) && Arrays.equals(dq, o.dq)
                    && Arrays.equals(dk, o.dk) && Arrays.equals(dv, o.dv);
        }
    }

    static Stream<Arguments> problems() {
        int[] threeDocs = {0, 5, 18, 37}; // 5 + 13 + 19 tokens
        return Stream.of(
                new Problem("T=37 docs 5+13+19, Hq=4 Hkv=2 D=64, default tiles", 37, threeDocs, 4, 2, 64, 64, 64),
                new Problem("T=37 docs 5+13+19, Hq=4 Hkv=2 D=128, default tiles", 37, threeDocs, 4, 2, 128, 64, 64),
                new Problem("T=37 docs 5+13+19, Hq=4 Hkv=2 D=64, Br=8 Bc=4", 37, threeDocs, 4, 2, 64, 8, 4),
                new Problem("T=131 docs 1+57+73, Hq=6 Hkv=2 D=16, Br=16 Bc=8", 131, new int[] {0, 1, 58, 131}, 6, 2, 16, 16, 8),
                new Problem("T=150 one doc, Hq=4 Hkv=1 D=128, default tiles (3 blocks each way)", 150, new int[] {0, 150}, 4, 1, 128, 64, 64),
                new Problem("T=23 docs 5+0+18 (one empty), Hq=Hkv=3 D=5, Br=5 Bc=7", 23, new int[] {0, 5, 5, 23}, 3, 3, 5, 5, 7))
                .map(Arguments::of);
    }

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void nativeLibraryLoads() {
        NativeLibrary.requireLoaded();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("problems")
    void matchesTheJavaOpAndTheFp64Reference(Problem p) {
        Result n = runNative(p);
        float[] q = p.q(), k = p.k(), v = p.v(), dout = p.dout();

        float[] out = new float[q.length], lse = new float[p.hq() * p.t()];
        FlashAttention.forward(out, lse, q, k, v, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d(), p.br(), p.bc());
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        FlashAttention.backward(dq, dk, dv, dout, q, k, v, out, lse, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d(),
                p.br(), p.bc());
        assertClose(n.out, toDouble(out), FP32_TOLERANCE, "out vs Java");
        assertClose(n.lse, toDouble(lse), FP32_TOLERANCE, "lse vs Java");
        assertClose(n.dq, toDouble(dq), FP32_TOLERANCE, "dq vs Java");
        assertClose(n.dk, toDouble(dk), FP32_TOLERANCE, "dk vs Java");
        assertClose(n.dv, toDouble(dv), FP32_TOLERANCE, "dv vs Java");

        double[] qd = toDouble(q), kd = toDouble(k), vd = toDouble(v);
        double[] refOut = new double[q.length], refLse = new double[lse.length];
        AttentionReference.forward(refOut, refLse, qd, kd, vd, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        double[] refDq = new double[q.length], refDk = new double[k.length], refDv = new double[v.length];
        AttentionReference.backward(refDq, refDk, refDv, toDouble(dout), qd, kd, vd, refOut, p.cuSeqlens(),
                p.t(), p.hq(), p.hkv(), p.d());
        assertClose(n.out, refOut, FP32_TOLERANCE, "out vs fp64 reference");
        assertClose(n.lse, refLse, FP32_TOLERANCE, "lse vs fp64 reference");
        assertClose(n.dq, refDq, FP32_TOLERANCE, "dq vs fp64 reference");
        assertClose(n.dk, refDk, FP32_TOLERANCE, "dk vs fp64 reference");
        assertClose(n.dv, refDv, FP32_TOLERANCE, "dv vs fp64 reference");
    }

    @Test
    void backwardAddsIntoTheGradients() {
        Problem p = problems().map(a -> (Problem) a.get()[0]).findFirst().orElseThrow();
        Result fresh = runNative(p);
        float[] q = p.q(), k = p.k(), v = p.v();
        float[] dq = randomFloats(40, q.length, 1f), dk = randomFloats(41, k.length, 1f), dv = randomFloats(42, v.length, 1f);
        float[] dq0 = dq.clone(), dk0 = dk.clone(), dv0 = dv.clone();
        NativeCpuOps.flashAttentionBackward(dq, dk, dv, p.dout(), q, k, v, fresh.out, fresh.lse, p.cuSeqlens(), p.t(),
                p.hq(), p.hkv(), p.d(), p.br(), p.bc());
        for (int i = 0; i < dq.length; i++) {
            assertThat(dq[i]).isEqualTo(dq0[i] + fresh.dq[i]);
        }
        for (int i = 0; i < dk.length; i++) {
            assertThat(dk[i]).isEqualTo(dk0[i] + fresh.dk[i]);
            assertThat(dv[i]).isEqualTo(dv0[i] + fresh.dv[i]);
        }
    }

    @Test
    void sameBitsFromRunToRunAndForAnyThreadCount() {
        // more tasks than threads in both passes: 8 heads × 5 tiles forward, 2 KV heads × 3 documents backward
        Problem p = new Problem("T=300 docs 40+199+61", 300, new int[] {0, 40, 239, 300}, 8, 2, 32, 64, 64);
        int threads = NativeCpuOps.threads();
        Result first = runNative(p);
        try {
            for (int n : new int[] {1, 2, 3}) {
                NativeCpuKernels.setThreads(n);
                assertThat(runNative(p).sameBits(first)).as("same bits with %d OpenMP threads", n).isTrue();
            }
        } finally {
            NativeCpuKernels.setThreads(threads);
        }
        assertThat(runNative(p).sameBits(first)).as("same bits on a repeated run").isTrue();
    }

    @Test
    void documentsDoNotSeeEachOther() {
        // changing the keys and values of the first document leaves the rows of the second unchanged
        Problem p = new Problem("T=37 docs 5+13+19", 37, new int[] {0, 5, 18, 37}, 4, 2, 64, 64, 64);
        float[] q = p.q(), k = p.k(), v = p.v(), k2 = k.clone(), v2 = v.clone();
        for (int i = 0; i < 5 * p.hkv() * p.d(); i++) {
            k2[i] += 1f;
            v2[i] -= 1f;
        }
        float[] out = new float[q.length], out2 = new float[q.length], lse = new float[p.hq() * p.t()];
        NativeCpuOps.flashAttentionForward(out, lse, q, k, v, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        NativeCpuOps.flashAttentionForward(out2, lse.clone(), q, k2, v2, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d());
        int firstDoc = 5 * p.hq() * p.d();
        assertThat(Arrays.copyOfRange(out2, firstDoc, out.length)).isEqualTo(Arrays.copyOfRange(out, firstDoc, out.length));
        assertThat(Arrays.copyOf(out2, firstDoc)).isNotEqualTo(Arrays.copyOf(out, firstDoc));
    }

    @Test
    void badShapesAreRejectedBeforeTheNativeCall() {
        Problem p = problems().map(a -> (Problem) a.get()[0]).findFirst().orElseThrow();
        float[] q = p.q(), k = p.k(), v = p.v();
        assertThatThrownBy(() -> NativeCpuOps.flashAttentionForward(new float[q.length], new float[3], q, k, v,
                p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lse");
        assertThatThrownBy(() -> NativeCpuOps.flashAttentionForward(new float[q.length], new float[p.hq() * p.t()], q,
                k, v, new int[] {0, 20, 36}, p.t(), p.hq(), p.hkv(), p.d())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cuSeqlens");
        assertThatThrownBy(() -> NativeCpuOps.flashAttentionBackward(new float[q.length], new float[k.length - 1],
                new float[v.length], q, q, k, v, q, new float[p.hq() * p.t()], p.cuSeqlens(), p.t(), p.hq(), p.hkv(),
                p.d())).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("dk");
    }

    private static Result runNative(Problem p) {
        float[] q = p.q(), k = p.k(), v = p.v();
        float[] out = new float[q.length], lse = new float[p.hq() * p.t()];
        NativeCpuOps.flashAttentionForward(out, lse, q, k, v, p.cuSeqlens(), p.t(), p.hq(), p.hkv(), p.d(), p.br(), p.bc());
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        NativeCpuOps.flashAttentionBackward(dq, dk, dv, p.dout(), q, k, v, out, lse, p.cuSeqlens(), p.t(), p.hq(),
                p.hkv(), p.d(), p.br(), p.bc());
        return new Result(out, lse, dq, dk, dv);
    }
}
