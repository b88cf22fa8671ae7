package dev.longtune.config;

/** How attention is computed. */
public enum Attention {
    /** Materialised scores and an FP32 softmax: memory grows with the square of the context. */
    EAGER("eager"),
    /**
     * PyTorch's scaled_dot_product_attention (Hugging Face's default): a memory-efficient kernel that keeps
     * only the output and the log-sum-exp; runs on V100. Hugging Face repeats K/V to all query heads for it
     * up to transformers 4.53 (the study's time), and passes GQA through from 4.54 when there is no mask.
     */
    SDPA("sdpa"),
    /** FlashAttention-2: tiled, GQA-native, output and log-sum-exp saved. */
    FLASH_ATTENTION_2("fa2");

    public final String id;

    Attention(String id) { this.id = id; }

    public static Attention parse(String s) { return Names.parse(Attention.class, s, a -> a.id); }
}
