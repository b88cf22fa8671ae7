package dev.longtune.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * Packs tokenized examples, in the order given, into sequences of exactly {@code sequenceLength} tokens: an
 * example goes into the current sequence if it fits, else the current sequence is padded and closed and the
 * example starts the next. Order is kept (reproducible runs, no look-ahead), so a stream of any size packs in
 * constant memory: call {@link #add} per example and {@link #finish} at the end.
 *
 * <p>An example longer than {@code sequenceLength} is truncated to it ({@link Overlong#TRUNCATE}, counted in
 * {@link Stats#truncated()}) or skipped ({@link Overlong#SKIP}, counted in {@link Stats#skipped()}). A truncated
 * example that keeps no trained token (LongCite answers sit at the end) is dropped and counted in
 * {@link Stats#droppedWithoutLabels()}.
 */
public final class SequencePacker {

    public enum Overlong { TRUNCATE, SKIP }

    /**
     * Counters of one packing run.
     *
     * @param examples             examples offered
     * @param packed               examples that went into a sequence (whole or truncated)
     * @param truncated            examples cut to the sequence length
     * @param truncatedTokens      tokens cut off those examples
     * @param skipped              examples left out for being too long ({@link Overlong#SKIP})
     * @param droppedWithoutLabels truncated examples left out because no trained token was left
     * @param sequences            sequences produced
     * @param tokens               document tokens in those sequences
     * @param padding              padding tokens in those sequences
     */
    public record Stats(long examples, long packed, long truncated, long truncatedTokens, long skipped,
                        long droppedWithoutLabels, long sequences, long tokens, long padding) {

        /** Fraction of sequence positions that hold document tokens. */
        public double fill() {
            return tokens + padding == 0 ? 0 : (double) tokens / (tokens + padding);
        }

        @Override
        public String toString() {
            return String.format("%d examples -> %d sequences (%.1f%% filled); %d truncated (%d tokens cut), %d skipped,"
                            + " %d dropped without labels", examples, sequences, 100 * fill(), truncated,
                    truncatedTokens, skipped, droppedWithoutLabels);
        }
    }

    /** The sequences and the counters of {@link #pack(List)}. */
    public record Result(List<PackedSequence> sequences, Stats stats) {
        public Result {
            sequences = List.copyOf(sequences);
        }
    }

    private final int sequenceLength;
    private final int padTokenId;
    private final Overlong overlong;

    private final List<TokenizedExample> current = new ArrayList<>();
    private int currentTokens;
    private long examples;
    private long packed;
    private long truncated;
    private long truncatedTokens;
    private long skipped;
    private long droppedWithoutLabels;
    private long sequences;
    private long tokens;
    private long padding;

    public SequencePacker(int sequenceLength, int padTokenId, Overlong overlong) {
        if (sequenceLength < 1) {
            throw new IllegalArgumentException("sequence length must be positive, got " + sequenceLength);
        }
        this.sequenceLength = sequenceLength;
        this.padTokenId = padTokenId;
        this.overlong = overlong;
    }

    /** Llama 3.1 padding ({@code <|finetune_right_pad_id|>}), overlong examples truncated. */
    public SequencePacker(int sequenceLength) {
        this(sequenceLength, SpecialTokens.LLAMA_3.padding(), Overlong.TRUNCATE);
    }

    /** Packs a whole list; see the class comment. */
    public Result pack(List<TokenizedExample> examples) {
        List<PackedSequence> out = new ArrayList<>();
        for (TokenizedExample e : examples) {
            add(e).ifPresent(out::add);
        }
        finish().ifPresent(out::add);
        return new Result(out, stats());
    }

    /** Offers one example; returns the sequence it closed, if it did not fit in the open one. */
    public Optional<PackedSequence> add(TokenizedExample example) {
        examples++;
        if (example.length() == 0) {
            return Optional.empty();
        }
        if (example.length() > sequenceLength) {
            if (overlong == Overlong.SKIP) {
                skipped++;
                return Optional.empty();
            }
            TokenizedExample cut = example.truncate(sequenceLength);
            if (cut.trainedTokens() == 0 && example.trainedTokens() > 0) {
                droppedWithoutLabels++;
                return Optional.empty();
            }
            truncated++;
            truncatedTokens += example.length() - sequenceLength;
            example = cut;
        }
        Optional<PackedSequence> closed = Optional.empty();
        if (currentTokens + example.length() > sequenceLength) {
            closed = finish();
        }
        current.add(example);
        currentTokens += example.length();
        packed++;
        return closed;
    }

    /** Pads and returns the open sequence, if it holds anything. */
    public Optional<PackedSequence> finish() {
        if (current.isEmpty()) {
            return Optional.empty();
        }
        int[] ids = new int[sequenceLength];
        int[] labels = new int[sequenceLength];
        int[] positions = new int[sequenceLength];
        int pad = sequenceLength - currentTokens;
        int[] cuSeqlens = new int[current.size() + 1 + (pad > 0 ? 1 : 0)];
        int at = 0;
        for (int d = 0; d < current.size(); d++) {
            TokenizedExample e = current.get(d);
            System.arraycopy(e.inputIds(), 0, ids, at, e.length());
            System.arraycopy(e.labels(), 0, labels, at, e.length());
            labels[at] = Tokenizer.IGNORE_INDEX;
            for (int i = 0; i < e.length(); i++) {
                positions[at + i] = i;
            }
            at += e.length();
            cuSeqlens[d + 1] = at;
        }
        Arrays.fill(ids, at, sequenceLength, padTokenId);
        Arrays.fill(labels, at, sequenceLength, Tokenizer.IGNORE_INDEX);
        for (int i = at; i < sequenceLength; i++) {
            positions[i] = i - at;
        }
        if (pad > 0) {
            cuSeqlens[cuSeqlens.length - 1] = sequenceLength;
        }
        PackedSequence packedSequence = new PackedSequence(ids, labels, positions, cuSeqlens, current.size());
        sequences++;
        tokens += currentTokens;
        padding += pad;
        current.clear();
        currentTokens = 0;
        return Optional.of(packedSequence);
    }

    public Stats stats() {
        return new Stats(examples, packed, truncated, truncatedTokens, skipped, droppedWithoutLabels, sequences, tokens,
                padding);
    }

    public int sequenceLength() {
        return sequenceLength;
    }
}
