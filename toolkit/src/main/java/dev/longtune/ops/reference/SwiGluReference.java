package dev.longtune.ops.reference;

/**
 * SwiGLU in double to check {@code ops.SwiGlu}: {@code out = g / (1 + e^−g) · u};
 * {@code d out/dg = u · (σ(g) + g σ(g)(1 − σ(g)))}, {@code d out/du = g σ(g)}.
 */
public final class SwiGluReference {
    private SwiGluReference() {}

    // gate is (N, F), up (N, F), out (N, F)
    public static void forward(double[] out, double[] gate, double[] up, int N, int F) {
        for (int i = 0; i < N * F; i++) {
            out[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
        }
    }

    // dout is (N, F), gate (N, F), up (N, F); dgate (N, F) +=, dup (N, F) +=
    public static void backward(double[] dgate, double[] dup, double[] dout, double[] gate, double[] up, int N, int F) {
        for (int i = 0; i < N * F; i++) {
            double s = 1 / (1 + Math.exp(-gate[i]));
            dgate[i] += dout[i] * up[i] * (s + gate[i] * s * (1 - s));
            dup[i] += dout[i] * gate[i] * s;
        }
    }
}
