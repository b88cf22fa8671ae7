package dev.longtune.data;

import java.util.Arrays;

/**
 * Several tokenized documents laid end to end in one sequence of fixed length, for attention that keeps
 * documents apart (FlashAttention-2's variable-length form).
 *
 * <p>{@code cuSeqlens} are the cumulative segment boundaries {@code [0, n1, n1+n2, …, length]}: one segment
 * per document, then one more for the padding when there is any, so the last entry is always
 * {@link #length()} and every token lies in exactly one segment. Padding attends only to padding; its labels
 * are -100. {@code positions} restart at 0 at every segment start (RoPE positions).
 *
 * <p>Labels are unshifted (see {@link TokenizedExample}); the label of each document's first token is -100 so
 * that the last token of one document is never trained to predict the first of the next.
 *
 * @param documents number of real documents (segments before the padding)
 */
public record PackedSequence(int[] inputIds, int[] labels, int[] positions, int[] cuSeqlens, int documents) {

    public PackedSequence {
        int n = inputIds.length;
        if (labels.length != n || positions.length != n) {
            throw new IllegalArgumentException("inputIds, labels and positions differ in length: " + n + ", "
                    + labels.length + ", " + positions.length);
        }
        if (cuSeqlens.length < 2 || cuSeqlens[0] != 0 || cuSeqlens[cuSeqlens.length - 1] != n) {
            throw new IllegalArgumentException("cuSeqlens must run from 0 to " + n + ": " + Arrays.toString(cuSeqlens));
        }
        if (documents < 1 || documents > cuSeqlens.length - 1 || cuSeqlens.length - 1 - documents > 1) {
            throw new IllegalArgumentException(documents + " documents do not fit cuSeqlens " + Arrays.toString(cuSeqlens));
        }
    }

    public int length() {
        return inputIds.length;
    }

    /** Padding tokens at the end. */
    public int padding() {
        return length() - cuSeqlens[documents];
    }

    /** Longest segment: FlashAttention's {@code max_seqlen}. */
    public int maxSegmentLength() {
        int max = 0;
        for (int i = 1; i < cuSeqlens.length; i++) {
            max = Math.max(max, cuSeqlens[i] - cuSeqlens[i - 1]);
        }
        return max;
    }

    /** Tokens the loss is taken on. */
    public int trainedTokens() {
        return (int) Arrays.stream(labels).filter(l -> l != Tokenizer.IGNORE_INDEX).count();
    }

    /**
     * Shifted labels: {@code targets[i]} is the token position {@code i} must predict, {@code labels[i + 1]}
     * within the same segment, and -100 at the last token of every segment.
     */
    public int[] targets() {
        int[] targets = new int[length()];
        Arrays.fill(targets, Tokenizer.IGNORE_INDEX);
        for (int s = 0; s < cuSeqlens.length - 1; s++) {
            for (int i = cuSeqlens[s]; i < cuSeqlens[s + 1] - 1; i++) {
                targets[i] = labels[i + 1];
            }
        }
        return targets;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PackedSequence p && documents == p.documents && Arrays.equals(inputIds, p.inputIds)
                && Arrays.equals(labels, p.labels) && Arrays.equals(positions, p.positions)
                && Arrays.equals(cuSeqlens, p.cuSeqlens);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(inputIds) * 31 + Arrays.hashCode(cuSeqlens);
    }

    @Override
    public String toString() {
        return "PackedSequence(" + length() + " tokens, " + documents + " documents, " + padding() + " padding, cu_seqlens "
                + Arrays.toString(cuSeqlens) + ")";
    }
}
