package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.data.TokenizerCache;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code train --offload}: what each choice moves to the host, conflicts refused, and resume of an offloaded run. */
class TrainOffloadCommandTest {
    @TempDir Path dir;
    Path model;

    @BeforeEach
    void smallModelWithTheRealVocabulary() throws Exception {
        model = smallModel(dir, 3);
    }

    /**
     * A folder with the config.json of a tiny Llama with the real Llama 3.1 vocabulary ({@code layers} decoder
     * layers), for {@code train --model}; skips the test without the tokenizer in the cache.
     */
    static Path smallModel(Path dir, int layers) throws Exception {
        assumeTrue(TokenizerCache.findLlama31().isPresent(), "the Llama 3.1 tokenizer is not in the cache (environment/fetch-tokenizer.sh)");
        Path model = Files.createDirectories(dir.resolve("model"));
        Files.writeString(model.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": %d,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128256, "tie_word_embeddings": false,
                 "rope_theta": 500000.0}""".formatted(layers));
        return model;
    }

    JsonNode firstStep(String... extra) throws Exception {
        String[] base = {"train", "--device", "cpu", "--model", model.toString(), "--context", "300", "--steps", "1",
                "--examples", "2", "--precision", "bf16", "--json"};
        String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra)).toArray(String[]::new);
        CommandLineTest.Result r = CommandLineTest.run(args);
        assertThat(r.code()).as(r.err()).isZero();
        return new ObjectMapper().readTree(r.out().split("\n")[0]);
    }

    @Test
    void offloadedParametersLeaveTheDeviceWithOnlyTheUnitsInFlight() throws Exception {
        JsonNode resident = firstStep();
        JsonNode offloaded = firstStep("--offload", "parameters,checkpoints");
        assertThat(offloaded.get("loss").asDouble()).isEqualTo(resident.get("loss").asDouble());
        long all = resident.at("/memory/weights").asLong();
        // a ring of two of the three layers and one slot for the head and the embedding (never in flight together)
        long layer = 2L * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 32 * 64 + 2 * 32), embedding = 2L * 128256 * 32;
        assertThat(offloaded.at("/memory/weights").asLong()).isEqualTo(all - layer - embedding);
        assertThat(offloaded.at("/host_memory/weights").asLong()).isEqualTo(all);
        assertThat(offloaded.at("/host_memory/grads").asLong()).isEqualTo(all);
        assertThat(offloaded.at("/host_memory/checkpoints").asLong()).isPositive();
    }

    @Test
    void randomDocumentsFillEverySequenceAndTrainOffloaded() throws Exception {
        // one random document of 300 tokens per sequence: the loss of a fresh model is about ln V on random targets,
        // the same seed gives the same data (the same loss), and held-out documents are evaluated
        JsonNode a = firstStep("--data", "random-document", "--offload", "parameters,optimizer,checkpoints", "--eval-every", "1");
        JsonNode b = firstStep("--data", "random-document", "--offload", "parameters,optimizer,checkpoints", "--eval-every", "1");
        assertThat(a.get("tokens").asLong()).isEqualTo(300);
        assertThat(a.get("loss").asDouble()).isBetween(Math.log(128256) - 1, Math.log(128256) + 1).isEqualTo(b.get("loss").asDouble());
        assertThat(a.get("eval_loss").asDouble()).isBetween(Math.log(128256) - 1, Math.log(128256) + 1);
        JsonNode synthetic = firstStep("--offload", "parameters,optimizer,checkpoints");
        assertThat(synthetic.get("loss").asDouble()).isNotEqualTo(a.get("loss").asDouble());
    }

    @Test
    void keptAttentionTrainsAsRecomputedAttention() throws Exception {
        JsonNode recomputed = firstStep("--offload", "parameters,checkpoints");
        JsonNode kept = firstStep("--offload", "parameters,checkpoints", "--keep-attention");
        assertThat(kept.get("loss").asDouble()).isEqualTo(recomputed.get("loss").asDouble());
        // the tiny model: 3 layers, 4 heads of 8 dims, 300 tokens, bf16: each layer's output (2 bytes) and lse (4 bytes)
        assertThat(kept.at("/host_memory/checkpoints").asLong() - recomputed.at("/host_memory/checkpoints").asLong())
                .isEqualTo(3L * 300 * (32 * 2 + 4 * 4));
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--keep-attention", "--steps", "1"),
                "--keep-attention", "--offload checkpoints");
    }

    /**
     * --keep-last-layer: the last layer's saved tensors stay for its backward, which does not recompute it: the same
     * loss, and its input never goes to the host; refused where nothing is checkpointed.
     */
    @Test
    void theLastLayerKeptTrainsAsRecomputed() throws Exception {
        JsonNode recomputed = firstStep("--offload", "parameters,checkpoints");
        JsonNode kept = firstStep("--offload", "parameters,checkpoints", "--keep-last-layer");
        assertThat(kept.get("loss").asDouble()).isEqualTo(recomputed.get("loss").asDouble());
        // the tiny model's layer input: 300 tokens × 32 hidden, bf16
        assertThat(recomputed.at("/host_memory/checkpoints").asLong() - kept.at("/host_memory/checkpoints").asLong())
                .isEqualTo(300L * 32 * 2);
        assertThat(firstStep("--keep-last-layer").get("loss").asDouble()).isEqualTo(recomputed.get("loss").asDouble());
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--model", model.toString(),
                "--checkpointing", "none", "--keep-last-layer", "--steps", "1"), "--keep-last-layer", "--checkpointing device or offload");
    }

    @Test
    void attentionCanBeKeptForSomeLayersOrAsManyAsTheHostHolds() throws Exception {
        JsonNode recomputed = firstStep("--offload", "parameters,checkpoints");
        JsonNode two = firstStep("--offload", "parameters,checkpoints", "--keep-attention", "2");
        assertThat(two.get("loss").asDouble()).isEqualTo(recomputed.get("loss").asDouble());
        long perLayer = 300L * (32 * 2 + 4 * 4);
        assertThat(two.at("/host_memory/checkpoints").asLong() - recomputed.at("/host_memory/checkpoints").asLong())
                .isEqualTo(2 * perLayer);
        // auto: this JVM's heap holds all three layers' outputs, so it keeps them all and says so
        String[] auto = {"train", "--device", "cpu", "--model", model.toString(), "--context", "300", "--steps", "1",
                "--examples", "2", "--precision", "bf16", "--json", "--offload", "parameters,checkpoints", "--keep-attention", "auto"};
        CommandLineTest.Result r = CommandLineTest.run(auto);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("--keep-attention auto: the first 3 of 3 layers");
        JsonNode all = new ObjectMapper().readTree(r.out().split("\n")[0]);
        assertThat(all.at("/host_memory/checkpoints").asLong() - recomputed.at("/host_memory/checkpoints").asLong())
                .isEqualTo(3 * perLayer);
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--model", model.toString(),
                "--offload", "checkpoints", "--keep-attention", "4", "--steps", "1"), "--keep-attention 4", "0 to 3");
    }

    /**
     * --resident-layers and --resident-embedding: the same loss, the resident layers' and the embedding's weights
     * (and their optimizer state) on the device instead of the host, refused without offloaded parameters.
     */
    @Test
    void residentLayersAndEmbeddingStayOnTheDevice() throws Exception {
        JsonNode offloaded = firstStep("--offload", "parameters,checkpoints");
        JsonNode resident = firstStep("--offload", "parameters,checkpoints", "--resident-layers", "1", "--resident-embedding");
        assertThat(resident.get("loss").asDouble()).isEqualTo(offloaded.get("loss").asDouble());
        long layer = 32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 32 * 64 + 2 * 32, embedding = 128256L * 32;
        assertThat(offloaded.at("/host_memory/weights").asLong() - resident.at("/host_memory/weights").asLong())
                .isEqualTo(2 * (layer + embedding));
        assertThat(offloaded.at("/host_memory/optimizer").asLong() - resident.at("/host_memory/optimizer").asLong())
                .isEqualTo(12 * (layer + embedding));
        assertThat(resident.at("/memory/optimizer").asLong()).isEqualTo(12 * (layer + embedding));
        // where the step's wall time went: the device's idle time before units' work, by kind (no host AdamW before
        // the first step, so no host_update_s)
        assertThat(resident.at("/idle_s/backward layers").isNumber()).as(resident.toString()).isTrue();
        assertThat(resident.at("/idle_s/forward layers").asDouble()).isNotNegative();
        assertThat(resident.has("host_update_s")).isFalse();
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--model", model.toString(),
                "--resident-layers", "1", "--steps", "1"), "--resident-layers", "--offload parameters");
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--model", model.toString(),
                "--offload", "parameters", "--resident-layers", "4", "--steps", "1"), "--resident-layers 4", "0 to 3");
    }

    @Test
    void conflictingChoicesAreRefused() {
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--offload", "parameters",
                "--optimizer", "device", "--steps", "1"), "--optimizer device", "--offload parameters");
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--offload", "checkpoints",
                "--checkpointing", "device", "--steps", "1"), "--checkpointing device");
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--offload", "activations",
                "--steps", "1"), "--offload activations", "parameters, optimizer or checkpoints");
    }

    @Test
    void anOffloadedRunResumesOffloadedAndBitExactly() throws Exception {
        String[] common = {"--device", "cpu", "--context", "300", "--examples", "2", "--json"};
        CommandLineTest.Result two = CommandLineTest.run(concat(new String[] {"train", "--model", model.toString(),
                "--steps", "2", "--precision", "bf16", "--offload", "parameters"}, common));
        assertThat(two.code()).as(two.err()).isZero();
        CommandLineTest.Result first = CommandLineTest.run(concat(new String[] {"train", "--model", model.toString(),
                "--steps", "1", "--precision", "bf16", "--offload", "parameters", "--save", dir.resolve("ckpt").toString()}, common));
        assertThat(first.code()).as(first.err()).isZero();
        assertThat(new ObjectMapper().readTree(dir.resolve("ckpt/trainer_state.json").toFile()).get("parameter_placement").asText())
                .isEqualTo("host");
        CommandLineTest.Result resumed = CommandLineTest.run(concat(new String[] {"train", "--resume", dir.resolve("ckpt").toString(),
                "--steps", "1"}, common));
        assertThat(resumed.code()).as(resumed.err()).isZero();
        JsonNode second = new ObjectMapper().readTree(two.out().split("\n")[1]);
        JsonNode again = new ObjectMapper().readTree(resumed.out().split("\n")[0]);
        assertThat(again.get("step").asInt()).isEqualTo(2);
        assertThat(again.get("loss").asDouble()).isEqualTo(second.get("loss").asDouble());
        assertThat(again.at("/host_memory/weights").asLong()).isPositive();
    }

    static String[] concat(String[] a, String[] b) {
        return java.util.stream.Stream.concat(java.util.Arrays.stream(a), java.util.Arrays.stream(b)).toArray(String[]::new);
    }
}
