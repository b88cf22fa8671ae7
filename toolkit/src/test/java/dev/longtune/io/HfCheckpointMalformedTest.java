package dev.longtune.io;

import dev.longtune.config.ModelConfig;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

import static dev.longtune.io.SafetensorsMalformedTest.assertMalformed;

/** A checkpoint that does not match its config or index names the file, the tensor and the problem. */
class HfCheckpointMalformedTest {

    @TempDir
    Path dir;

    private Path folder;
    private ModelConfig config;
    private Map<String, float[]> weights;

    @BeforeEach
    void tinyLlama() throws IOException {
        folder = dir.resolve("tiny-llama");
        TestFiles.tinyLlamaConfig(folder, false);
        config = ModelConfig.read(folder.resolve("config.json"));
        weights = HfCheckpointTest.randomWeights(config, new Random(77));
    }

    private CheckpointWriter writerWithout(String skipped) {
        CheckpointWriter writer = CheckpointWriter.to(folder).maxShardSize(40_000);
        weights.forEach((name, values) -> {
            if (!name.equals(skipped)) {
                writer.addFloats(name, SafetensorsDType.BF16, ParameterShapes.of(config).get(name), values);
            }
        });
        return writer;
    }

    @Test
    void shapeMismatchAgainstTheConfig() throws IOException {
        String name = "model.layers.1.self_attn.o_proj.weight";
        writerWithout(name)
                .addFloats(name, SafetensorsDType.BF16, new long[] {64, 32}, TestFiles.randomFloats(new Random(1), 2048))
                .write();
        Path shard = shardOf(name);
        assertMalformed(() -> HfCheckpoint.open(folder, config), shard, name,
                "shape mismatch", "expected [64, 64]", "found [64, 32]");
    }

    @Test
    void tensorRequiredByTheConfigIsMissing() throws IOException {
        String name = "model.layers.1.mlp.up_proj.weight";
        writerWithout(name).write();
        assertMalformed(() -> HfCheckpoint.open(folder), folder.resolve("model.safetensors.index.json"), name,
                "missing", "config", "requires it");
    }

    @Test
    void lmHeadIsRequiredWhenEmbeddingsAreNotTied() throws IOException {
        writerWithout("lm_head.weight").maxShardSize(10_000_000).write();
        assertMalformed(() -> HfCheckpoint.open(folder), folder.resolve("model.safetensors"), "lm_head.weight",
                "missing", "requires it");
    }

    @Test
    void tensorNamedInTheIndexIsMissingFromItsShard() throws IOException {
        writerWithout(null).write();
        Path index = folder.resolve("model.safetensors.index.json");
        String first = CheckpointIndex.read(index).weightMap().get("model.embed_tokens.weight");
        Files.writeString(index, Files.readString(index).replace("\"weight_map\": {",
                "\"weight_map\": {\n    \"model.layers.9.mlp.gate_proj.weight\": \"" + first + "\","));
        assertMalformed(() -> HfCheckpoint.open(folder), folder.resolve(first), "model.layers.9.mlp.gate_proj.weight",
                "missing", "model.safetensors.index.json places it in this shard");
    }

    @Test
    void indexPointsToAMissingShard() throws IOException {
        writerWithout(null).write();
        Path index = folder.resolve("model.safetensors.index.json");
        String lmHeadShard = CheckpointIndex.read(index).weightMap().get("lm_head.weight");
        Files.delete(folder.resolve(lmHeadShard));
        String firstInShard = CheckpointIndex.read(index).weightMap().entrySet().stream()
                .filter(e -> e.getValue().equals(lmHeadShard)).findFirst().orElseThrow().getKey();
        assertMalformed(() -> HfCheckpoint.open(folder), index, firstInShard,
                "points to shard '" + lmHeadShard + "'", "does not exist");
    }

    @Test
    void indexThatIsNotJson() throws IOException {
        writerWithout(null).write();
        Path index = folder.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"weight_map\": {\"a\": ");
        assertMalformed(() -> HfCheckpoint.open(folder), index, null, "not valid JSON");
    }

    @Test
    void indexWithoutAWeightMap() throws IOException {
        writerWithout(null).write();
        Path index = folder.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"metadata\": {\"total_size\": 8}}");
        assertMalformed(() -> HfCheckpoint.open(folder), index, null, "no \"weight_map\"");
    }

    @Test
    void indexShardOutsideTheFolder() throws IOException {
        writerWithout(null).write();
        Path index = folder.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"weight_map\": {\"model.norm.weight\": \"../elsewhere.safetensors\"}}");
        assertMalformed(() -> HfCheckpoint.open(folder), index, "model.norm.weight", "not the name of a file");
    }

    @Test
    void integerWeightsAreRejected() throws IOException {
        String name = "model.norm.weight";
        writerWithout(name)
                .add(name, SafetensorsDType.I32, new long[] {64},
                        ByteBuffer.wrap(TestFiles.randomBytes(new Random(3), 256)))
                .write();
        Path shard = shardOf(name);
        assertMalformed(() -> HfCheckpoint.open(folder), shard, name, "dtype I32", "not a floating-point type");
    }

    @Test
    void truncatedShardIsReportedByItsOwnName() throws IOException {
        writerWithout(null).write();
        Map<String, String> weightMap = CheckpointIndex.read(folder.resolve("model.safetensors.index.json")).weightMap();
        String shardName = "model-00002-of-" + weightMap.get("lm_head.weight").substring(15);
        String firstInShard = weightMap.entrySet().stream() // one dtype: data in name order
                .filter(e -> e.getValue().equals(shardName)).findFirst().orElseThrow().getKey();
        Path shard = folder.resolve(shardName);
        long headerLength = SafetensorsFile.open(shard).headerLength();
        Files.write(shard, Arrays.copyOf(Files.readAllBytes(shard), (int) (8 + headerLength + 3)));
        assertMalformed(() -> HfCheckpoint.open(folder), shard, firstInShard, "truncated", "3 bytes of data");
    }

    @Test
    void folderWithNoWeights() throws IOException {
        assertMalformed(() -> HfCheckpoint.open(folder), folder, null, "neither model.safetensors nor");
    }

    @Test
    void folderWithNoConfig() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertMalformed(() -> HfCheckpoint.open(empty), empty.resolve("config.json"), null, "missing");
    }

    @Test
    void unusableConfig() throws IOException {
        Files.writeString(folder.resolve("config.json"), "{\"model_type\": \"llama\"}");
        assertMalformed(() -> HfCheckpoint.open(folder), folder.resolve("config.json"), null,
                "not a usable model config", "hidden_size");
    }

    private Path shardOf(String name) throws IOException {
        return folder.resolve(CheckpointIndex.read(folder.resolve("model.safetensors.index.json")).weightMap().get(name));
    }
}
