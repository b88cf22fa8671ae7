package dev.longtune.ops;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Matrix products on the CPU through ND4J (OpenBLAS), FP32 in and FP32 accumulation. BF16/FP16 data is
 * held as rounded floats (see DType), so ND4J never accumulates in reduced precision.
 */
public final class Gemm {
    private Gemm() {}

    /**
     * c (M, N) = alpha · op(a) · op(b) + beta · c, where op(a) is (M, K): a is (M, K), or (K, M) when
     * transposeA; op(b) is (K, N): b is (K, N), or (N, K) when transposeB (PyTorch's Linear weight layout).
     * beta = 1 accumulates, as gradients do.
     */
    public static void gemm(float[] c, float[] a, float[] b, int m, int n, int k, boolean transposeA,
                            boolean transposeB, float alpha, float beta) {
        require(a.length >= (long) m * k, "a", (long) m * k, a.length);
        require(b.length >= (long) k * n, "b", (long) k * n, b.length);
        require(c.length >= (long) m * n, "c", (long) m * n, c.length);
        try (INDArray A = Nd4j.create(prefix(a, (long) m * k), transposeA ? new long[] {k, m} : new long[] {m, k}, DataType.FLOAT);
             INDArray B = Nd4j.create(prefix(b, (long) k * n), transposeB ? new long[] {n, k} : new long[] {k, n}, DataType.FLOAT);
             INDArray C = beta == 0 ? Nd4j.create(DataType.FLOAT, m, n) : Nd4j.create(prefix(c, (long) m * n), new long[] {m, n}, DataType.FLOAT)) {
            Nd4j.gemm(A, B, C, transposeA, transposeB, alpha, beta);
            float[] result = C.data().asFloat();
            System.arraycopy(result, 0, c, 0, m * n);
        }
    }

    /** The first {@code n} values: the array itself when that is all of it (a sequence tile's last, shorter rows use less). */
    private static float[] prefix(float[] x, long n) {
        return x.length == n ? x : java.util.Arrays.copyOf(x, Math.toIntExact(n));
    }

    /** The plain triple loop in double, for tests. */
    public static double[] reference(double[] a, double[] b, int m, int n, int k, boolean transposeA, boolean transposeB) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += (transposeA ? a[p * m + i] : a[i * k + p]) * (transposeB ? b[j * k + p] : b[p * n + j]);
                }
                c[i * n + j] = s;
            }
        }
        return c;
    }

    private static void require(boolean ok, String name, long need, int have) {
        if (!ok) {
            throw new IllegalArgumentException("gemm: " + name + " holds " + have + " elements, needs " + need);
        }
    }

    private static void require(long have, String name, long need, int length) {
        require(have <= length, name, need, length);
    }
}
