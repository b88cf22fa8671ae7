package dev.longtune.ops;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.Callable;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class GradientClippingTest {

    @Test
    void threeFourFiveByHand() {
        float[] a = {3f}, b = {4f};
        double norm = GradientClipping.clipByGlobalNorm(List.of(a, b), 1.0);
        assertThat(norm).isEqualTo(5.0);
        // scaled by 1 / (5 + 1e-6), PyTorch's coefficient
        assertThat(a[0]).isCloseTo(0.6f, within(1e-6f));
        assertThat(b[0]).isCloseTo(0.8f, within(1e-6f));
    }

    @Test
    void belowTheMaximumNothingChanges() {
        float[] a = randomFloats(1, 131, 0.01f), before = a.clone();
        double norm = GradientClipping.clipByGlobalNorm(List.of(a), 10.0);
        assertThat(norm).isLessThan(10.0);
        assertThat(a).containsExactly(before);
    }

    @Test
    void normOverManyArraysMatchesDoubleSumAndClipsToTheMaximum() {
        // odd sizes, one larger than a parallel chunk
        List<float[]> grads = List.of(randomFloats(1, 3 * 37 * 131, 1f), randomFloats(2, 97, 2f),
                randomFloats(3, 40_001, 0.5f));
        double sumSquares = 0;
        for (float[] g : grads) {
            for (float x : g) {
                sumSquares += (double) x * x;
            }
        }
        double expected = Math.sqrt(sumSquares);
        double norm = GradientClipping.clipByGlobalNorm(grads, 1.5);
        assertThat(norm).isCloseTo(expected, within(expected * 1e-12));
        assertThat(GradientClipping.globalNorm(grads)).isCloseTo(1.5, within(1e-5));
    }

    @Test
    void nonFiniteNormLeavesGradientsAlone() {
        float[] a = {1f, Float.NaN, 2f}, b = {Float.POSITIVE_INFINITY};
        assertThat(GradientClipping.clipByGlobalNorm(List.of(a), 1.0)).isNaN();
        assertThat(a[0]).isEqualTo(1f);
        assertThat(GradientClipping.clipByGlobalNorm(List.of(b), 1.0)).isInfinite();
    }

    @Test
    void normDoesNotDependOnThreadCount() throws Exception {
        List<float[]> grads = List.of(randomFloats(5, 100_003, 1f), randomFloats(6, 77, 1f));
        Callable<Double> norm = () -> GradientClipping.globalNorm(grads);
        assertThat(GradCheck.inPool(6, norm)).isEqualTo(GradCheck.inPool(1, norm));
    }
}
