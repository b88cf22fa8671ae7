package dev.longtune.ops.reference;

/** Embedding lookup in double to check {@code ops.Embedding}: {@code out[t] = table[ids[t]]}. */
public final class EmbeddingReference {
    private EmbeddingReference() {}

    // ids is (T), table (V, C), out (T, C)
    public static void forward(double[] out, int[] ids, double[] table, int T, int C) {
        for (int t = 0; t < T; t++) {
            for (int c = 0; c < C; c++) {
                out[t * C + c] = table[ids[t] * C + c];
            }
        }
    }

    // dout is (T, C), ids (T); dtable (V, C) +=
    public static void backward(double[] dtable, double[] dout, int[] ids, int T, int C) {
        for (int t = 0; t < T; t++) {
            for (int c = 0; c < C; c++) {
                dtable[ids[t] * C + c] += dout[t * C + c];
            }
        }
    }
}
