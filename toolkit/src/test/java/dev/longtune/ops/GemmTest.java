package dev.longtune.ops;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static dev.longtune.ops.GradCheck.assertClose;
import static dev.longtune.ops.GradCheck.randomDoubles;
import static dev.longtune.ops.GradCheck.toFloat;

class GemmTest {
    @ParameterizedTest
    @CsvSource({"37,131,3,false,false", "37,131,64,false,true", "5,7,131,true,false", "64,33,17,true,true"})
    void matchesTheTripleLoopForEveryTranspose(int m, int n, int k, boolean ta, boolean tb) {
        double[] a = randomDoubles(1, m * k, 1), b = randomDoubles(2, k * n, 1), c0 = randomDoubles(3, m * n, 1);
        double[] ref = Gemm.reference(a, b, m, n, k, ta, tb);
        float[] c = toFloat(c0);
        Gemm.gemm(c, toFloat(a), toFloat(b), m, n, k, ta, tb, 1f, 0f);
        assertClose(c, ref, 1e-5, "gemm");
        // beta = 1 accumulates onto what c held
        float[] acc = toFloat(c0);
        Gemm.gemm(acc, toFloat(a), toFloat(b), m, n, k, ta, tb, 1f, 1f);
        double[] expected = ref.clone();
        for (int i = 0; i < expected.length; i++) {
            expected[i] += (float) c0[i];
        }
        assertClose(acc, expected, 1e-5, "gemm accumulate");
    }
}
