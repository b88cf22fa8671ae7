package dev.longtune.ops.reference;

/**
 * Rotary position embedding in double, HF {@code rotate_half} layout, out of place, to check {@code ops.Rope}:
 * {@code y = x · cos + rotate_half(x) · sin} with {@code rotate_half(x) = (−x[half:], x[:half])} and
 * cos, sin of {@code position · inv_freq} repeated over both halves. Backward is {@code dx += Rᵀ dy}.
 */
public final class RopeReference {
    private RopeReference() {}

    /**
     * {@code theta^(−2i/D)}, then Llama 3 scaling when {@code factor > 0}
     * (HF {@code _compute_llama3_parameters}, written as there with where-masks).
     */
    // returns inv_freq (D/2)
    public static double[] inverseFrequencies(int D, double theta, double factor, double lowFreqFactor,
                                              double highFreqFactor, double originalMaxPositions) {
        double[] inv = new double[D / 2];
        for (int i = 0; i < D / 2; i++) {
            double base = 1.0 / Math.pow(theta, (2.0 * i) / D);
            if (factor <= 0) {
                inv[i] = base;
                continue;
            }
            double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
            double highFreqWavelen = originalMaxPositions / highFreqFactor;
            double wavelen = 2 * Math.PI / base;
            double llama = wavelen > lowFreqWavelen ? base / factor : base;
            double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
            double smoothed = (1 - smooth) * llama / factor + smooth * llama;
            boolean medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
            inv[i] = medium ? smoothed : llama;
        }
        return inv;
    }

    // inp is (T, H, D), positions (T), invFreq (D/2), out (T, H, D)
    public static void forward(double[] out, double[] inp, int[] positions, double[] invFreq, int T, int H, int D) {
        int half = D / 2;
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                int base = (t * H + h) * D;
                for (int d = 0; d < D; d++) {
                    double angle = positions[t] * invFreq[d % half];
                    double rotated = d < half ? -inp[base + d + half] : inp[base + d - half];
                    out[base + d] = inp[base + d] * Math.cos(angle) + rotated * Math.sin(angle);
                }
            }
        }
    }

    // dout is (T, H, D), positions (T), invFreq (D/2); dinp (T, H, D) +=
    public static void backward(double[] dinp, double[] dout, int[] positions, double[] invFreq, int T, int H, int D) {
        int half = D / 2;
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                int base = (t * H + h) * D;
                for (int d = 0; d < D; d++) {
                    // y[d] depends on x[d] through cos, and y[partner] on x[d] through ±sin
                    double angle = positions[t] * invFreq[d % half];
                    double fromPartner = d < half ? dout[base + d + half] : -dout[base + d - half];
                    dinp[base + d] += dout[base + d] * Math.cos(angle) + fromPartner * Math.sin(angle);
                }
            }
        }
    }
}
