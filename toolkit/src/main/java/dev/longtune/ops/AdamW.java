package dev.longtune.ops;

import java.util.stream.IntStream;

/**
 * AdamW (Loshchilov and Hutter 2019), as {@code torch.optim.AdamW} computes it with bias correction:
 * <pre>
 *   m = β1·m + (1 − β1)·g
 *   v = β2·v + (1 − β2)·g²
 *   m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
 *   θ = θ − lr · (m̂ / (√v̂ + eps) + λ·θ)
 * </pre>
 * Weight decay is decoupled: it shrinks θ directly (by lr·λ·θ, θ before this step) instead of being added
 * to the gradient, so it never passes through m and v. The state m and v is fp32, shaped like the
 * parameters; t counts steps from 1.
 *
 * <p>The arithmetic is arranged as in {@code torch.optim.AdamW}'s single-tensor path: the hyperparameters
 * are doubles and every coefficient built from them ({@code 1 − β}, {@code 1 − lr·λ}, {@code lr / (1 − β1^t)},
 * {@code √(1 − β2^t)}) is computed in double and rounded once to float, as PyTorch does with its Python
 * floats; then {@code θ ·= 1 − lr·λ}, the moments, and {@code θ −= lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)}.
 * (PyTorch updates m as {@code m.lerp_(g, 1 − β1)}; here it is {@code β1·m + (1 − β1)·g}, equal up to rounding.
 * Computing {@code 1 − β2} from a float β2 = 0.999f instead of the double 0.999 would be off by 1e-5 relative.)
 *
 * <p>Element-wise, so the flat parameter array is cut into fixed chunks updated in parallel; the result does
 * not depend on the number of threads. The range overload updates one view of a parameter arena, so that
 * parameters exempt from weight decay (norm weights, biases) can be stepped with λ = 0.
 */
public final class AdamW {
    private AdamW() {}

    static final int CHUNK = 1 << 14;

    // params, grads, m, v are (P) each
    public static void step(float[] params, float[] grads, float[] m, float[] v, double lr, double beta1, double beta2,
                            double eps, double weightDecay, int t) {
        step(params, grads, m, v, 0, params.length, lr, beta1, beta2, eps, weightDecay, t);
    }

    /** Updates elements [offset, offset + length) only. */
    // params, grads, m, v are (P) each, the range within [0, P)
    public static void step(float[] params, float[] grads, float[] m, float[] v, int offset, int length, double lr,
                            double beta1, double beta2, double eps, double weightDecay, int t) {
        if (t < 1) {
            throw new IllegalArgumentException("AdamW counts steps from 1 (bias correction divides by 1 − β^t); got t = " + t);
        }
        if (offset < 0 || length < 0 || offset + length > params.length || grads.length < offset + length
                || m.length < offset + length || v.length < offset + length) {
            throw new IllegalArgumentException("range [" + offset + ", " + (offset + length) + ") does not fit params ("
                    + params.length + "), grads (" + grads.length + "), m (" + m.length + ") and v (" + v.length + ")");
        }
        float decay = (float) (1 - lr * weightDecay);
        float b1 = (float) beta1, oneMinusB1 = (float) (1 - beta1);
        float b2 = (float) beta2, oneMinusB2 = (float) (1 - beta2);
        float stepSize = (float) (lr / (1 - Math.pow(beta1, t)));
        float sqrtCorrection2 = (float) Math.sqrt(1 - Math.pow(beta2, t));
        float epsilon = (float) eps;
        int chunks = (length + CHUNK - 1) / CHUNK;
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int from = offset + c * CHUNK;
            int to = Math.min(offset + length, from + CHUNK);
            for (int i = from; i < to; i++) {
                float g = grads[i];
                float mi = b1 * m[i] + oneMinusB1 * g;
                float vi = b2 * v[i] + oneMinusB2 * g * g;
                m[i] = mi;
                v[i] = vi;
                float denominator = (float) Math.sqrt(vi) / sqrtCorrection2 + epsilon;
                params[i] = params[i] * decay - stepSize * (mi / denominator);
            }
        });
    }
}
