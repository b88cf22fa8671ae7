package dev.longtune.ops;

import java.util.stream.IntStream;

/**
 * Token embedding lookup: {@code out[t] = table[ids[t]]}.
 *
 * <p>Backward scatters: {@code dtable[ids[t]] += dout[t]}. A token id that repeats adds several rows into
 * the same table row, so the additions are ordered: the channels are split into blocks that run in
 * parallel, and inside a block the tokens are added in order t = 0, 1, …, T−1. Every element of dtable
 * therefore receives its additions in token order whatever the number of threads, and the result equals the
 * serial loop bit for bit. Nothing is saved by forward; backward needs only the ids.
 */
public final class Embedding {
    private Embedding() {}

    /** Channels per parallel block in backward. */
    static final int CHANNEL_BLOCK = 256;

    // ids is (T) with entries in [0, V), table (V, C), out (T, C)
    public static void forward(float[] out, int[] ids, float[] table, int T, int C) {
        int V = table.length / C;
        IntStream.range(0, T).parallel().forEach(t -> {
            int id = checkId(ids, t, V);
            System.arraycopy(table, id * C, out, t * C, C);
        });
    }

    /** Adds into dtable; deterministic for repeated ids (token order within every element). */
    // dout is (T, C), ids (T); dtable (V, C) +=
    public static void backward(float[] dtable, float[] dout, int[] ids, int T, int C) {
        int V = dtable.length / C;
        for (int t = 0; t < T; t++) {
            checkId(ids, t, V);
        }
        int blocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
        IntStream.range(0, blocks).parallel().forEach(b -> {
            int from = b * CHANNEL_BLOCK;
            int to = Math.min(C, from + CHANNEL_BLOCK);
            for (int t = 0; t < T; t++) {
                int tableRow = ids[t] * C;
                int gradRow = t * C;
                for (int c = from; c < to; c++) {
                    dtable[tableRow + c] += dout[gradRow + c];
                }
            }
        });
    }

    private static int checkId(int[] ids, int t, int V) {
        int id = ids[t];
        if (id < 0 || id >= V) {
            throw new IllegalArgumentException("token id " + id + " at position " + t
                    + " is outside the embedding table's " + V + " rows");
        }
        return id;
    }
}
