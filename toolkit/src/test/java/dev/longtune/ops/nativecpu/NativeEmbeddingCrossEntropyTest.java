package dev.longtune.ops.nativecpu;

import dev.longtune.ops.Embedding;
import dev.longtune.ops.FusedLinearCrossEntropy;
import dev.longtune.ops.reference.CrossEntropyReference;
import dev.longtune.ops.reference.EmbeddingReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static dev.longtune.ops.GradCheck.assertClose;
import static dev.longtune.ops.GradCheck.randomFloats;
import static dev.longtune.ops.GradCheck.toDouble;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * The native embedding (kernels/cpu/embedding.h) and cross-entropy rows (kernels/cpu/cross_entropy.h, plugged
 * into {@link FusedLinearCrossEntropy} between its GEMMs) against the Java ops and the fp64 references.
 */
class NativeEmbeddingCrossEntropyTest {
    static final int IGNORE = FusedLinearCrossEntropy.IGNORE_INDEX;
    // odd on purpose: 37 tokens, 131 hidden, 97 words, chunks of 7; C = 600 spans three channel blocks of 256
    static final int N = 37, H = 131, V = 97, CHUNK = 7, C = 600;

    @BeforeEach // not @BeforeAll: a class skipped there vanishes from the counts (BeforeAllAssumptionsTest)
    void nativeLibraryLoads() {
        NativeLibrary.requireLoaded();
    }

    // ---- embedding

    @Test
    void embeddingMatchesJavaAndReferenceBitForBitAndAdds() {
        int[] ids = ids(N, V); // ids repeat: backward must add them in token order
        float[] table = randomFloats(1, V * C, 1f), dout = randomFloats(2, N * C, 1f);

        float[] out = new float[N * C], javaOut = new float[N * C];
        NativeCpuOps.embeddingForward(out, ids, table, N, C);
        Embedding.forward(javaOut, ids, table, N, C);
        assertThat(out).isEqualTo(javaOut);
        double[] refOut = new double[N * C];
        EmbeddingReference.forward(refOut, ids, toDouble(table), N, C);
        assertThat(toDouble(out)).isEqualTo(refOut);

        float[] dtable = randomFloats(3, V * C, 1f), javaDtable = dtable.clone();
        double[] refDtable = toDouble(dtable);
        NativeCpuOps.embeddingBackward(dtable, dout, ids, N, C);
        Embedding.backward(javaDtable, dout, ids, N, C);
        EmbeddingReference.backward(refDtable, toDouble(dout), ids, N, C);
        assertThat(Arrays.equals(dtable, javaDtable)).as("dtable (+=) bit for bit with Java").isTrue();
        assertClose(dtable, refDtable, 1e-6, "dtable vs fp64 reference");
    }

    @Test
    void embeddingBackwardIsTheSameForAnyThreadCount() {
        int t = 3000;
        int[] ids = ids(t, 11); // heavy repetition
        float[] dout = randomFloats(4, t * C, 1f);
        float[] first = new float[11 * C];
        NativeCpuOps.embeddingBackward(first, dout, ids, t, C);
        int threads = NativeCpuOps.threads();
        try {
            for (int n : new int[] {1, 3}) {
                NativeCpuKernels.setThreads(n);
                float[] again = new float[11 * C];
                NativeCpuOps.embeddingBackward(again, dout, ids, t, C);
                assertThat(Arrays.equals(again, first)).as("%d threads", n).isTrue();
            }
        } finally {
            NativeCpuKernels.setThreads(threads);
        }
    }

    @Test
    void embeddingRejectsIdsOutsideTheTable() {
        float[] table = new float[V * C];
        assertThatThrownBy(() -> NativeCpuOps.embeddingForward(new float[2 * C], new int[] {3, V}, table, 2, C))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id " + V + " at position 1");
        assertThatThrownBy(() -> NativeCpuOps.embeddingBackward(table, new float[2 * C], new int[] {-1, 0}, 2, C))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id -1");
    }

    // ---- cross-entropy rows inside fused linear cross-entropy

    @Test
    void fusedLinearCrossEntropyWithNativeRowsMatchesJavaAndReference() {
        float[] hidden = randomFloats(5, N * H, 1f), weight = randomFloats(6, V * H, 0.3f);
        int[] labels = labels(N, V);
        float[] dh = new float[N * H], dw = new float[V * H];
        double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, labels, N, H, V, CHUNK, 1f,
                NativeCpuOps::crossEntropyRows);

        float[] jdh = new float[N * H], jdw = new float[V * H];
        double javaLoss = FusedLinearCrossEntropy.forwardBackward(jdh, jdw, hidden, weight, labels, N, H, V, CHUNK);
        assertThat(loss).isCloseTo(javaLoss, within(1e-6 * javaLoss));
        assertClose(dh, toDouble(jdh), 1e-6, "dhidden vs Java");
        assertClose(dw, toDouble(jdw), 1e-6, "dweight vs Java");

        double ref = CrossEntropyReference.forward(toDouble(hidden), toDouble(weight), labels, N, H, V);
        double[] refDh = new double[N * H], refDw = new double[V * H];
        CrossEntropyReference.backward(refDh, refDw, toDouble(hidden), toDouble(weight), labels, N, H, V);
        assertThat(loss).isCloseTo(ref, within(1e-6 * ref));
        assertClose(dh, refDh, 1e-5, "dhidden vs fp64 reference");
        assertClose(dw, refDw, 1e-5, "dweight vs fp64 reference");
        for (int t = 0; t < N; t++) {
            if (labels[t] == IGNORE) {
                assertThat(Arrays.copyOfRange(dh, t * H, (t + 1) * H)).as("ignored token %d", t).containsOnly(0f);
            }
        }
    }

    @Test
    void crossEntropyRowsGiveLossAndScaledSoftmaxMinusOneHot() {
        // one row z = (0, ln 3): softmax (1/4, 3/4), label 1: loss ln 4 − ln 3, gradient (1/4, −1/4)·scale
        float[] z = {0f, (float) Math.log(3)};
        double[] loss = new double[1];
        NativeCpuOps.crossEntropyRows(z, loss, new int[] {1}, 1, 2, 2f);
        assertThat(loss[0]).isCloseTo(Math.log(4.0 / 3.0), within(1e-7));
        assertThat(z[0]).isCloseTo(0.5f, within(1e-7f));
        assertThat(z[1]).isCloseTo(-0.5f, within(1e-7f));
    }

    @Test
    void crossEntropyRowsAreTheSameForAnyThreadCountAndRejectIgnoredLabels() {
        int rows = 64, v = 5003;
        float[] logits = randomFloats(7, rows * v, 8f);
        int[] labels = labels(rows, v);
        for (int r = 0; r < rows; r++) {
            labels[r] = Math.max(labels[r], 0);
        }
        float[] first = logits.clone();
        double[] firstLoss = new double[rows];
        NativeCpuOps.crossEntropyRows(first, firstLoss, labels, rows, v, 0.5f);
        int threads = NativeCpuOps.threads();
        try {
            for (int n : new int[] {1, 3}) {
                NativeCpuKernels.setThreads(n);
                float[] again = logits.clone();
                double[] loss = new double[rows];
                NativeCpuOps.crossEntropyRows(again, loss, labels, rows, v, 0.5f);
                assertThat(Arrays.equals(again, first)).as("%d threads", n).isTrue();
                assertThat(loss).isEqualTo(firstLoss);
            }
        } finally {
            NativeCpuKernels.setThreads(threads);
        }
        labels[5] = IGNORE;
        assertThatThrownBy(() -> NativeCpuOps.crossEntropyRows(logits.clone(), new double[rows], labels, rows, v, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("label -100 of row 5");
    }

    static int[] ids(int n, int v) {
        Random r = new Random(n);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = r.nextInt(v);
        }
        return ids;
    }

    /** Random labels in [0, v), about a quarter ignored, the first always valid. */
    static int[] labels(int n, int v) {
        Random r = new Random(v);
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i > 0 && r.nextDouble() < 0.25 ? IGNORE : r.nextInt(v);
        }
        return labels;
    }
}
