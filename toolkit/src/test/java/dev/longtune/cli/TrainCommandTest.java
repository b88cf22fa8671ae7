package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.data.TokenizerCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class TrainCommandTest {
    @Test
    void jsonLinesPerStepThenASummaryAndResumeContinues(@TempDir Path dir) throws Exception {
        assumeTrue(TokenizerCache.findLlama31().isPresent(), "the Llama 3.1 tokenizer is not in the cache (environment/fetch-tokenizer.sh)");
        Path model = dir.resolve("model");
        Files.createDirectories(model);
        // a very small Llama 3 shape with the real vocabulary, so a step takes a second
        Files.writeString(model.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128256, "tie_word_embeddings": true,
                 "rope_theta": 500000.0}""");
        CommandLineTest.Result r = CommandLineTest.run("train", "--model", model.toString(), "--context", "300",
                "--steps", "2", "--examples", "2", "--precision", "fp32", "--checkpointing", "offload",
                "--save", dir.resolve("ckpt").toString(), "--json", "--progress", "on");
        assertThat(r.code()).as(r.err()).isZero();
        // per-layer progress goes to stderr; stdout below is JSON lines only
        assertThat(r.err()).contains("step 1/2  forward  layer 2/2").contains("step 2/2  backward layer 2/2");
        List<JsonNode> lines = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            lines.add(new ObjectMapper().readTree(line));
        }
        assertThat(lines).hasSize(3);
        for (int i = 0; i < 2; i++) {
            JsonNode step = lines.get(i);
            assertThat(step.get("step").asInt()).isEqualTo(i + 1);
            assertThat(step.get("loss").asDouble()).isBetween(5.0, 20.0);
            assertThat(step.get("tokens_per_s").asDouble()).isPositive();
            // FP32 weights: tied embedding 128256·32, per layer q 32·32 + k, v 16·32 each + o 32·32 + MLP 3·32·64
            // + norms 2·32 = 9,280, final norm 32
            assertThat(step.at("/memory/weights").asLong()).isEqualTo(4 * (128256L * 32 + 2 * 9280 + 32));
            assertThat(step.at("/host_memory/checkpoints").asLong()).isPositive(); // offloaded layer inputs
        }
        assertThat(lines.get(2).at("/summary/steps").asInt()).isEqualTo(2);
        assertThat(dir.resolve("ckpt/model.safetensors")).exists();

        CommandLineTest.Result resumed = CommandLineTest.run("train", "--resume", dir.resolve("ckpt").toString(),
                "--context", "300", "--steps", "1", "--examples", "2", "--json");
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(new ObjectMapper().readTree(resumed.out().split("\n")[0]).get("step").asInt()).isEqualTo(3);

        // a fresh run from the saved Hugging Face weights starts at step 1 with the trained model's loss level
        CommandLineTest.Result fromWeights = CommandLineTest.run("train", "--init-from", dir.resolve("ckpt").toString(),
                "--precision", "fp32", "--context", "300", "--steps", "1", "--examples", "2", "--json");
        assertThat(fromWeights.code()).as(fromWeights.err()).isZero();
        JsonNode first = new ObjectMapper().readTree(fromWeights.out().split("\n")[0]);
        assertThat(first.get("step").asInt()).isEqualTo(1);
        assertThat(first.get("loss").asDouble()).isLessThan(lines.get(0).get("loss").asDouble());
    }

    @Test
    void badInputNamesTheFix() {
        CommandLineTest.Result r = CommandLineTest.run("train", "--precision", "fp8");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("fp8").contains("bf16");
        CommandLineTest.Result q = CommandLineTest.run("train", "--model", "qwen2.5-7b", "--steps", "1");
        assertThat(q.err()).contains("biases").contains("Llama 3");
    }
}
