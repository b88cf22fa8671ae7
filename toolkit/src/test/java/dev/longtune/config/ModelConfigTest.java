package dev.longtune.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelConfigTest {

    /** Published parameter counts of the Hugging Face checkpoints. */
    @ParameterizedTest
    @CsvSource({
            "llama-3.1-8b, 8030261248",
            "llama-3.1-70b, 70553706496",
            "llama-3.2-1b, 1235814400",
            "llama-3.2-3b, 3212749824",
            "qwen2.5-7b, 7615616512",
            "qwen2.5-14b, 14770033664"})
    void exactParameterCounts(String name, long expected) {
        ModelConfig m = ModelCatalog.get(name);
        assertThat(m.totalParameters()).isEqualTo(expected);
        assertThat(m.parameterTensors().stream().mapToLong(ModelConfig.ParameterTensor::elements).sum())
                .isEqualTo(expected);
    }

    @Test
    void llama8bLayerAndLargestModule() {
        ModelConfig m = ModelCatalog.get("llama-3.1-8b");
        // q 4096², k and v 4096·1024, o 4096², gate/up/down 3·4096·14336, two norms
        long layer = 2L * 4096 * 4096 + 2L * 4096 * 1024 + 3L * 4096 * 14336 + 2 * 4096;
        assertThat(m.layerParameters()).isEqualTo(layer).isEqualTo(218_112_000L);
        assertThat(m.largestModuleParameters()).isEqualTo(128_256L * 4096);
        assertThat(m.lmHeadParameters()).isEqualTo(525_336_576L);
        assertThat(m.parameterTensors()).hasSize(1 + 32 * 9 + 2);
        assertThat(m.parameterTensors().get(0).name()).isEqualTo("model.embed_tokens.weight");
    }

    @Test
    void tiedEmbeddingsHaveNoLmHead() {
        ModelConfig m = ModelCatalog.get("llama-3.2-1b");
        assertThat(m.tieWordEmbeddings()).isTrue();
        assertThat(m.lmHeadParameters()).isZero();
        assertThat(m.parameterTensors()).noneMatch(t -> t.name().equals("lm_head.weight"));
        assertThat(m.headDim()).isEqualTo(64);
    }

    @Test
    void qwenHasQkvBiasesButNoOutputBias() {
        ModelConfig m = ModelCatalog.get("qwen2.5-7b");
        assertThat(m.parameterTensors()).anyMatch(t -> t.name().equals("model.layers.0.self_attn.q_proj.bias"));
        assertThat(m.parameterTensors()).noneMatch(t -> t.name().equals("model.layers.0.self_attn.o_proj.bias"));
    }

    @Test
    void readsConfigJsonFromAFolder(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("tiny-llama");
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": true}
                """);
        ModelConfig m = ModelCatalog.get(model.toString());
        assertThat(m.name()).isEqualTo("tiny-llama");
        assertThat(m.headDim()).isEqualTo(16);
        // embedding 6400 + 2 layers × (q 4096 + k,v 2·2048 + o 4096 + mlp 3·64·176 + norms 128) + final norm 64
        assertThat(m.totalParameters()).isEqualTo(6400 + 2 * (4096 + 4096 + 4096 + 3 * 64 * 176 + 128) + 64);
    }

    @Test
    void badConfigsNameTheFileAndField(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("missing.json");
        Files.writeString(missing, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4}");
        assertThatThrownBy(() -> ModelConfig.read(missing))
                .hasMessageContaining("missing.json").hasMessageContaining("intermediate_size");
        Path gpt = dir.resolve("gpt.json");
        Files.writeString(gpt, "{\"model_type\": \"gpt2\"}");
        assertThatThrownBy(() -> ModelConfig.read(gpt)).hasMessageContaining("gpt2").hasMessageContaining("llama");
        Path groups = dir.resolve("groups.json");
        Files.writeString(groups, """
                {"model_type": "llama", "hidden_size": 64, "intermediate_size": 1, "num_hidden_layers": 1,
                 "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}""");
        assertThatThrownBy(() -> ModelConfig.read(groups)).hasMessageContaining("multiple of num_key_value_heads");
    }

    @Test
    void unknownModelListsTheValidNames() {
        assertThatThrownBy(() -> ModelCatalog.get("llama-9"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("llama-9").hasMessageContaining("llama-3.1-8b").hasMessageContaining("qwen2.5-14b");
    }
}
