package dev.longtune.cuda;

import java.util.Arrays;

/**
 * Token positions grouped by token id, so the embedding backward sums each id's rows in one place without
 * atomics (deterministic): {@code order} lists positions sorted by id (stable), {@code segmentStart} has one
 * offset per distinct id plus the end, {@code uniqueIds} the distinct ids in ascending order.
 */
record EmbeddingSegments(int[] order, int[] segmentStart, int[] uniqueIds) {
    static EmbeddingSegments of(int[] ids, int t) {
        long[] keyed = new long[t];
        for (int i = 0; i < t; i++) {
            keyed[i] = ((long) ids[i] << 32) | i; // sort by id, then position
        }
        Arrays.sort(keyed);
        int[] order = new int[t];
        int[] starts = new int[t + 1];
        int[] unique = new int[t];
        int u = 0;
        for (int i = 0; i < t; i++) {
            order[i] = (int) keyed[i];
            int id = (int) (keyed[i] >>> 32);
            if (i == 0 || id != unique[u - 1]) {
                starts[u] = i;
                unique[u++] = id;
            }
        }
        starts[u] = t;
        return new EmbeddingSegments(order, Arrays.copyOf(starts, u + 1), Arrays.copyOf(unique, u));
    }
}
