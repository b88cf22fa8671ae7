package dev.longtune.ops;

import java.util.List;
import java.util.stream.IntStream;

/**
 * Clipping by the global L2 norm, as {@code torch.nn.utils.clip_grad_norm_}: the norm is taken over all
 * gradients together, {@code ‖g‖ = sqrt(Σ_arrays Σ_i g_i²)}, and when it exceeds {@code maxNorm} every
 * gradient is scaled in place by {@code maxNorm / (‖g‖ + 1e-6)} (PyTorch's epsilon).
 *
 * <p>The sum of squares is accumulated in double: fixed chunks of each array are summed in parallel and the
 * partial sums added in array order, then chunk order, so the norm does not depend on the number of threads.
 *
 * <p>A non-finite norm (an overflowed fp16/bf16 gradient, say) is returned as it is and the gradients are
 * left untouched, so the caller can skip the step; PyTorch would instead scale every gradient by NaN.
 */
public final class GradientClipping {
    private GradientClipping() {}

    static final int CHUNK = 1 << 14;

    /** PyTorch's guard against dividing by a zero norm. */
    static final double EPSILON = 1e-6;

    // grads: any number of arrays of any lengths
    public static double globalNorm(List<float[]> grads) {
        double sumSquares = 0.0;
        for (float[] g : grads) {
            sumSquares += sumOfSquares(g);
        }
        return Math.sqrt(sumSquares);
    }

    /** Σ g², fixed chunks summed in parallel in double and added in chunk order (thread-count independent). */
    public static double sumOfSquares(float[] g) {
        int chunks = (g.length + CHUNK - 1) / CHUNK;
        double[] partial = new double[chunks];
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int to = Math.min(g.length, (c + 1) * CHUNK);
            double s = 0.0;
            for (int i = c * CHUNK; i < to; i++) {
                s += (double) g[i] * g[i];
            }
            partial[c] = s;
        });
        double sum = 0.0;
        for (double s : partial) {
            sum += s;
        }
        return sum;
    }

    /** g *= s in place, in parallel chunks. */
    public static void scale(float[] g, float s) {
        int chunks = (g.length + CHUNK - 1) / CHUNK;
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int to = Math.min(g.length, (c + 1) * CHUNK);
            for (int i = c * CHUNK; i < to; i++) {
                g[i] *= s;
            }
        });
    }

    /** Returns the global norm before clipping; scales the gradients in place when it exceeds maxNorm. */
    // grads: any number of arrays of any lengths, scaled in place
    public static double clipByGlobalNorm(List<float[]> grads, double maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("max norm must be positive, got " + maxNorm);
        }
        double norm = globalNorm(grads);
        if (!Double.isFinite(norm)) {
            return norm;
        }
        double coefficient = maxNorm / (norm + EPSILON);
        if (coefficient < 1.0) {
            float scale = (float) coefficient;
            for (float[] g : grads) {
                int chunks = (g.length + CHUNK - 1) / CHUNK;
                IntStream.range(0, chunks).parallel().forEach(c -> {
                    int to = Math.min(g.length, (c + 1) * CHUNK);
                    for (int i = c * CHUNK; i < to; i++) {
                        g[i] *= scale;
                    }
                });
            }
        }
        return norm;
    }
}
