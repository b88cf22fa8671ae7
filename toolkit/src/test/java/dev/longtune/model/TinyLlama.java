package dev.longtune.model;

import dev.longtune.config.ModelConfig;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Small Llama 3-style configs for tests: GQA, Llama 3 RoPE scaling, odd sizes. */
final class TinyLlama {
    private TinyLlama() {}

    static ModelConfig config(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab, boolean tied) {
        String json = """
                {"model_type": "llama", "hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d,
                 "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": %d, "tie_word_embeddings": %b,
                 "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 4096,
                 "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 64, "rope_type": "llama3"}}
                """.formatted(hidden, intermediate, layers, heads, kvHeads, vocab, tied);
        try {
            return ModelConfig.parse("tiny-llama", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** hidden 32, MLP 56, 2 layers, 4 query / 2 KV heads of 8, vocab 37. */
    static ModelConfig small() { return config(32, 56, 2, 4, 2, 37, false); }
}
