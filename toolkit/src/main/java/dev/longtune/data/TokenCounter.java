package dev.longtune.data;

/** Counts tokens in a text: exactly with a tokenizer, or estimated when none is at hand. */
@FunctionalInterface
public interface TokenCounter {

    /** Characters per token of English prose under byte-level BPE with a ~128K vocabulary (Llama 3: ~4.7). */
    int ESTIMATED_CHARS_PER_TOKEN = 4;

    int count(String text);

    static TokenCounter of(Tokenizer tokenizer) {
        return tokenizer::count;
    }

    /** ⌈length / 4⌉: errs towards more tokens, so texts built to a token budget come out a little short. */
    static TokenCounter estimate() {
        return text -> (text.length() + ESTIMATED_CHARS_PER_TOKEN - 1) / ESTIMATED_CHARS_PER_TOKEN;
    }
}
