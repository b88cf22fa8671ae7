package dev.longtune.train;

import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** MFU's FLOPs per token against a count of every GEMM of one forward and backward, and the peaks it divides by. */
class MfuTest {
    static ModelConfig config(boolean tied) throws Exception {
        String json = """
                {"model_type": "llama", "hidden_size": 48, "intermediate_size": 112, "num_hidden_layers": 3,
                 "num_attention_heads": 6, "num_key_value_heads": 2, "vocab_size": 301, "tie_word_embeddings": %s}"""
                .formatted(tied);
        return ModelConfig.parse("mfu", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
    }

    /** Forward FLOPs of one token in a T-token sequence, GEMM by GEMM: 2·m·k per output row; backward twice that. */
    static double countedByHand(ModelConfig m, long t) {
        long h = m.hiddenSize(), f = m.intermediateSize(), q = m.queryDim(), kv = m.kvDim(), v = m.vocabSize();
        double perLayer = 2.0 * h * q + 2 * (2.0 * h * kv) + 2.0 * q * h  // q, k, v, o projections
                + 2 * (2.0 * h * f) + 2.0 * f * h                       // gate, up, down
                + 2.0 * t * q;                                          // causal QKᵀ and PV: T·q multiply-adds each over T/2 keys
        double forward = m.numLayers() * perLayer + 2.0 * h * v;          // the LM head
        return 3 * forward;                                               // backward: two GEMMs per forward one
    }

    @Test
    void flopsPerTokenAreTheSumOfTheGemms() throws Exception {
        for (boolean tied : new boolean[] {false, true}) {
            ModelConfig m = config(tied);
            for (long t : new long[] {37, 4096}) {
                assertThat(Mfu.flopsPerToken(m, t)).as("tied=%s T=%d", tied, t).isCloseTo(countedByHand(m, t), within(1e-6));
            }
        }
        // Llama 3.1 8B at 32K: 6 × 7.50e9 multiplying parameters + 6·32·4096·32768 ≈ 7.08e10 FLOPs per token
        ModelConfig llama = ModelCatalog.get("llama-3.1-8b");
        assertThat(Mfu.flopsPerToken(llama, 32_768)).isCloseTo(countedByHand(llama, 32_768), within(1.0));
    }

    @Test
    void aStepCountsAttentionWithinEachDocumentAndNoPadding() throws Exception {
        ModelConfig m = config(false);
        // two documents of 30 and 50 tokens, then 20 tokens of padding (no targets): a 100-token sequence
        int[] ids = new int[100], targets = new int[100], positions = new int[100];
        java.util.Arrays.fill(targets, 0, 80, 7);
        java.util.Arrays.fill(targets, 80, 100, dev.longtune.data.Tokenizer.IGNORE_INDEX);
        targets[29] = targets[79] = dev.longtune.data.Tokenizer.IGNORE_INDEX; // a document's last token predicts nothing
        dev.longtune.model.Batch packed = new dev.longtune.model.Batch(ids, targets, positions, new int[] {0, 30, 80, 100});
        // by hand: each document's tokens at its own length (per-token attention grows with the document)
        double expected = 30 * countedByHand(m, 30) + 50 * countedByHand(m, 50);
        assertThat(Mfu.stepFlops(m, java.util.List.of(packed))).isCloseTo(expected, within(1e-3));
        // one document filling the sequence is what the per-token formula assumes
        int[] full = new int[100];
        java.util.Arrays.fill(full, 7);
        dev.longtune.model.Batch one = new dev.longtune.model.Batch(ids, full, positions, new int[] {0, 100});
        assertThat(Mfu.ofStep(m, java.util.List.of(one), 2.0, 1e-9))
                .isCloseTo(Mfu.of(m, 100, 100 / 2.0, 1e-9), within(1e-9));
        assertThat(Mfu.stepFlops(m, java.util.List.of(packed, one))).isCloseTo(expected + 100 * countedByHand(m, 100), within(1e-3));
    }

    @Test
    void peaksComeFromTheCatalogueByTheReportedName() {
        assertThat(Mfu.peakTflops("NVIDIA H200", Precision.BF16)).hasValue(989.0);
        assertThat(Mfu.peakTflops("Tesla V100-SXM2-16GB", Precision.FP16)).hasValue(125.0);
        assertThat(Mfu.peakTflops("Tesla V100-SXM2-16GB", Precision.BF16)).isEmpty(); // no BF16 on Volta
        assertThat(Mfu.peakTflops("NVIDIA H200", Precision.FP32)).isEmpty();
        assertThat(Mfu.peakTflops("Some Future GPU", Precision.BF16)).isEmpty();
        double mfu = Mfu.of(ModelCatalog.get("llama-3.1-8b"), 32_768, 3_683, 989);
        assertThat(mfu).isBetween(0.2, 0.3); // the offloaded 8B at 32K on an H200 (docs/benchmarks.md)
    }
}
