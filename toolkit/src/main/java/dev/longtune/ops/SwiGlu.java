package dev.longtune.ops;

import java.util.stream.IntStream;

/**
 * SwiGLU gate of the Llama MLP (Shazeer 2020): {@code out = silu(gate) · up}, with
 * {@code silu(g) = g · σ(g)}, element by element.
 *
 * <p>Forward saves nothing beyond its inputs gate and up (which the down projection's backward does not
 * need, but this backward does). Backward recomputes σ(gate) and silu(gate) from gate: one exp per element
 * against keeping an (N, F) silu activation.
 *
 * <p>Gradients: {@code dup = dout · silu(g)},
 * {@code dgate = dout · up · σ(g) · (1 + g · (1 − σ(g)))}. fp32; rows in parallel, element-wise so
 * deterministic.
 */
public final class SwiGlu {
    private SwiGlu() {}

    // gate is (N, F), up (N, F), out (N, F)
    public static void forward(float[] out, float[] gate, float[] up, int N, int F) {
        IntStream.range(0, N).parallel().forEach(n -> {
            int row = n * F;
            for (int f = row; f < row + F; f++) {
                float g = gate[f];
                float sigmoid = sigmoid(g);
                out[f] = g * sigmoid * up[f];
            }
        });
    }

    /** Adds into dgate and dup. */
    // dout is (N, F), gate (N, F), up (N, F); dgate (N, F) +=, dup (N, F) +=
    public static void backward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int N, int F) {
        IntStream.range(0, N).parallel().forEach(n -> {
            int row = n * F;
            for (int f = row; f < row + F; f++) {
                // σ(gate) and silu(gate) are recomputed here rather than saved by forward
                float g = gate[f];
                float sigmoid = sigmoid(g);
                float silu = g * sigmoid;
                float dy = dout[f];
                dup[f] += dy * silu;
                dgate[f] += dy * up[f] * sigmoid * (1f + g * (1f - sigmoid));
            }
        });
    }

    private static float sigmoid(float x) {
        // 1 / (1 + e^−x) is exact enough and finite for all x: e^−x → ∞ gives 0, e^−x → 0 gives 1
        return (float) (1.0 / (1.0 + Math.exp(-x)));
    }
}
