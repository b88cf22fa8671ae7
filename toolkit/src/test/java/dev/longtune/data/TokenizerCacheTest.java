package dev.longtune.data;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class TokenizerCacheTest {

    private final String before = System.getProperty(TokenizerCache.PROPERTY);

    @AfterEach
    void restore() {
        if (before == null) {
            System.clearProperty(TokenizerCache.PROPERTY);
        } else {
            System.setProperty(TokenizerCache.PROPERTY, before);
        }
    }

    @Test
    void defaultIsOutsideTheRepositoryInTheUsersCache() {
        System.clearProperty(TokenizerCache.PROPERTY);
        assertThat(TokenizerCache.defaultFolder()).endsWith(Path.of("longtune", "tokenizers", "llama-3.1"));
        if (System.getenv(TokenizerCache.ENVIRONMENT) == null) {
            assertThat(TokenizerCache.llama31()).isEqualTo(TokenizerCache.defaultFolder().resolve("tokenizer.json"));
        }
    }

    @Test
    void aPropertyNamesTheFileOrItsFolder(@TempDir Path dir) {
        System.setProperty(TokenizerCache.PROPERTY, dir.toString());
        assertThat(TokenizerCache.llama31()).isEqualTo(dir.resolve("tokenizer.json"));
        assertThat(TokenizerCache.findLlama31()).isEmpty();
        System.setProperty(TokenizerCache.PROPERTY, dir.resolve("other.json").toString());
        assertThat(TokenizerCache.llama31()).isEqualTo(dir.resolve("other.json"));
    }
}
