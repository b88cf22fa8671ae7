package dev.longtune.data;

import java.util.Arrays;

/**
 * A tokenized training example: {@code inputIds} and {@code labels} of equal length.
 *
 * <p>Labels follow the Hugging Face convention: {@code labels[i]} is {@code inputIds[i]} where the loss is
 * taken and {@link Tokenizer#IGNORE_INDEX} (-100) elsewhere, not yet shifted; the loss compares the logits at
 * position {@code i} with {@code labels[i + 1]} ({@link PackedSequence#targets()} does that shift).
 */
public record TokenizedExample(int[] inputIds, int[] labels) {

    public TokenizedExample {
        if (inputIds.length != labels.length) {
            throw new IllegalArgumentException("inputIds has " + inputIds.length + " tokens but labels has "
                    + labels.length);
        }
    }

    public int length() {
        return inputIds.length;
    }

    /** Tokens the loss is taken on (labels other than -100). */
    public int trainedTokens() {
        return (int) Arrays.stream(labels).filter(l -> l != Tokenizer.IGNORE_INDEX).count();
    }

    /** The first {@code length} tokens. */
    public TokenizedExample truncate(int length) {
        if (length >= inputIds.length) {
            return this;
        }
        return new TokenizedExample(Arrays.copyOf(inputIds, length), Arrays.copyOf(labels, length));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenizedExample other && Arrays.equals(inputIds, other.inputIds)
                && Arrays.equals(labels, other.labels);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(inputIds) + Arrays.hashCode(labels);
    }

    @Override
    public String toString() {
        return "TokenizedExample(" + inputIds.length + " tokens, " + trainedTokens() + " trained)";
    }
}
