package dev.longtune.data;

/**
 * Text to token ids and back, with the special tokens of the Llama 3 chat format.
 *
 * <p>{@link #encode} adds no {@code <|begin_of_text|>}: the chat format places it. Special tokens written in
 * the text ({@code <|eot_id|>}) become their ids, as Hugging Face's {@code tokenizer(text,
 * add_special_tokens=False)} does. {@link #decode} keeps special tokens, so {@code decode(encode(s))} is
 * {@code s} for any text.
 */
public interface Tokenizer {

    /** Label value the loss ignores (PyTorch's {@code ignore_index}). */
    int IGNORE_INDEX = -100;

    int[] encode(String text);

    String decode(int[] ids);

    SpecialTokens specialTokens();

    /** Number of tokens {@code text} encodes to. */
    default int count(String text) {
        return encode(text).length;
    }
}
