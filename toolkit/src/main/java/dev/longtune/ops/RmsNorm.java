package dev.longtune.ops;

import java.util.stream.IntStream;

/**
 * RMSNorm (Zhang and Sennrich 2019, as in Llama): {@code y = x / sqrt(mean(x²) + eps) · w}, per row.
 *
 * <p>Forward saves only {@code rstd = 1 / sqrt(mean(x²) + eps)}, one float per row. Backward takes the input
 * {@code x} (already kept as the layer's input) and {@code rstd}, and recomputes the normalised row
 * {@code x̂ = x · rstd} instead of saving it: one multiply per element against N·C floats of memory.
 *
 * <p>Gradients, with {@code g = dy · w}:
 * {@code dx = rstd · (g − x̂ · mean(g · x̂))}, {@code dw = Σ_rows dy · x̂}.
 *
 * <p>fp32 throughout. Rows run in parallel; {@code dw} is reduced deterministically: rows are split into a
 * number of blocks that depends only on N, each block sums into its own partial row, and the partials are
 * added in block order, so the result does not depend on the number of threads.
 */
public final class RmsNorm {
    private RmsNorm() {}

    /** Upper bound on the row blocks whose partial {@code dw} rows are kept: bounds the scratch to 64·C floats. */
    static final int PARTIAL_BLOCKS = 64;

    // inp is (N, C), weight (C), out (N, C), rstd (N)
    public static void forward(float[] out, float[] rstd, float[] inp, float[] weight, int N, int C, float eps) {
        IntStream.range(0, N).parallel().forEach(n -> {
            int row = n * C;
            float sumSquares = 0f;
            for (int c = 0; c < C; c++) {
                float x = inp[row + c];
                sumSquares += x * x;
            }
            float r = (float) (1.0 / Math.sqrt(sumSquares / C + eps));
            rstd[n] = r;
            for (int c = 0; c < C; c++) {
                out[row + c] = (inp[row + c] * r) * weight[c];
            }
        });
    }

    /**
     * Adds into {@code dinp} and {@code dweight}; either may be null when that gradient is not wanted (a
     * frozen norm weight under LoRA, say).
     */
    // dout is (N, C), inp (N, C), weight (C), rstd (N) as saved by forward; dinp (N, C) +=, dweight (C) +=
    public static void backward(float[] dinp, float[] dweight, float[] dout, float[] inp, float[] weight,
                                float[] rstd, int N, int C) {
        if (N == 0) {
            return;
        }
        int blocks = Math.min(N, PARTIAL_BLOCKS);
        float[] partial = dweight == null ? null : new float[blocks * C];
        IntStream.range(0, blocks).parallel().forEach(b -> {
            int from = (int) ((long) N * b / blocks);
            int to = (int) ((long) N * (b + 1) / blocks);
            int partialRow = b * C;
            for (int n = from; n < to; n++) {
                int row = n * C;
                float r = rstd[n];
                // x̂ = x · rstd is recomputed here (twice per row) rather than saved by forward
                float dot = 0f;
                for (int c = 0; c < C; c++) {
                    float xhat = inp[row + c] * r;
                    dot += dout[row + c] * weight[c] * xhat;
                }
                float meanDot = dot / C;
                for (int c = 0; c < C; c++) {
                    float xhat = inp[row + c] * r;
                    float dy = dout[row + c];
                    if (dinp != null) {
                        dinp[row + c] += r * (dy * weight[c] - xhat * meanDot);
                    }
                    if (partial != null) {
                        partial[partialRow + c] += dy * xhat;
                    }
                }
            }
        });
        if (dweight != null) {
            for (int c = 0; c < C; c++) {
                float sum = 0f;
                for (int b = 0; b < blocks; b++) {
                    sum += partial[b * C + c];
                }
                dweight[c] += sum;
            }
        }
    }
}
