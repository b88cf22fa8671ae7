package dev.longtune.ops;

import dev.longtune.ops.reference.CrossEntropyReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class FusedLinearCrossEntropyTest {
    // odd on purpose: N = 37 tokens, H = 131, V = 97 (not a multiple of the chunk of 7), about a quarter ignored
    static final int N = 37, H = 131, V = 97, CHUNK = 7;
    static final int IGNORE = FusedLinearCrossEntropy.IGNORE_INDEX;
    final float[] hidden = randomFloats(1, N * H, 1f);
    final float[] weight = randomFloats(2, V * H, 0.3f);
    final int[] labels = labels(3, N, V, 0.25);

    @Test
    void gpuChunksKeepFp32LogitsAndTheirGradientWithinTheBudget() {
        // Llama 3.1's vocabulary: 1 GiB / (V·(4 + 2)) = 1,395 rows, cut to a multiple of 128
        assertThat(FusedLinearCrossEntropy.gpuChunkRows(131_072, 128_256, 2)).isEqualTo(1_280);
        assertThat(1_280L * 128_256 * 6).isLessThanOrEqualTo(1L << 30);
        assertThat(FusedLinearCrossEntropy.gpuChunkRows(131_072, 128_256, 4)).isEqualTo(1_024);
        // fewer tokens than a chunk: one chunk of them
        assertThat(FusedLinearCrossEntropy.gpuChunkRows(100, 128_256, 2)).isEqualTo(100);
        // the GPU parity test's small budget: 13 rows (bf16) or 9 (fp32), not rounded below 128
        assertThat(FusedLinearCrossEntropy.gpuChunkRows(37, 1_003, 2, 80_000)).isEqualTo(13);
        assertThat(FusedLinearCrossEntropy.gpuChunkRows(37, 1_003, 4, 80_000)).isEqualTo(9);
        // a budget below one row still gets one row
        assertThat(FusedLinearCrossEntropy.gpuChunkRows(37, 1_003, 2, 10)).isEqualTo(1);
    }

    @Test
    void lossMatchesReference() {
        double loss = FusedLinearCrossEntropy.forwardBackward(new float[N * H], new float[V * H], hidden, weight,
                labels, N, H, V, CHUNK);
        double ref = CrossEntropyReference.forward(toDouble(hidden), toDouble(weight), labels, N, H, V);
        assertThat(Math.abs(loss - ref) / ref).as("loss relative error").isLessThanOrEqualTo(1e-6);
    }

    @Test
    void gradientsMatchReference() {
        float[] dh = new float[N * H], dw = new float[V * H];
        FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, labels, N, H, V, CHUNK);
        double[] refDh = new double[N * H], refDw = new double[V * H];
        CrossEntropyReference.backward(refDh, refDw, toDouble(hidden), toDouble(weight), labels, N, H, V);
        assertClose(dh, refDh, 1e-5, "dhidden");
        assertClose(dw, refDw, 1e-5, "dweight");
        for (int t = 0; t < N; t++) {
            if (labels[t] == IGNORE) {
                assertThat(Arrays.copyOfRange(dh, t * H, (t + 1) * H)).containsOnly(0f);
            }
        }
    }

    @Test
    void backwardAddsIntoGradients() {
        float[] dh0 = new float[N * H], dw0 = new float[V * H];
        FusedLinearCrossEntropy.forwardBackward(dh0, dw0, hidden, weight, labels, N, H, V, CHUNK);
        float[] dh = randomFloats(4, N * H, 1f), dw = randomFloats(5, V * H, 1f);
        float[] dhBefore = dh.clone(), dwBefore = dw.clone();
        FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, labels, N, H, V, CHUNK);
        for (int i = 0; i < dh.length; i++) {
            assertThat(dh[i]).isEqualTo(dhBefore[i] + dh0[i]);
        }
        // dweight is added chunk by chunk, so with a prefill the rounding differs from prefill + (sum of chunks)
        double[] expected = new double[dw.length];
        for (int i = 0; i < dw.length; i++) {
            expected[i] = (double) dwBefore[i] + dw0[i];
        }
        assertClose(dw, expected, 1e-6, "dweight added to a prefilled buffer");
    }

    @Test
    void chunkSizeDoesNotChangeTheResult() {
        // OpenBLAS picks its kernels (and so the order of a token's sums) by the shape of the product, so the
        // number of rows in a chunk moves the result by rounding: measured 4e-9 (loss), 5e-7 (dhidden) and
        // 2e-7 (dweight) of the scale here
        float[] dh7 = new float[N * H], dw7 = new float[V * H];
        double loss7 = FusedLinearCrossEntropy.forwardBackward(dh7, dw7, hidden, weight, labels, N, H, V, 7);
        for (int chunk : new int[] {1, 4, N, 1000}) {
            float[] dh = new float[N * H], dw = new float[V * H];
            double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, labels, N, H, V, chunk);
            assertThat(loss).as("loss with chunk " + chunk).isCloseTo(loss7, within(1e-7 * loss7));
            assertClose(dh, toDouble(dh7), 5e-6, "dhidden with chunk " + chunk);
            assertClose(dw, toDouble(dw7), 1e-6, "dweight with chunk " + chunk);
        }
    }

    @Test
    void sameChunkSizeReproducesTheResultExactly() {
        for (int chunk : new int[] {1, 4, 7, N}) {
            float[] dh1 = new float[N * H], dw1 = new float[V * H], dh2 = new float[N * H], dw2 = new float[V * H];
            double loss1 = FusedLinearCrossEntropy.forwardBackward(dh1, dw1, hidden, weight, labels, N, H, V, chunk);
            double loss2 = FusedLinearCrossEntropy.forwardBackward(dh2, dw2, hidden, weight, labels, N, H, V, chunk);
            assertThat(loss2).as("loss with chunk " + chunk).isEqualTo(loss1);
            assertThat(dh2).as("dhidden with chunk " + chunk).containsExactly(dh1);
            assertThat(dw2).as("dweight with chunk " + chunk).containsExactly(dw1);
        }
    }

    @Test
    void buffersLongerThanTheMatricesAreAccepted() {
        // Gemm wants arrays of exactly (V, H): longer weight and dweight arrays go through copies
        float[] dh = new float[N * H], dw = new float[V * H];
        double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, labels, N, H, V, CHUNK);
        float[] longWeight = Arrays.copyOf(weight, V * H + 5), longDw = new float[V * H + 5];
        Arrays.fill(longDw, V * H, longDw.length, 3f);
        float[] longDh = new float[N * H + 5];
        double longLoss = FusedLinearCrossEntropy.forwardBackward(longDh, longDw, hidden, longWeight, labels, N, H, V, CHUNK);
        assertThat(longLoss).isEqualTo(loss);
        assertThat(Arrays.copyOf(longDh, N * H)).containsExactly(dh);
        assertThat(Arrays.copyOf(longDw, V * H)).containsExactly(dw);
        assertThat(Arrays.copyOfRange(longDw, V * H, longDw.length)).containsOnly(3f);
        assertThat(Arrays.copyOfRange(longDh, N * H, longDh.length)).containsOnly(0f);
    }

    @Test
    void allLabelsIgnoredGivesZeroLossAndNoGradient() {
        int[] ignored = new int[N];
        Arrays.fill(ignored, IGNORE);
        float[] dh = new float[N * H], dw = new float[V * H];
        double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, ignored, N, H, V, CHUNK);
        assertThat(loss).isEqualTo(0.0);
        assertThat(dh).containsOnly(0f);
        assertThat(dw).containsOnly(0f);
        assertThat(CrossEntropyReference.forward(toDouble(hidden), toDouble(weight), ignored, N, H, V)).isEqualTo(0.0);
    }

    @Test
    void frozenHeadSkipsWeightGradient() {
        float[] dh = new float[N * H], dhOnly = new float[N * H];
        double loss = FusedLinearCrossEntropy.forwardBackward(dh, new float[V * H], hidden, weight, labels, N, H, V, CHUNK);
        double lossOnly = FusedLinearCrossEntropy.forwardBackward(dhOnly, null, hidden, weight, labels, N, H, V, CHUNK);
        assertThat(lossOnly).isEqualTo(loss);
        assertThat(dhOnly).containsExactly(dh);
    }

    @Test
    void largeLogitsStayFinite() {
        float[] big = hidden.clone();
        for (int i = 0; i < big.length; i++) {
            big[i] *= 400f;
        }
        float[] dh = new float[N * H], dw = new float[V * H];
        double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, big, weight, labels, N, H, V, CHUNK);
        double ref = CrossEntropyReference.forward(toDouble(big), toDouble(weight), labels, N, H, V);
        assertThat(Double.isFinite(loss)).isTrue();
        assertThat(Math.abs(loss - ref) / ref).isLessThanOrEqualTo(1e-5);
        for (float g : dh) {
            assertThat(Float.isFinite(g)).isTrue();
        }
    }

    @Test
    void resultDoesNotDependOnThreadCount() throws Exception {
        Callable<float[][]> run = () -> {
            float[] dh = new float[N * H], dw = new float[V * H];
            double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, hidden, weight, labels, N, H, V, CHUNK);
            return new float[][] {dh, dw, {(float) loss}};
        };
        float[][] one = GradCheck.inPool(1, run), many = GradCheck.inPool(5, run);
        for (int i = 0; i < one.length; i++) {
            assertThat(many[i]).containsExactly(one[i]);
        }
    }

    @Test
    void referenceGradientsMatchFiniteDifferences() {
        int n = 4, h = 3, v = 5;
        int[] small = {2, IGNORE, 4, 2};
        double[] hs = randomDoubles(10, n * h, 1.5), ws = randomDoubles(11, v * h, 1.5);
        double[] dh = new double[n * h], dw = new double[v * h];
        CrossEntropyReference.backward(dh, dw, hs, ws, small, n, h, v);
        double[] numDh = numericGradient(hs, hv -> CrossEntropyReference.forward(hv, ws, small, n, h, v), 1e-6);
        double[] numDw = numericGradient(ws, wv -> CrossEntropyReference.forward(hs, wv, small, n, h, v), 1e-6);
        assertClose(dh, numDh, 1e-8, "reference dhidden vs finite differences");
        assertClose(dw, numDw, 1e-8, "reference dweight vs finite differences");
    }

    @Test
    void defaultChunkFollowsLiger() {
        // Llama 3.1 8B head at 8192 tokens: ceil(128256 / 4096) = 32, 8192 / 32 = 256 rows per chunk
        assertThat(FusedLinearCrossEntropy.defaultChunkSize(8192, 4096, 128256)).isEqualTo(256);
        // 37 tokens, ceil(97 / 131) = 1: next power of two of 37
        assertThat(FusedLinearCrossEntropy.defaultChunkSize(N, H, V)).isEqualTo(64);
    }

    @Test
    void rejectsLabelOutsideVocabulary() {
        int[] bad = labels.clone();
        bad[3] = V;
        assertThatThrownBy(() -> FusedLinearCrossEntropy.forwardBackward(null, null, hidden, weight, bad, N, H, V, CHUNK))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token 3");
    }

    /**
     * One timed forward+backward at a Llama 3 head on 2048 tokens (H = 256, V = 128256, a quarter of the labels
     * ignored), at the default chunk and at {@code -Dlongtune.flce.chunk} if given. Skipped unless asked for:
     * {@code mvn -B test -pl toolkit -Dtest='FusedLinearCrossEntropyTest#benchmark*' -Dlongtune.benchmark=true}
     */
    @Test
    @EnabledIfSystemProperty(named = "longtune.benchmark", matches = "true")
    void benchmarkLlama3HeadAt2048Tokens() {
        int n = 2048, h = 256, v = 128256;
        float[] hs = randomFloats(1, n * h, 1f), ws = randomFloats(2, v * h, 0.3f);
        int[] ls = labels(3, n, v, 0.25);
        // warm ND4J up on the test's small problem
        FusedLinearCrossEntropy.forwardBackward(new float[N * H], new float[V * H], hidden, weight, labels, N, H, V, CHUNK);
        List<Integer> chunks = new ArrayList<>(List.of(FusedLinearCrossEntropy.defaultChunkSize(n, h, v)));
        if (System.getProperty("longtune.flce.chunk") != null) {
            chunks.add(Integer.parseInt(System.getProperty("longtune.flce.chunk")));
        }
        com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        for (int chunk : chunks) {
            float[] dh = new float[n * h], dw = new float[v * h];
            long c0 = os.getProcessCpuTime(), t0 = System.nanoTime();
            double loss = FusedLinearCrossEntropy.forwardBackward(dh, dw, hs, ws, ls, n, h, v, chunk);
            long t1 = System.nanoTime(), c1 = os.getProcessCpuTime();
            System.out.printf("FusedLinearCrossEntropy N=%d H=%d V=%d chunk=%d on %d threads: forward+backward %.2f s wall,"
                            + " %.2f CPU s, loss %.9f%n", n, h, v, chunk, Runtime.getRuntime().availableProcessors(),
                    (t1 - t0) / 1e9, (c1 - c0) / 1e9, loss);
            assertThat(Double.isFinite(loss)).isTrue();
        }
    }

    /** Random labels in [0, v), each ignored with the given probability; the first is always valid. */
    static int[] labels(long seed, int n, int v, double ignoredFraction) {
        Random r = new Random(seed);
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i > 0 && r.nextDouble() < ignoredFraction ? IGNORE : r.nextInt(v);
        }
        return labels;
    }

    @Test
    void aGradientScaleMultipliesTheGradientsButNotTheLoss() {
        int n = 9, h = 5, v = 11;
        float[] hidden = GradCheck.randomFloats(41, n * h, 1f), weight = GradCheck.randomFloats(42, v * h, 1f);
        int[] labels = {1, 2, -100, 3, 10, 0, 4, -100, 7};
        float[] dh1 = new float[n * h], dw1 = new float[v * h], dh4 = new float[n * h], dw4 = new float[v * h];
        double l1 = FusedLinearCrossEntropy.forwardBackward(dh1, dw1, hidden, weight, labels, n, h, v, 4);
        double l4 = FusedLinearCrossEntropy.forwardBackward(dh4, dw4, hidden, weight, labels, n, h, v, 4, 4f);
        org.assertj.core.api.Assertions.assertThat(l4).isEqualTo(l1);
        for (int i = 0; i < dh1.length; i++) {
            org.assertj.core.api.Assertions.assertThat(dh4[i]).isCloseTo(4 * dh1[i], org.assertj.core.api.Assertions.within(1e-6f));
        }
        for (int i = 0; i < dw1.length; i++) {
            org.assertj.core.api.Assertions.assertThat(dw4[i]).isCloseTo(4 * dw1[i], org.assertj.core.api.Assertions.within(1e-6f));
        }
    }
}
