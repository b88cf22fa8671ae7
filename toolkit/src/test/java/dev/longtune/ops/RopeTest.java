package dev.longtune.ops;

import dev.longtune.ops.reference.RopeReference;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static dev.longtune.ops.GradCheck.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class RopeTest {
    // odd on purpose: 37 tokens, 6 query heads sharing 3 key/value heads, head dimension 130 (65 pairs)
    static final int T = 37, HQ = 6, HKV = 3, D = 130;
    static final Rope.Llama3Scaling LLAMA = Rope.Llama3Scaling.LLAMA_3_1;
    final double[] invFreq = Rope.inverseFrequencies(D, 500000, LLAMA);
    final int[] positions = packedPositions(new Random(7), T, 131072);
    final float[] q = randomFloats(1, T * HQ * D, 2f);
    final float[] k = randomFloats(2, T * HKV * D, 2f);

    /**
     * Llama 3.1 (theta 500000, D 128, factor 8, low 1, high 4, original 8192): wavelengths below 8192/4 = 2048
     * are kept, above 8192/1 = 8192 divided by 8, between blended. Worked by hand, e.g. for i = 32:
     * inv = 500000^(−64/128) = 1/√500000 = 1.414213562373095e-3, wavelen = 2π√500000 = 4442.883 (medium),
     * s = (8192/4442.883 − 1)/(4 − 1) = 0.281282605, inv' = (1 − s)·inv/8 + s·inv = 5.248461609929547e-4.
     */
    @Test
    void llama3ScalingMatchesHandComputedFrequencies() {
        double[] inv = Rope.inverseFrequencies(128, 500000, LLAMA);
        assertThat(inv).hasSize(64);
        // i: 0 and 20 high frequency (wavelen 6.28, 379.4) kept: theta^(-2i/128)
        assertThat(inv[0]).isEqualTo(1.0);
        assertThat(inv[20]).isCloseTo(0.016560440080994446, within(1e-15));
        // i = 28: wavelen 1956.5 < 2048, kept
        assertThat(inv[28]).isCloseTo(0.003211445994752591, within(1e-15));
        // i = 29, 30, 32, 34: wavelen 2401.7, 2948.3, 4442.9, 6695.1, blended with s = 0.8036, 0.5928, 0.2813, 0.0745
        assertThat(inv[29]).isCloseTo(0.002166570763503359, within(1e-15));
        assertThat(inv[30]).isCloseTo(0.0013718935677611381, within(1e-15));
        assertThat(inv[32]).isCloseTo(5.248461609929547e-4, within(1e-16));
        assertThat(inv[34]).isCloseTo(1.785078127679964e-4, within(1e-16));
        // i = 35, 40, 63: wavelen 8218.7, 22910.6, 2559195.5 > 8192, divided by 8
        assertThat(inv[35]).isCloseTo(0.0007644969883171747 / 8, within(1e-17));
        assertThat(inv[40]).isCloseTo(3.428102195952591e-05, within(1e-17));
        assertThat(inv[63]).isCloseTo(3.068925988914511e-07, within(1e-19));
        // the reference, written as HF's where-masks, agrees everywhere
        assertThat(relativeError(inv, RopeReference.inverseFrequencies(128, 500000, 8, 1, 4, 8192))).isLessThan(1e-15);
    }

    @Test
    void withoutScalingFrequenciesArePowersOfTheta() {
        double[] inv = Rope.inverseFrequencies(D, 10000, null);
        for (int i = 0; i < D / 2; i++) {
            assertThat(inv[i]).isCloseTo(Math.pow(10000, -2.0 * i / D), within(1e-15));
        }
    }

    @Test
    void forwardMatchesReference() {
        float[] qr = q.clone(), kr = k.clone();
        Rope.forward(qr, kr, positions, invFreq, T, HQ, HKV, D);
        double[] refQ = new double[q.length], refK = new double[k.length];
        RopeReference.forward(refQ, toDouble(q), positions, invFreq, T, HQ, D);
        RopeReference.forward(refK, toDouble(k), positions, invFreq, T, HKV, D);
        assertClose(qr, refQ, 1e-6, "rotated q");
        assertClose(kr, refK, 1e-6, "rotated k");
    }

    @Test
    void backwardMatchesReference() {
        float[] dq = randomFloats(3, q.length, 1f), dk = randomFloats(4, k.length, 1f);
        double[] refDq = new double[q.length], refDk = new double[k.length];
        RopeReference.backward(refDq, toDouble(dq), positions, invFreq, T, HQ, D);
        RopeReference.backward(refDk, toDouble(dk), positions, invFreq, T, HKV, D);
        Rope.backward(dq, dk, positions, invFreq, T, HQ, HKV, D);
        assertClose(dq, refDq, 1e-6, "dq");
        assertClose(dk, refDk, 1e-6, "dk");
    }

    /** Backward overwrites in place (documented): it is the inverse rotation, so it undoes forward. */
    @Test
    void backwardIsInPlaceInverseOfForward() {
        float[] qr = q.clone();
        Rope.forward(qr, null, positions, invFreq, T, HQ, 0, D);
        Rope.backward(qr, null, positions, invFreq, T, HQ, 0, D);
        assertClose(qr, toDouble(q), 1e-6, "q after forward then backward");
    }

    @Test
    void referenceGradientMatchesFiniteDifferences() {
        int t = 3, h = 2, d = 6;
        int[] pos = {0, 5, 1};
        double[] inv = RopeReference.inverseFrequencies(d, 10000, 0, 0, 0, 0);
        double[] x = randomDoubles(10, t * h * d, 1.5), probe = randomDoubles(11, t * h * d, 1);
        double[] dx = new double[x.length];
        RopeReference.backward(dx, probe, pos, inv, t, h, d);
        double[] num = numericGradient(x, xv -> {
            double[] o = new double[xv.length];
            RopeReference.forward(o, xv, pos, inv, t, h, d);
            return dot(o, probe);
        }, 1e-6);
        assertClose(dx, num, 1e-8, "reference dinp vs finite differences");
    }

    @Test
    void referenceBackwardAddsIntoGradient() {
        double[] dout = toDouble(randomFloats(3, q.length, 1f));
        double[] once = new double[q.length];
        RopeReference.backward(once, dout, positions, invFreq, T, HQ, D);
        double[] twice = once.clone();
        RopeReference.backward(twice, dout, positions, invFreq, T, HQ, D);
        for (int i = 0; i < once.length; i++) {
            assertThat(twice[i]).isEqualTo(2 * once[i]);
        }
    }

    @Test
    void packedDocumentsWithRestartingPositionsMatchSeparateDocuments() {
        int[] lengths = {5, 11, 3, 18};
        int total = Arrays.stream(lengths).sum();
        int[] packedPositions = new int[total];
        for (int doc = 0, t = 0; doc < lengths.length; doc++) {
            for (int p = 0; p < lengths[doc]; p++) {
                packedPositions[t++] = p;
            }
        }
        float[] packedQ = randomFloats(30, total * HQ * D, 1f), packedK = randomFloats(31, total * HKV * D, 1f);
        float[] separateQ = packedQ.clone(), separateK = packedK.clone();
        Rope.forward(packedQ, packedK, packedPositions, invFreq, total, HQ, HKV, D);
        for (int doc = 0, start = 0; doc < lengths.length; start += lengths[doc++]) {
            int len = lengths[doc];
            float[] dq = Arrays.copyOfRange(separateQ, start * HQ * D, (start + len) * HQ * D);
            float[] dk = Arrays.copyOfRange(separateK, start * HKV * D, (start + len) * HKV * D);
            int[] pos = new int[len];
            Arrays.setAll(pos, i -> i);
            Rope.forward(dq, dk, pos, invFreq, len, HQ, HKV, D);
            System.arraycopy(dq, 0, separateQ, start * HQ * D, dq.length);
            System.arraycopy(dk, 0, separateK, start * HKV * D, dk.length);
        }
        assertThat(packedQ).containsExactly(separateQ);
        assertThat(packedK).containsExactly(separateK);
    }

    @Test
    void rejectsOddHeadDimension() {
        assertThatThrownBy(() -> Rope.inverseFrequencies(127, 10000, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("even");
    }

    /** Documents of random lengths packed together, positions restarting at 0, reaching up to maxPosition. */
    static int[] packedPositions(Random r, int T, int maxPosition) {
        int[] pos = new int[T];
        int p = r.nextInt(maxPosition - T);
        for (int t = 0; t < T; t++) {
            if (r.nextInt(8) == 0) {
                p = r.nextInt(maxPosition - T);
            }
            pos[t] = p++;
        }
        return pos;
    }
}
