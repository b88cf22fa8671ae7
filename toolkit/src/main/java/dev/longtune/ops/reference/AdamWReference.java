package dev.longtune.ops.reference;

/**
 * AdamW in double, in the textbook form (Loshchilov and Hutter 2019, algorithm 2, with η = lr), to check
 * {@code ops.AdamW}, which follows PyTorch's arrangement of the same formula:
 * <pre>
 *   m = β1·m + (1 − β1)·g,   v = β2·v + (1 − β2)·g²
 *   m̂ = m / (1 − β1^t),      v̂ = v / (1 − β2^t)
 *   θ = θ − lr · (m̂ / (√v̂ + eps) + λ·θ)
 * </pre>
 */
public final class AdamWReference {
    private AdamWReference() {}

    // params, grads, m, v are (P) each
    public static void step(double[] params, double[] grads, double[] m, double[] v, double lr, double beta1,
                            double beta2, double eps, double weightDecay, int t) {
        for (int i = 0; i < params.length; i++) {
            m[i] = beta1 * m[i] + (1 - beta1) * grads[i];
            v[i] = beta2 * v[i] + (1 - beta2) * grads[i] * grads[i];
            double mHat = m[i] / (1 - Math.pow(beta1, t));
            double vHat = v[i] / (1 - Math.pow(beta2, t));
            params[i] -= lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * params[i]);
        }
    }
}
