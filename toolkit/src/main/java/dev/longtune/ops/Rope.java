package dev.longtune.ops;

import java.util.stream.IntStream;

/**
 * Rotary position embedding (Su et al. 2021) in the Hugging Face {@code rotate_half} layout, with the Llama 3
 * frequency scaling ({@code rope_type: "llama3"}).
 *
 * <p>For a head vector x of size D and half = D/2, pair i is (x[i], x[i + half]) and turns by the angle
 * {@code a = position · inv_freq[i]}:
 * <pre>
 *   y[i]        = x[i] · cos a − x[i + half] · sin a
 *   y[i + half] = x[i + half] · cos a + x[i] · sin a
 * </pre>
 * which is HF's {@code x · cos + rotate_half(x) · sin}. Positions are given per token, so a packed sequence
 * whose positions restart at 0 for every document is rotated exactly as the documents would be one by one.
 *
 * <p>Forward rotates q and k in place. Backward is the transposed (inverse) rotation, by −a, applied <b>in
 * place</b> to the incoming gradient: on entry {@code dq}, {@code dk} hold the gradient with respect to the
 * rotated q, k; on return, with respect to q, k before rotation. It therefore overwrites, it does not add:
 * rotation is linear and the gradient buffer of the rotated q/k has no other reader, so this costs no extra
 * buffer. Nothing is saved by forward: cos and sin are recomputed per token from the positions (D/2 of each,
 * shared by all heads of the token) in both passes.
 *
 * <p>Precision: inv_freq is kept in double and the angle {@code position · inv_freq} and its cos/sin are
 * computed in double, then rounded to float for the rotation. HF computes the angle in fp32, whose error
 * grows with the position (about 1e-2 rad at position 131072 for inv_freq near 1); here it stays at float
 * rounding of cos/sin.
 */
public final class Rope {
    private Rope() {}

    /**
     * Llama 3 rope scaling, as in a Hugging Face config's {@code rope_scaling} with {@code rope_type: "llama3"}.
     */
    public record Llama3Scaling(double factor, double lowFreqFactor, double highFreqFactor,
                                int originalMaxPositionEmbeddings) {
        /** Llama 3.1 / 3.2 / 3.3: factor 8, low_freq_factor 1, high_freq_factor 4, original 8192 positions. */
        public static final Llama3Scaling LLAMA_3_1 = new Llama3Scaling(8.0, 1.0, 4.0, 8192);

        public Llama3Scaling {
            if (!(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)
                    || originalMaxPositionEmbeddings <= 0) {
                throw new IllegalArgumentException("llama3 rope scaling needs factor > 0, 0 < low_freq_factor"
                        + " < high_freq_factor and original_max_position_embeddings > 0; got factor " + factor
                        + ", low " + lowFreqFactor + ", high " + highFreqFactor + ", original "
                        + originalMaxPositionEmbeddings);
            }
        }
    }

    /**
     * {@code inv_freq[i] = theta^(−2i/D)} for i in [0, D/2), then, when {@code scaling} is not null, the Llama 3
     * rescaling (HF {@code _compute_llama3_parameters}): with {@code wavelen = 2π / inv_freq} and
     * {@code orig} the original context, frequencies with wavelen &lt; orig/high_freq_factor are kept, those
     * with wavelen &gt; orig/low_freq_factor are divided by factor, and those between are blended:
     * {@code s = (orig/wavelen − low)/(high − low)}, {@code inv = (1 − s)·inv/factor + s·inv}.
     */
    // returns inv_freq (D/2)
    public static double[] inverseFrequencies(int headDim, double theta, Llama3Scaling scaling) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("rope needs an even head dimension, got " + headDim);
        }
        int half = headDim / 2;
        double[] invFreq = new double[half];
        for (int i = 0; i < half; i++) {
            double inv = Math.pow(theta, -2.0 * i / headDim);
            if (scaling != null) {
                double orig = scaling.originalMaxPositionEmbeddings();
                double lowFreqWavelen = orig / scaling.lowFreqFactor();
                double highFreqWavelen = orig / scaling.highFreqFactor();
                double wavelen = 2 * Math.PI / inv;
                if (wavelen > lowFreqWavelen) {
                    inv = inv / scaling.factor();
                } else if (wavelen >= highFreqWavelen) {
                    double smooth = (orig / wavelen - scaling.lowFreqFactor())
                            / (scaling.highFreqFactor() - scaling.lowFreqFactor());
                    inv = (1 - smooth) * inv / scaling.factor() + smooth * inv;
                }
            }
            invFreq[i] = inv;
        }
        return invFreq;
    }

    /** Rotates q and k in place; {@code k} may be null to rotate q alone (then Hkv is ignored). */
    // q is (T, Hq, D), k (T, Hkv, D), positions (T), invFreq (D/2)
    public static void forward(float[] q, float[] k, int[] positions, double[] invFreq, int T, int Hq, int Hkv, int D) {
        rotate(q, k, positions, invFreq, T, Hq, Hkv, D, 1.0);
    }

    /**
     * In place: turns dq, dk (gradients with respect to the rotated q, k) into the gradients with respect to
     * the q, k that went into {@link #forward} by rotating them back by −angle. Overwrites; does not add.
     * {@code dk} may be null.
     */
    // dq is (T, Hq, D), dk (T, Hkv, D), positions (T), invFreq (D/2)
    public static void backward(float[] dq, float[] dk, int[] positions, double[] invFreq, int T, int Hq, int Hkv, int D) {
        // the rotation is orthogonal: its transpose is the rotation by −angle; cos/sin are recomputed, not saved
        rotate(dq, dk, positions, invFreq, T, Hq, Hkv, D, -1.0);
    }

    private static void rotate(float[] q, float[] k, int[] positions, double[] invFreq, int T, int Hq, int Hkv,
                               int D, double direction) {
        int half = D / 2;
        if (invFreq.length != half) {
            throw new IllegalArgumentException("inv_freq has " + invFreq.length + " entries, head dimension " + D
                    + " needs D/2 = " + half);
        }
        if (positions.length < T) {
            throw new IllegalArgumentException("positions has " + positions.length + " entries for " + T + " tokens");
        }
        IntStream.range(0, T).parallel().forEach(t -> {
            float[] cos = new float[half];
            float[] sin = new float[half];
            double position = positions[t];
            for (int i = 0; i < half; i++) {
                double angle = position * invFreq[i];
                cos[i] = (float) Math.cos(angle);
                sin[i] = (float) (direction * Math.sin(angle));
            }
            rotateToken(q, t * Hq * D, Hq, D, cos, sin);
            if (k != null) {
                rotateToken(k, t * Hkv * D, Hkv, D, cos, sin);
            }
        });
    }

    private static void rotateToken(float[] x, int base, int heads, int D, float[] cos, float[] sin) {
        int half = D / 2;
        for (int h = 0; h < heads; h++) {
            int head = base + h * D;
            for (int i = 0; i < half; i++) {
                float x1 = x[head + i];
                float x2 = x[head + i + half];
                x[head + i] = x1 * cos[i] - x2 * sin[i];
                x[head + i + half] = x2 * cos[i] + x1 * sin[i];
            }
        }
    }
}
