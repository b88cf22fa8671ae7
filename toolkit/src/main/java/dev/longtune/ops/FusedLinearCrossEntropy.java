package dev.longtune.ops;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The LM head and the cross-entropy loss fused, after Liger-Kernel's {@code fused_linear_cross_entropy}: the
 * (N, V) logits never exist. Tokens are taken a chunk at a time; for a chunk of c tokens the (c, V) logits
 * are computed, turned into the loss and, in place, into the logit gradient, which is at once pushed through
 * the head into {@code dhidden} and {@code dweight}. The backward therefore runs during the forward and
 * nothing is saved for a later pass: the only scratch is c·V floats, reused chunk after chunk.
 *
 * <p>{@code loss = (1/n) Σ_valid (logsumexp(z_t) − z_t[label_t])}, {@code z_t = W · h_t}, n the number of
 * tokens whose label is not {@link #IGNORE_INDEX}. With {@code p = softmax(z_t)}:
 * {@code dz_t = (p − onehot(label_t)) / n}, {@code dh_t += Wᵀ dz_t}, {@code dW += Σ_t dz_t ⊗ h_t}.
 * Ignored tokens contribute nothing: their logits are not even computed (the chunks are cut from the list of
 * valid tokens), and when no token is valid the loss is 0 and no gradient is touched.
 *
 * <p>fp32 for the matrix products (logits, dhidden, dweight) with fp32 accumulators; the per-token
 * log-sum-exp and the loss sum are scalars and are reduced in double. Parallel over blocks of vocabulary rows
 * (logits, dweight), tokens (softmax) and hidden channels (dhidden); every sum runs in a fixed order, so
 * results do not depend on the number of threads.
 */
public final class FusedLinearCrossEntropy {
    private FusedLinearCrossEntropy() {}

    /** The label that marks a token as not trained on (prompt, padding), as in PyTorch and Hugging Face. */
    public static final int IGNORE_INDEX = -100;

    static final int VOCAB_BLOCK = 64;
    static final int HIDDEN_BLOCK = 128;

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
    // scratch: chunkSize·V floats of logits
    public static double forwardBackward(float[] dhidden, float[] dweight, float[] hidden, float[] weight,
                                         int[] labels, int N, int H, int V, int chunkSize) {
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
        float scale = 1f / valid;
        int chunk = Math.min(chunkSize, valid);
        float[] logits = new float[chunk * V];
        double[] tokenLoss = new double[chunk];
        double lossSum = 0.0;
        for (int start = 0; start < valid; start += chunk) {
            int rows = Math.min(chunk, valid - start);
            int first = start;
            logits(logits, hidden, weight, validTokens, first, rows, H, V);
            IntStream.range(0, rows).parallel().forEach(r ->
                    tokenLoss[r] = lossAndLogitGradient(logits, r * V, labels[validTokens[first + r]], V, scale));
            for (int r = 0; r < rows; r++) {
                lossSum += tokenLoss[r];
            }
            if (dhidden != null) {
                hiddenGradient(dhidden, logits, weight, validTokens, first, rows, H, V);
            }
            if (dweight != null) {
                weightGradient(dweight, logits, hidden, validTokens, first, rows, H, V);
            }
        }
        return lossSum / valid;
    }

    // logits[r, v] = hidden[token r] · weight[v]; logits is (rows, V)
    private static void logits(float[] logits, float[] hidden, float[] weight, int[] tokens, int first, int rows,
                               int H, int V) {
        int blocks = (V + VOCAB_BLOCK - 1) / VOCAB_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(b -> {
            int vEnd = Math.min(V, (b + 1) * VOCAB_BLOCK);
            for (int v = b * VOCAB_BLOCK; v < vEnd; v++) {
                int w = v * H;
                int r = 0;
                // four tokens at a time: four independent sums share each weight load (each sum still runs
                // over h in order, so the result is the same as one token at a time)
                for (; r + 4 <= rows; r += 4) {
                    int h0 = tokens[first + r] * H, h1 = tokens[first + r + 1] * H;
                    int h2 = tokens[first + r + 2] * H, h3 = tokens[first + r + 3] * H;
                    float d0 = 0f, d1 = 0f, d2 = 0f, d3 = 0f;
                    for (int h = 0; h < H; h++) {
                        float wh = weight[w + h];
                        d0 += hidden[h0 + h] * wh;
                        d1 += hidden[h1 + h] * wh;
                        d2 += hidden[h2 + h] * wh;
                        d3 += hidden[h3 + h] * wh;
                    }
                    logits[r * V + v] = d0;
                    logits[(r + 1) * V + v] = d1;
                    logits[(r + 2) * V + v] = d2;
                    logits[(r + 3) * V + v] = d3;
                }
                for (; r < rows; r++) {
                    int h0 = tokens[first + r] * H;
                    float dot = 0f;
                    for (int h = 0; h < H; h++) {
                        dot += hidden[h0 + h] * weight[w + h];
                    }
                    logits[r * V + v] = dot;
                }
            }
        });
    }

    /** Returns the token's loss and overwrites its logits with {@code (softmax − onehot(label)) · scale}. */
    private static double lossAndLogitGradient(float[] logits, int row, int label, int V, float scale) {
        float max = Float.NEGATIVE_INFINITY;
        for (int v = row; v < row + V; v++) {
            max = Math.max(max, logits[v]);
        }
        double sumExp = 0.0;
        for (int v = row; v < row + V; v++) {
            sumExp += Math.exp(logits[v] - max);
        }
        double logSumExp = max + Math.log(sumExp);
        double loss = logSumExp - logits[row + label];
        for (int v = row; v < row + V; v++) {
            logits[v] = (float) Math.exp(logits[v] - logSumExp) * scale;
        }
        logits[row + label] -= scale;
        return loss;
    }

    // dhidden[token r] += Σ_v dlogits[r, v] · weight[v]; parallel over blocks of hidden channels
    private static void hiddenGradient(float[] dhidden, float[] dlogits, float[] weight, int[] tokens, int first,
                                       int rows, int H, int V) {
        int blocks = (H + HIDDEN_BLOCK - 1) / HIDDEN_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(b -> {
            int from = b * HIDDEN_BLOCK;
            int width = Math.min(H, from + HIDDEN_BLOCK) - from;
            float[] acc = new float[rows * width];
            for (int v = 0; v < V; v++) {
                int w = v * H + from;
                for (int r = 0; r < rows; r++) {
                    float d = dlogits[r * V + v];
                    int a = r * width;
                    for (int h = 0; h < width; h++) {
                        acc[a + h] += d * weight[w + h];
                    }
                }
            }
            for (int r = 0; r < rows; r++) {
                int out = tokens[first + r] * H + from;
                for (int h = 0; h < width; h++) {
                    dhidden[out + h] += acc[r * width + h];
                }
            }
        });
    }

    // dweight[v] += Σ_r dlogits[r, v] · hidden[token r]; parallel over blocks of vocabulary rows
    private static void weightGradient(float[] dweight, float[] dlogits, float[] hidden, int[] tokens, int first,
                                       int rows, int H, int V) {
        int blocks = (V + VOCAB_BLOCK - 1) / VOCAB_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(b -> {
            float[] acc = new float[H];
            int vEnd = Math.min(V, (b + 1) * VOCAB_BLOCK);
            for (int v = b * VOCAB_BLOCK; v < vEnd; v++) {
                Arrays.fill(acc, 0f);
                for (int r = 0; r < rows; r++) {
                    float d = dlogits[r * V + v];
                    int h0 = tokens[first + r] * H;
                    for (int h = 0; h < H; h++) {
                        acc[h] += d * hidden[h0 + h];
                    }
                }
                int w = v * H;
                for (int h = 0; h < H; h++) {
                    dweight[w + h] += acc[h];
                }
            }
        });
    }
}
