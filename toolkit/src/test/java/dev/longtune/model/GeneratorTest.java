package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.ops.RmsNorm;
import dev.longtune.tensor.Tensor;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class GeneratorTest {
    static final int VOCAB = 37;

    static ModelConfig config(boolean tied) {
        String json = """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 56, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": %d, "tie_word_embeddings": %b,
                 "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 4096,
                 "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 64, "rope_type": "llama3"}}
                """.formatted(VOCAB, tied);
        try {
            return ModelConfig.parse("generator-tiny", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)),
                    "test");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Random weights, matrices scaled up so logits are well apart and the argmax is not a float-noise tie. */
    static LlamaModel model(boolean tied, long seed) {
        LlamaModel m = new LlamaModel(config(tied), new CpuDevice(), Precision.FP32, Checkpointing.NONE);
        m.initialize(seed);
        for (Tensor t : m.weights().all()) {
            if (!t.name().endsWith("norm.weight")) {
                float[] w = t.floats();
                for (int i = 0; i < w.length; i++) {
                    w[i] *= 10f;
                }
            }
        }
        return m;
    }

    static final int[] PROMPT = {3, 17, 5, 5, 30, 1, 22, 9};

    /**
     * Logits of the token after {@code ids} by hand, on any device: the device's hidden state (hiddenAfter), then
     * RMSNorm and the LM head as a double dot product.
     */
    static double[] logitsByHand(LlamaModel m, int[] ids) {
        ModelConfig c = m.config();
        var d = m.device();
        int h = c.hiddenSize();
        float[] last = new float[h];
        try (Tensor hidden = m.hiddenAfter(c.numLayers(), Batch.ofDocument(ids))) {
            System.arraycopy(d.read(hidden), (ids.length - 1) * h, last, 0, h);
        }
        float[] normed = new float[h];
        RmsNorm.forward(normed, new float[1], last, d.read(m.weights().get("model.norm.weight")), 1, h,
                (float) c.rmsNormEps());
        float[] head = d.read(m.weights().get(c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight"));
        double[] logits = new double[c.vocabSize()];
        for (int v = 0; v < logits.length; v++) {
            double s = 0;
            for (int k = 0; k < h; k++) {
                s += (double) normed[k] * head[v * h + k];
            }
            logits[v] = s;
        }
        return logits;
    }

    static int argmax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void everyGeneratedTokenIsTheArgmaxOfTheLogitsComputedByHand() {
        for (boolean tied : new boolean[] {false, true}) {
            try (LlamaModel m = model(tied, 42)) {
                int[] out = new Generator(m, Set.of()).generate(PROMPT, 6).tokens();
                assertThat(out).hasSize(6);
                int[] context = PROMPT;
                for (int token : out) {
                    double[] logits = logitsByHand(m, context);
                    int best = argmax(logits);
                    double[] sorted = logits.clone();
                    Arrays.sort(sorted);
                    assertThat(sorted[sorted.length - 1] - sorted[sorted.length - 2]).as("a clear winner")
                            .isGreaterThan(1e-3);
                    assertThat(token).as("tied %b after %s", tied, Arrays.toString(context)).isEqualTo(best);
                    context = Arrays.copyOf(context, context.length + 1);
                    context[context.length - 1] = token;
                }
                // and lastLogits agrees with the hand computation to float precision
                float[] logits = new Generator(m, Set.of()).lastLogits(PROMPT);
                double[] byHand = logitsByHand(m, PROMPT);
                for (int v = 0; v < VOCAB; v++) {
                    assertThat((double) logits[v]).isCloseTo(byHand[v], org.assertj.core.api.Assertions.within(1e-3));
                }
            }
        }
    }

    @Test
    void generationIsDeterministic() {
        try (LlamaModel a = model(false, 7); LlamaModel b = model(false, 7)) {
            Generator g = new Generator(a, Set.of());
            int[] first = g.generate(PROMPT, 12).tokens();
            assertThat(g.generate(PROMPT, 12).tokens()).containsExactly(first);
            assertThat(new Generator(b, Set.of()).generate(PROMPT, 12).tokens()).containsExactly(first);
            // a shorter run is a prefix of a longer one
            assertThat(g.generate(PROMPT, 5).tokens()).containsExactly(Arrays.copyOf(first, 5));
            assertThat(g.generate(PROMPT, 0).tokens()).isEmpty();
        }
    }

    @Test
    void stopsAtAStopTokenWithoutReturningIt() {
        try (LlamaModel m = model(false, 42)) {
            int[] free = new Generator(m, Set.of()).generate(PROMPT, 10).tokens();
            int stop = free[3];
            int at = 0;
            while (free[at] != stop) {
                at++;
            }
            Generator.Generation g = new Generator(m, Set.of(stop, 999)).generate(PROMPT, 10);
            assertThat(g.stopped()).isTrue();
            assertThat(g.stopToken()).isEqualTo(stop);
            assertThat(g.tokens()).containsExactly(Arrays.copyOf(free, at));
            assertThat(g.promptTokens()).isEqualTo(PROMPT.length);
            // each chosen token is told as it comes, the stop token last
            java.util.List<Integer> told = new java.util.ArrayList<>();
            new Generator(m, Set.of(stop, 999)).generate(PROMPT, 10, told::add);
            int[] expected = Arrays.copyOf(free, at + 1);
            assertThat(told).containsExactly(Arrays.stream(expected).boxed().toArray(Integer[]::new));

            Generator.Generation unstopped = new Generator(m, Set.of(999)).generate(PROMPT, 10);
            assertThat(unstopped.stopped()).isFalse();
            assertThat(unstopped.stopToken()).isEqualTo(-1);
            assertThat(unstopped.tokens()).containsExactly(free);
        }
    }

    @Test
    void maxContextTruncatesThePromptFromTheLeft() {
        try (LlamaModel m = model(false, 42)) {
            int[] tail = Arrays.copyOfRange(PROMPT, PROMPT.length - 5, PROMPT.length);
            Generator.Generation windowed = new Generator(m, Set.of(), 5).generate(PROMPT, 4);
            assertThat(windowed.promptTokens()).isEqualTo(5);
            // the first token sees exactly the last five prompt tokens, at positions 0..4
            assertThat(windowed.tokens()[0]).isEqualTo(new Generator(m, Set.of()).generate(tail, 1).tokens()[0]);
            // later steps slide the window: the model never sees more than five tokens
            int[] all = Arrays.copyOf(PROMPT, PROMPT.length + 4);
            System.arraycopy(windowed.tokens(), 0, all, PROMPT.length, 4);
            Generator unlimited = new Generator(m, Set.of());
            for (int k = 0; k < 4; k++) {
                int end = PROMPT.length + k;
                assertThat(windowed.tokens()[k]).isEqualTo(unlimited.nextToken(Arrays.copyOfRange(all, end - 5, end)));
            }
        }
    }

    @Test
    void argmaxTakesTheLowestIdAmongTies() {
        assertThat(Generator.argmax(new float[] {1f, 3f, 2f, 3f})).isEqualTo(1);
        assertThat(Generator.argmax(new float[] {Float.NaN, -5f, -5f})).isEqualTo(1);
        assertThat(Generator.argmax(new float[] {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY})).isEqualTo(0);
        assertThatThrownBy(() -> Generator.argmax(new float[] {Float.NaN})).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void rejectsAnEmptyPromptAndNegativeLimits() {
        try (LlamaModel m = model(false, 1)) {
            Generator g = new Generator(m, Set.of());
            assertThatThrownBy(() -> g.generate(new int[0], 3)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> g.generate(PROMPT, -1)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> new Generator(m, Set.of(), -1)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    /** A repeating pattern: token i+1 follows token i (mod vocab). */
    static int[] pattern(int length, int offset) {
        int[] ids = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = (offset + i) % VOCAB;
        }
        return ids;
    }

    @Test
    void aModelTrainedOnAPatternContinuesIt() {
        int steps = 60;
        LlamaModel m = new LlamaModel(config(false), new CpuDevice(), Precision.FP32, Checkpointing.NONE);
        m.initialize(1);
        try (Trainer t = new Trainer(m, TrainingConfig.defaults(steps).withLearningRate(1e-2, 1e-3), Precision.FP32)) {
            for (int s = 0; s < steps; s++) {
                t.step(List.of(Batch.ofDocument(pattern(24, s))));
            }
            int[] prompt = pattern(6, 30); // 30 31 … 35, then wrapping past the vocabulary's end
            Generator.Generation g = new Generator(m, Set.of(9)).generate(prompt, 12);
            // 36 0 1 … 8, then 9 is the stop token
            assertThat(g.tokens()).containsExactly(pattern(10, 36));
            assertThat(g.stopped()).isTrue();
            assertThat(g.stopToken()).isEqualTo(9);
        } finally {
            m.close();
        }
    }
}
