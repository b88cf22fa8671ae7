package dev.longtune.data;

/** Ids of the special tokens the Llama 3 chat format uses. */
public record SpecialTokens(int beginOfText, int endOfText, int startHeader, int endHeader, int endOfTurn,
                            int padding) {

    /**
     * Llama 3.1, 3.2 and 3.3 ({@code tokenizer.json} {@code added_tokens}). Padding is
     * {@code <|finetune_right_pad_id|>} (128004), which Llama 3.1 reserves for it. Llama 3.0 has the same ids
     * and merges but calls 128004 {@code <|reserved_special_token_2|>}; the tokenizer.json that
     * environment/fetch-tokenizer.sh fetches carries those 3.0 names, which changes nothing here: padding is
     * placed by id, never written as text.
     */
    public static final SpecialTokens LLAMA_3 = new SpecialTokens(128000, 128001, 128006, 128007, 128009, 128004);

    public static final String BEGIN_OF_TEXT = "<|begin_of_text|>";
    public static final String END_OF_TEXT = "<|end_of_text|>";
    public static final String START_HEADER = "<|start_header_id|>";
    public static final String END_HEADER = "<|end_header_id|>";
    public static final String END_OF_TURN = "<|eot_id|>";
    public static final String PADDING = "<|finetune_right_pad_id|>";
}
