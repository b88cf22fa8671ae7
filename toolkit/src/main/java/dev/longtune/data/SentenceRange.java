package dev.longtune.data;

/** Sentences {@code first} to {@code last} (inclusive) of a document whose sentences are marked {@code <C{i}>}. */
public record SentenceRange(int first, int last) {

    public SentenceRange {
        if (first < 0 || last < first) {
            throw new IllegalArgumentException("a sentence range needs 0 <= first <= last, got [" + first + "-"
                    + last + "]");
        }
    }

    public static SentenceRange of(int sentence) {
        return new SentenceRange(sentence, sentence);
    }

    public boolean covers(int sentence) {
        return sentence >= first && sentence <= last;
    }

    public int size() {
        return last - first + 1;
    }

    /** As LongCite writes it: {@code [first-last]}. */
    @Override
    public String toString() {
        return "[" + first + "-" + last + "]";
    }
}
