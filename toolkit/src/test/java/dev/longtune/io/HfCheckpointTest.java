package dev.longtune.io;

import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

class HfCheckpointTest {

    @TempDir
    Path dir;

    /** Tiny Llama: hidden 64, intermediate 176, 2 layers, 4 heads, 2 KV heads (head dim 16), vocab 100. */
    @ParameterizedTest
    @CsvSource({"false, BF16", "false, F32", "true, BF16", "true, F16"})
    void shardedCheckpointReadsBackIdentically(boolean tied, SafetensorsDType dtype) throws IOException {
        Path folder = dir.resolve("tiny-llama");
        TestFiles.tinyLlamaConfig(folder, tied);
        ModelConfig config = ModelConfig.read(folder.resolve("config.json"));
        Map<String, float[]> weights = randomWeights(config, new Random(tied ? 21 : 12));

        CheckpointWriter writer = CheckpointWriter.to(folder).maxShardSize(40_000).metadata("longtune.test", "tiny");
        weights.forEach((name, values) -> writer.addFloats(name, dtype, ParameterShapes.of(config).get(name), values));
        List<Path> written = writer.write();

        List<Path> shards = written.stream().filter(p -> p.toString().endsWith(".safetensors")).toList();
        assertThat(shards.size()).isGreaterThanOrEqualTo(3);
        assertThat(shards.get(0).getFileName().toString())
                .isEqualTo(String.format("model-00001-of-%05d.safetensors", shards.size()));
        assertThat(written).contains(folder.resolve("model.safetensors.index.json"));

        HfCheckpoint ckpt = HfCheckpoint.open(folder);

        assertThat(ckpt.config().tieWordEmbeddings()).isEqualTo(tied);
        assertThat(ckpt.names()).containsExactlyInAnyOrderElementsOf(weights.keySet());
        assertThat(ckpt.names()).hasSize(tied ? 1 + 2 * 9 + 1 : 1 + 2 * 9 + 2);
        assertThat(ckpt.extraTensors()).isEmpty();
        assertThat(ckpt.shards()).hasSize(shards.size());
        assertThat(ckpt.tensor("model.layers.1.self_attn.k_proj.weight").shape()).containsExactly(32, 64);
        assertThat(ckpt.tensor("model.layers.0.mlp.down_proj.weight").shape()).containsExactly(64, 176);
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            TensorEntry t = ckpt.tensor(e.getKey());
            assertThat(t.dtype()).isEqualTo(dtype);
            assertThat(ckpt.readFloats(e.getKey())).as(e.getKey()).containsExactly(stored(e.getValue(), dtype));
            assertThat(shards).contains(t.file());
        }
        CheckpointIndex index = CheckpointIndex.read(folder.resolve("model.safetensors.index.json"));
        assertThat(index.totalSize()).isEqualTo(ckpt.totalSize());
        for (SafetensorsFile shard : ckpt.shards()) {
            assertThat(shard.metadata()).containsEntry("format", "pt").containsEntry("longtune.test", "tiny");
            long data = shard.path().toFile().length() - shard.headerLength() - 8;
            // a shard stays under the limit unless one tensor alone is over it (F32 gate/up/down: 45,056 bytes)
            assertThat(data <= 40_000 || shard.names().size() == 1).as(shard.path() + ": " + data + " bytes").isTrue();
        }
    }

    @Test
    void smallModelIsWrittenAsOneFileWithoutAnIndex() throws IOException {
        Path folder = dir.resolve("single");
        TestFiles.tinyLlamaConfig(folder, true);
        ModelConfig config = ModelConfig.read(folder.resolve("config.json"));
        Map<String, float[]> weights = randomWeights(config, new Random(31));
        CheckpointWriter writer = CheckpointWriter.to(folder);
        weights.forEach((name, values) ->
                writer.addFloats(name, SafetensorsDType.F32, ParameterShapes.of(config).get(name), values));

        assertThat(writer.write()).containsExactly(folder.resolve("model.safetensors"));
        HfCheckpoint ckpt = HfCheckpoint.open(folder);

        assertThat(Files.exists(folder.resolve("model.safetensors.index.json"))).isFalse();
        assertThat(ckpt.shards()).hasSize(1);
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            assertThat(ckpt.readFloats(e.getKey())).containsExactly(e.getValue());
        }
    }

    @Test
    void indexIsWrittenAsTransformersWritesIt() throws IOException {
        Path folder = dir.resolve("index");
        Random random = new Random(41);
        CheckpointWriter.to(folder).maxShardSize(16)
                .addFloats("b", SafetensorsDType.F32, new long[] {4}, TestFiles.randomFloats(random, 4))
                .addFloats("a", SafetensorsDType.F32, new long[] {4}, TestFiles.randomFloats(random, 4))
                .write();

        assertThat(Files.readString(folder.resolve("model.safetensors.index.json"))).isEqualTo("""
                {
                  "metadata": {
                    "total_size": 32
                  },
                  "weight_map": {
                    "a": "model-00002-of-00002.safetensors",
                    "b": "model-00001-of-00002.safetensors"
                  }
                }
                """);
    }

    @Test
    void extraTensorsAreKeptAndListed() throws IOException {
        Path folder = dir.resolve("extra");
        TestFiles.tinyLlamaConfig(folder, true);
        ModelConfig config = ModelConfig.read(folder.resolve("config.json"));
        CheckpointWriter writer = CheckpointWriter.to(folder);
        randomWeights(config, new Random(51)).forEach((name, values) ->
                writer.addFloats(name, SafetensorsDType.BF16, ParameterShapes.of(config).get(name), values));
        writer.addFloats("model.layers.0.self_attn.rotary_emb.inv_freq", SafetensorsDType.F32, new long[] {8},
                TestFiles.randomFloats(new Random(52), 8));
        writer.write();

        assertThat(HfCheckpoint.open(folder).extraTensors()).containsExactly("model.layers.0.self_attn.rotary_emb.inv_freq");
    }

    @Test
    void llama8bShapesFollowPyTorchLinearLayout() {
        Map<String, long[]> shapes = ParameterShapes.of(ModelCatalog.get("llama-3.1-8b"));
        assertThat(shapes.get("model.embed_tokens.weight")).containsExactly(128256, 4096);
        assertThat(shapes.get("model.layers.31.self_attn.q_proj.weight")).containsExactly(4096, 4096);
        assertThat(shapes.get("model.layers.31.self_attn.k_proj.weight")).containsExactly(1024, 4096);
        assertThat(shapes.get("model.layers.0.self_attn.o_proj.weight")).containsExactly(4096, 4096);
        assertThat(shapes.get("model.layers.0.mlp.gate_proj.weight")).containsExactly(14336, 4096);
        assertThat(shapes.get("model.layers.0.mlp.down_proj.weight")).containsExactly(4096, 14336);
        assertThat(shapes.get("model.layers.0.input_layernorm.weight")).containsExactly(4096);
        assertThat(shapes.get("lm_head.weight")).containsExactly(128256, 4096);
        Map<String, long[]> qwen = ParameterShapes.of(ModelCatalog.get("qwen2.5-7b"));
        assertThat(qwen.get("model.layers.0.self_attn.k_proj.bias")).containsExactly(512);
    }

    /** Seeded random values for every parameter the config calls for, in its order. */
    static Map<String, float[]> randomWeights(ModelConfig config, Random random) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (ModelConfig.ParameterTensor p : config.parameterTensors()) {
            out.put(p.name(), TestFiles.randomFloats(random, (int) p.elements()));
        }
        return out;
    }

    /** The values as the dtype stores them. */
    static float[] stored(float[] values, SafetensorsDType dtype) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = switch (dtype) {
                case BF16 -> FloatCodec.bf16ToFloat(FloatCodec.floatToBf16(values[i]));
                case F16 -> FloatCodec.halfToFloat(FloatCodec.floatToHalf(values[i]));
                default -> values[i];
            };
        }
        return out;
    }
}
