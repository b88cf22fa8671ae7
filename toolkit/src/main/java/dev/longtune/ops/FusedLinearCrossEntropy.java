package dev.longtune.ops;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The LM head and the cross-entropy loss fused, after Liger-Kernel's {@code fused_linear_cross_entropy}: the
 * (N, V) logits never exist. Tokens are taken a chunk at a time; for a chunk of c tokens the (c, V) logits
 * are computed, turned into the loss and, in place, into the logit gradient, which is at once pushed through
 * the head into {@code dhidden} and {@code dweight}. The backward therefore runs during the forward and
 * nothing is saved for a later pass: the scratch is the chunk's c·V logits, reused chunk after chunk, and its
 * c·H gathered hidden rows and hidden gradient.
 *
 * <p>{@code loss = (1/n) Σ_valid (logsumexp(z_t) − z_t[label_t])}, {@code z_t = W · h_t}, n the number of
 * tokens whose label is not {@link #IGNORE_INDEX}. With {@code p = softmax(z_t)}:
 * {@code dz_t = (p − onehot(label_t)) / n}, {@code dh_t += Wᵀ dz_t}, {@code dW += Σ_t dz_t ⊗ h_t}.
 * Ignored tokens contribute nothing: their logits are not even computed (the chunks are cut from the list of
 * valid tokens), and when no token is valid the loss is 0 and no gradient is touched.
 *
 * <p>The three matrix products of a chunk go through {@link Gemm} (OpenBLAS, fp32 with fp32 accumulation):
 * logits {@code Z = H_c · Wᵀ}, {@code dH_c = dZ · W} (scattered back into the chunk's rows of {@code dhidden})
 * and {@code dW += dZᵀ · H_c} (beta = 1, straight into {@code dweight}). The per-token log-sum-exp and the
 * loss sum are reduced in double, in Java, parallel over tokens, each token on its own. The results do not
 * depend on the Java threads, and a call repeated gives the same bits; OpenBLAS chooses its kernels (and with
 * them the order of a sum) from the shape of a product and its own thread count, so a different chunk size
 * moves the results by fp32 rounding.
 */
public final class FusedLinearCrossEntropy {
    private FusedLinearCrossEntropy() {}

    /** The label that marks a token as not trained on (prompt, padding), as in PyTorch and Hugging Face. */
    public static final int IGNORE_INDEX = -100;

    /**
     * The GPU device's chunk (cuda/CudaDevice): as many token rows as keep FP32 logits plus compute-precision
     * dlogits under 1 GiB, a multiple of 128 when that many fit. Liger bounds the chunk by the hidden size
     * instead; at a 128K vocabulary and 128K tokens that is 4,096 rows, 1 GiB of bf16 logits alone.
     */
    public static int gpuChunkRows(long n, long v, int elementBytes) { return gpuChunkRows(n, v, elementBytes, 1L << 30); }

    /** The same within {@code budget} bytes instead of 1 GiB (at least one row). */
    public static int gpuChunkRows(long n, long v, int elementBytes, long budget) {
        long perRow = v * (4 + elementBytes);
        long rows = Math.max(1, budget / perRow);
        if (rows >= 128) {
            rows = rows / 128 * 128;
        }
        return (int) Math.min(n, rows);
    }

    /**
     * Liger's choice of chunk: the smallest power of two at least {@code N / ceil(V / H)}, so that a chunk's
     * logits (chunk·V) take about as much memory as the hidden states (N·H).
     */
    public static int defaultChunkSize(int N, int H, int V) {
        int increase = (V + H - 1) / H;
        int rows = Math.max(1, (N + increase - 1) / increase);
        return Integer.highestOneBit(rows) == rows ? rows : Integer.highestOneBit(rows) << 1;
    }

    /**
     * Returns the mean cross-entropy over valid tokens and adds its gradients into {@code dhidden} and
     * {@code dweight} (already divided by the number of valid tokens). Either gradient buffer may be null
     * when not wanted (a frozen LM head under LoRA: {@code dweight == null}).
     */
    // hidden is (N, H), weight (V, H), labels (N) in [0, V) or IGNORE_INDEX; dhidden (N, H) +=, dweight (V, H) +=;
    // scratch: chunkSize·V floats of logits, 2·chunkSize·H floats of gathered hidden rows and their gradient
    public static double forwardBackward(float[] dhidden, float[] dweight, float[] hidden, float[] weight,
                                         int[] labels, int N, int H, int V, int chunkSize) {
        return forwardBackward(dhidden, dweight, hidden, weight, labels, N, H, V, chunkSize, 1f);
    }

    /**
     * As above, with the gradients multiplied by {@code gradientScale} (loss scaling, 1/micro-batches) as
     * they are made, so no scaled copy is needed.
     */
    public static double forwardBackward(float[] dhidden, float[] dweight, float[] hidden, float[] weight,
                                         int[] labels, int N, int H, int V, int chunkSize, float gradientScale) {
        return forwardBackward(dhidden, dweight, hidden, weight, labels, N, H, V, chunkSize, gradientScale, JAVA_ROWS);
    }

    /**
     * The per-chunk step between the GEMMs: for each of {@code rows} rows of {@code logits} (rows, V) with its
     * label in [0, V), writes {@code loss[r] = logsumexp(z_r) − z_r[label_r]} and overwrites the row with
     * {@code (softmax(z_r) − onehot(label_r))·scale}. The CPU device plugs the native kernel in here.
     */
    @FunctionalInterface
    public interface LogitRows {
        void lossAndGradient(float[] logits, double[] loss, int[] labels, int rows, int V, float scale);
    }

    /** The Java {@link LogitRows}: parallel over rows, each row on its own (deterministic). */
    public static final LogitRows JAVA_ROWS = (logits, loss, labels, rows, V, scale) ->
            IntStream.range(0, rows).parallel().forEach(r ->
                    loss[r] = lossAndLogitGradient(logits, r * V, labels[r], V, scale));

    /** As above, with the row-wise softmax and loss computed by {@code logitRows}. */
    public static double forwardBackward(float[] dhidden, float[] dweight, float[] hidden, float[] weight,
                                         int[] labels, int N, int H, int V, int chunkSize, float gradientScale,
                                         LogitRows logitRows) {
        if (chunkSize <= 0) {
            throw new IllegalArgumentException("chunk size must be positive, got " + chunkSize
                    + "; defaultChunkSize(N, H, V) gives Liger's choice");
        }
        int valid = 0;
        for (int t = 0; t < N; t++) {
            int label = labels[t];
            if (label == IGNORE_INDEX) {
                continue;
            }
            if (label < 0 || label >= V) {
                throw new IllegalArgumentException("label " + label + " at token " + t + " is outside the vocabulary [0, "
                        + V + ") and is not the ignore index " + IGNORE_INDEX);
            }
            valid++;
        }
        if (valid == 0) {
            return 0.0;
        }
        int[] validTokens = new int[valid];
        for (int t = 0, i = 0; t < N; t++) {
            if (labels[t] != IGNORE_INDEX) {
                validTokens[i++] = t;
            }
        }
        // Gemm takes whole arrays as the matrices they hold: the weight and dweight must be exactly (V, H)
        float[] w = weight.length == V * H ? weight : Arrays.copyOf(weight, V * H);
        float[] dw = dweight == null || dweight.length == V * H ? dweight : new float[V * H];
        float scale = gradientScale / valid;
        int chunk = Math.min(chunkSize, valid);
        // sized for `rows` tokens exactly (Gemm again); only a last, shorter chunk gets new ones
        float[] hiddenRows = null, logits = null, hiddenGrad = null;
        int allocated = 0;
        double[] tokenLoss = new double[chunk];
        int[] chunkLabels = new int[chunk];
        double lossSum = 0.0;
        for (int start = 0; start < valid; start += chunk) {
            int rows = Math.min(chunk, valid - start);
            if (rows != allocated) {
                hiddenRows = logits = hiddenGrad = null; // let the full-chunk scratch go before the tail's
                hiddenRows = new float[rows * H];
                logits = new float[rows * V];
                hiddenGrad = dhidden == null ? null : new float[rows * H];
                allocated = rows;
            }
            for (int r = 0; r < rows; r++) {
                System.arraycopy(hidden, validTokens[start + r] * H, hiddenRows, r * H, H);
            }
            // logits (rows, V) = hiddenRows (rows, H) · weightᵀ
            Gemm.gemm(logits, hiddenRows, w, rows, V, H, false, true, 1f, 0f);
            for (int r = 0; r < rows; r++) {
                chunkLabels[r] = labels[validTokens[start + r]];
            }
            logitRows.lossAndGradient(logits, tokenLoss, chunkLabels, rows, V, scale);
            for (int r = 0; r < rows; r++) {
                lossSum += tokenLoss[r];
            }
            if (dhidden != null) {
                // hiddenGrad (rows, H) = dlogits (rows, V) · weight (V, H), added into the chunk's tokens
                Gemm.gemm(hiddenGrad, logits, w, rows, H, V, false, false, 1f, 0f);
                for (int r = 0; r < rows; r++) {
                    int out = validTokens[start + r] * H;
                    for (int h = 0; h < H; h++) {
                        dhidden[out + h] += hiddenGrad[r * H + h];
                    }
                }
            }
            if (dw != null) {
                // dweight (V, H) += dlogitsᵀ (V, rows) · hiddenRows (rows, H)
                Gemm.gemm(dw, logits, hiddenRows, V, H, rows, true, false, 1f, 1f);
            }
        }
        if (dw != dweight) {
            for (int i = 0; i < dw.length; i++) {
                dweight[i] += dw[i];
            }
        }
        return lossSum / valid;
    }

    /**
     * Returns the token's loss and overwrites its logits with {@code (softmax − onehot(label)) · scale}. One
     * exponential per logit: {@code exp(z − max)} is summed in double and kept (as a float) to be normalised.
     */
    private static double lossAndLogitGradient(float[] logits, int row, int label, int V, float scale) {
        int end = row + V;
        float max = Float.NEGATIVE_INFINITY;
        for (int v = row; v < end; v++) {
            max = Math.max(max, logits[v]);
        }
        float target = logits[row + label];
        double sumExp = 0.0;
        for (int v = row; v < end; v++) {
            double e = Math.exp(logits[v] - max);
            sumExp += e;
            logits[v] = (float) e;
        }
        double loss = max + Math.log(sumExp) - target;
        double norm = scale / sumExp;
        for (int v = row; v < end; v++) {
            logits[v] = (float) (logits[v] * norm);
        }
        logits[row + label] -= scale;
        return loss;
    }
}
