package dev.longtune.ops.reference;

/**
 * LM head plus cross-entropy in double with the full (N, V) logits, to check
 * {@code ops.FusedLinearCrossEntropy}: {@code z = hidden · Wᵀ},
 * {@code loss = (1/n) Σ_valid (log Σ_v e^{z_tv} − z_t,label)}, n the count of labels ≠ −100;
 * {@code dz = (softmax(z) − onehot) / n}, {@code dhidden = dz · W}, {@code dW = dzᵀ · hidden}.
 * With no valid label the loss is 0 and the gradients are 0.
 */
public final class CrossEntropyReference {
    private CrossEntropyReference() {}

    public static final int IGNORE_INDEX = -100;

    // hidden is (N, H), weight (V, H), labels (N); returns the mean loss over valid tokens
    public static double forward(double[] hidden, double[] weight, int[] labels, int N, int H, int V) {
        double[] logits = logits(hidden, weight, N, H, V);
        int n = validCount(labels);
        double loss = 0;
        for (int t = 0; t < N; t++) {
            if (labels[t] != IGNORE_INDEX) {
                loss += logSumExp(logits, t, V) - logits[t * V + labels[t]];
            }
        }
        return n == 0 ? 0 : loss / n;
    }

    // hidden is (N, H), weight (V, H), labels (N); dhidden (N, H) +=, dweight (V, H) +=
    public static void backward(double[] dhidden, double[] dweight, double[] hidden, double[] weight, int[] labels,
                                int N, int H, int V) {
        double[] logits = logits(hidden, weight, N, H, V);
        int n = validCount(labels);
        for (int t = 0; t < N; t++) {
            if (labels[t] == IGNORE_INDEX) {
                continue;
            }
            double lse = logSumExp(logits, t, V);
            for (int v = 0; v < V; v++) {
                double dz = (Math.exp(logits[t * V + v] - lse) - (v == labels[t] ? 1 : 0)) / n;
                for (int h = 0; h < H; h++) {
                    dhidden[t * H + h] += dz * weight[v * H + h];
                    dweight[v * H + h] += dz * hidden[t * H + h];
                }
            }
        }
    }

    private static double[] logits(double[] hidden, double[] weight, int N, int H, int V) {
        double[] z = new double[N * V];
        for (int t = 0; t < N; t++) {
            for (int v = 0; v < V; v++) {
                double s = 0;
                for (int h = 0; h < H; h++) {
                    s += hidden[t * H + h] * weight[v * H + h];
                }
                z[t * V + v] = s;
            }
        }
        return z;
    }

    private static double logSumExp(double[] z, int t, int V) {
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < V; v++) {
            max = Math.max(max, z[t * V + v]);
        }
        double s = 0;
        for (int v = 0; v < V; v++) {
            s += Math.exp(z[t * V + v] - max);
        }
        return max + Math.log(s);
    }

    private static int validCount(int[] labels) {
        int n = 0;
        for (int label : labels) {
            if (label != IGNORE_INDEX) {
                n++;
            }
        }
        return n;
    }
}
