package dev.longtune.bench;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

/** The benchmark's inputs and error measure (the GPU parts run on the GPU machine only). */
class GpuBenchTest {
    @Test
    void noiseIsSeededNeverZeroAndOfTheAskedScale() {
        float[] a = GpuBench.noise(1_000_003, 7, 2.0), b = GpuBench.noise(1_000_003, 7, 2.0);
        assertThat(java.util.Arrays.equals(a, b)).as("same seed, same noise").isTrue(); // containsExactly is quadratic
        double sum = 0, sq = 0;
        int zeros = 0;
        for (float x : a) {
            zeros += x == 0 ? 1 : 0;
            sum += x;
            sq += (double) x * x;
        }
        assertThat(zeros).isZero();
        assertThat(sum / a.length).isCloseTo(0, offset(0.01));
        assertThat(Math.sqrt(sq / a.length)).isCloseTo(2.0, offset(0.01));
        assertThat(GpuBench.noise(10, 8, 1)).isNotEqualTo(GpuBench.noise(10, 7, 1));
    }

    @Test
    void relativeErrorIsTheLargestErrorOverTheLargestReference() {
        assertThat(GpuBench.relErr(new double[] {1.0, 2.1}, new double[] {1.0, 2.0})).isCloseTo(0.05, offset(1e-12));
    }
}
