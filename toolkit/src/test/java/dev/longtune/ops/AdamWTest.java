package dev.longtune.ops;

import dev.longtune.ops.reference.AdamWReference;
import org.junit.jupiter.api.Test;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class AdamWTest {
    static final double LR = 1e-3, BETA1 = 0.9, BETA2 = 0.95, EPS = 1e-8, DECAY = 0.1;

    @Test
    void matchesReferenceOverThreeSteps() {
        int p = 3 * 37 * 131 * 3; // 43623: several parallel chunks, the last one partial
        float[] params = randomFloats(1, p, 1f), m = new float[p], v = new float[p];
        double[] refParams = toDouble(params), refM = new double[p], refV = new double[p];
        for (int t = 1; t <= 3; t++) {
            float[] grads = randomFloats(10 + t, p, 0.5f);
            AdamW.step(params, grads, m, v, LR, BETA1, BETA2, EPS, DECAY, t);
            AdamWReference.step(refParams, toDouble(grads), refM, refV, LR, BETA1, BETA2, EPS, DECAY, t);
        }
        assertClose(params, refParams, 1e-6, "params after 3 steps");
        assertClose(m, refM, 1e-6, "m after 3 steps");
        assertClose(v, refV, 1e-6, "v after 3 steps");
        // the update itself (params minus their start), so that 1e-6 is not hidden by the parameters' size
        float[] start = randomFloats(1, p, 1f);
        double[] update = new double[p], refUpdate = new double[p];
        for (int i = 0; i < p; i++) {
            update[i] = (double) params[i] - start[i];
            refUpdate[i] = refParams[i] - start[i];
        }
        // measured 6e-5: θ near 1 is stored to 6e-8 (half an fp32 ulp) per step, against an update of about 3e-3
        assertClose(update, refUpdate, 2e-4, "update after 3 steps");
    }

    /**
     * θ = (1, −2), g = (0.5, −0.25), lr 0.1, β1 0.9, β2 0.999, eps 1e-8, λ 0.01, t = 1:
     * m = 0.1·g = (0.05, −0.025), v = 0.001·g² = (2.5e-4, 6.25e-5); bias correction gives m̂ = g, v̂ = g², so
     * m̂/(√v̂ + eps) = (0.5/(0.5 + 1e-8), −0.25/(0.25 + 1e-8)) = (0.99999998, −0.99999996);
     * θ = θ − 0.1·(that + 0.01·θ) = (1 − 0.1·1.00999998, −2 − 0.1·(−1.01999996)) = (0.899000002, −1.898000004).
     */
    @Test
    void firstStepByHand() {
        float[] params = {1f, -2f}, grads = {0.5f, -0.25f}, m = new float[2], v = new float[2];
        AdamW.step(params, grads, m, v, 0.1, 0.9, 0.999, 1e-8, 0.01, 1);
        assertThat(m[0]).isCloseTo(0.05f, within(1e-8f));
        assertThat(m[1]).isCloseTo(-0.025f, within(1e-8f));
        assertThat(v[0]).isCloseTo(2.5e-4f, within(1e-10f));
        assertThat(v[1]).isCloseTo(6.25e-5f, within(1e-11f));
        assertThat((double) params[0]).isCloseTo(0.899000002, within(1e-7));
        assertThat((double) params[1]).isCloseTo(-1.898000004, within(2e-7));
        double[] ref = {1, -2};
        AdamWReference.step(ref, new double[] {0.5, -0.25}, new double[2], new double[2], 0.1, 0.9, 0.999, 1e-8, 0.01, 1);
        assertThat(ref[0]).isCloseTo(0.899000002, within(1e-12));
        assertThat(ref[1]).isCloseTo(-1.898000004, within(1e-12));
    }

    @Test
    void weightDecayIsDecoupledFromTheMoments() {
        // a zero gradient leaves m and v at zero; only the decay moves θ, by lr·λ·θ
        float[] params = {2f}, m = new float[1], v = new float[1];
        AdamW.step(params, new float[] {0f}, m, v, 0.1, 0.9, 0.999, 1e-8, 0.5, 1);
        assertThat(m[0]).isZero();
        assertThat(v[0]).isZero();
        assertThat(params[0]).isCloseTo(2f - 0.1f * 0.5f * 2f, within(1e-7f));
    }

    @Test
    void rangeOverloadTouchesOnlyItsRange() {
        int p = 101;
        float[] params = randomFloats(1, p, 1f), grads = randomFloats(2, p, 1f), m = new float[p], v = new float[p];
        float[] before = params.clone();
        AdamW.step(params, grads, m, v, 30, 41, LR, BETA1, BETA2, EPS, DECAY, 1);
        for (int i = 0; i < p; i++) {
            boolean inside = i >= 30 && i < 71;
            assertThat(params[i] != before[i]).as("element " + i + " changed").isEqualTo(inside);
            assertThat(m[i] != 0f).as("m " + i + " set").isEqualTo(inside);
        }
    }

    @Test
    void rejectsStepZero() {
        assertThatThrownBy(() -> AdamW.step(new float[1], new float[1], new float[1], new float[1], LR, BETA1, BETA2, EPS,
                DECAY, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("from 1");
    }
}
