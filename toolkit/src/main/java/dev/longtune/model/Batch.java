package dev.longtune.model;

/**
 * One packed micro-batch: T tokens of one or more documents. {@code targets[t]} is the token to predict at
 * position t (already shifted), or -100 where no loss is taken; positions restart at every document, and
 * cuSeqlens holds the document boundaries (0, …, T).
 */
public record Batch(int[] ids, int[] targets, int[] positions, int[] cuSeqlens) {
    public Batch {
        int t = ids.length;
        if (t == 0) {
            throw new IllegalArgumentException("a batch needs at least one token");
        }
        if (targets.length != t || positions.length != t) {
            throw new IllegalArgumentException("ids, targets and positions must all have " + t + " entries, have "
                    + targets.length + " and " + positions.length);
        }
        if (cuSeqlens.length < 2 || cuSeqlens[0] != 0 || cuSeqlens[cuSeqlens.length - 1] != t) {
            throw new IllegalArgumentException("cuSeqlens must run from 0 to " + t + " tokens");
        }
    }

    public int tokens() { return ids.length; }

    /**
     * Fails, naming the first offending position, unless every id is a token of a {@code vocab}-token vocabulary and
     * every target one too or -100: ids from another tokenizer would otherwise index past the embedding (on a GPU, an
     * illegal memory access that ends the process).
     */
    public void requireVocabulary(int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i + " of a " + ids.length
                        + "-token batch is outside the model's vocabulary (0.." + (vocab - 1) + "): tokenize the data "
                        + "with this model's tokenizer");
            }
        }
        for (int i = 0; i < ids.length; i++) { // after the ids: a bad id is also the previous position's target
            if (targets[i] != -100 && (targets[i] < 0 || targets[i] >= vocab)) {
                throw new IllegalArgumentException("target " + targets[i] + " at position " + i + " of a " + ids.length
                        + "-token batch is outside the model's vocabulary (0.." + (vocab - 1) + ") and is not -100 (no loss)");
            }
        }
    }

    /** A single document: positions 0…T−1, targets the next token, the last one ignored. */
    public static Batch ofDocument(int[] ids) {
        int t = ids.length;
        int[] targets = new int[t], positions = new int[t];
        for (int i = 0; i < t; i++) {
            targets[i] = i + 1 < t ? ids[i + 1] : -100;
            positions[i] = i;
        }
        return new Batch(ids, targets, positions, new int[] {0, t});
    }

    /**
     * Several documents packed into one batch, in order: each predicts its own next tokens (its last token
     * predicts nothing), positions restart at 0 per document, and attention stays within a document.
     */
    public static Batch ofDocuments(java.util.List<int[]> documents) {
        int t = documents.stream().mapToInt(d -> d.length).sum();
        int[] ids = new int[t], targets = new int[t], positions = new int[t], cuSeqlens = new int[documents.size() + 1];
        int at = 0;
        for (int doc = 0; doc < documents.size(); doc++) {
            int[] d = documents.get(doc);
            for (int i = 0; i < d.length; i++, at++) {
                ids[at] = d[i];
                targets[at] = i + 1 < d.length ? d[i + 1] : -100;
                positions[at] = i;
            }
            cuSeqlens[doc + 1] = at;
        }
        return new Batch(ids, targets, positions, cuSeqlens);
    }

    public int validTargets() {
        int n = 0;
        for (int x : targets) {
            if (x != -100) {
                n++;
            }
        }
        return n;
    }
}
