package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.io.CheckpointWriter;
import dev.longtune.io.SafetensorsDType;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.train.TrainingCheckpoint;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class InspectCommandTest {
    // three documents of uneven length; vocabulary 53
    static final String TOKENS = "3 17 52 0 9 9 41\n\n  5 6 7\t8 1 2 3 4 5 6 11 12 13 \n44 2\n";
    static final List<int[]> DOCUMENTS = List.of(new int[] {3, 17, 52, 0, 9, 9, 41},
            new int[] {5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 11, 12, 13}, new int[] {44, 2});

    @TempDir static Path dir;
    static Path model, tokens;

    @BeforeAll
    static void writeCheckpointAndTokens() throws Exception {
        model = dir.resolve("model");
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 56, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 53, "tie_word_embeddings": false,
                 "rms_norm_eps": 1e-5, "rope_theta": 500000.0}""");
        ModelConfig config = ModelConfig.read(model.resolve("config.json"));
        try (LlamaModel m = new LlamaModel(config, new CpuDevice(), Precision.parse("fp32"), Checkpointing.NONE)) {
            m.initialize(7);
            CheckpointWriter w = CheckpointWriter.to(model);
            m.weights().byName().forEach((name, t) ->
                    w.addFloats(name, SafetensorsDType.F32, Arrays.stream(t.shape()).asLongStream().toArray(), t.floats()));
            w.write();
        }
        tokens = dir.resolve("tokens.txt");
        Files.writeString(tokens, TOKENS);
    }

    @Test
    void jsonHasTheLossOfTheBatchAndEveryGradientNorm() throws Exception {
        CommandLineTest.Result r = CommandLineTest.run("inspect", "--checkpoint", model.toString(), "--tokens",
                tokens.toString(), "--precision", "fp32", "--json", "--progress", "on");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("sequences").asInt()).isEqualTo(3);
        assertThat(j.get("tokens").asInt()).isEqualTo(22);
        assertThat(j.get("targets").asInt()).isEqualTo(19); // one per document has no next token
        // progress went to stderr, per layer and pass
        assertThat(r.err()).contains("forward  layer 2/2").contains("backward layer 2/2");

        Batch batch = Batch.ofDocuments(DOCUMENTS);
        try (LlamaModel m = TrainingCheckpoint.loadModel(model, new CpuDevice(), Precision.parse("fp32"), Checkpointing.DEVICE)) {
            assertThat(j.get("loss").asDouble()).isEqualTo(m.loss(batch));
            m.grads().zero();
            m.forwardBackward(batch, 1f);
            JsonNode norms = j.get("grad_norms");
            assertThat(norms.size()).isEqualTo(m.grads().byName().size());
            for (String name : List.of("model.layers.1.self_attn.k_proj.weight", "lm_head.weight", "model.embed_tokens.weight")) {
                double sq = 0;
                for (float x : m.grads().get(name).floats()) {
                    sq += (double) x * x;
                }
                assertThat(norms.get(name).asDouble()).as(name).isCloseTo(Math.sqrt(sq), within(1e-12 * Math.sqrt(sq)));
                assertThat(norms.get(name).asDouble()).as(name).isPositive();
            }
        }
    }

    @Test
    void tableListsEveryParameterByItsHuggingFaceName() {
        CommandLineTest.Result r = CommandLineTest.run("inspect", "--checkpoint", model.toString(), "--tokens",
                tokens.toString(), "--precision", "bf16");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("3 sequences (22 tokens, 19 targets), bf16: loss ")
                .contains("model.layers.0.mlp.gate_proj.weight").contains("model.norm.weight").contains("lm_head.weight");
        assertThat(r.err()).isEmpty(); // progress is auto: off when not on a console
    }

    @Test
    void badTokensNameTheFileLineAndToken() throws Exception {
        Path bad = dir.resolve("bad.txt");
        Files.writeString(bad, "1 2 3\n4 53 6\n");
        CommandLineTest.Result r = CommandLineTest.run("inspect", "--checkpoint", model.toString(), "--tokens", bad.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(bad + " line 2, token 2: token id 53 is outside the model's vocabulary of 53");

        Files.writeString(bad, "1 2 x3\n");
        r = CommandLineTest.run("inspect", "--checkpoint", model.toString(), "--tokens", bad.toString());
        assertThat(r.err()).contains("line 1, token 3: 'x3' is not a token id");

        r = CommandLineTest.run("inspect", "--checkpoint", model.toString(), "--tokens", dir.resolve("none.txt").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("none.txt does not exist");
    }
}
