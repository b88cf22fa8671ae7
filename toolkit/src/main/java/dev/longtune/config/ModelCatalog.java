package dev.longtune.config;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The model configs shipped as resources, by name, plus any {@code config.json} path. */
public final class ModelCatalog {
    public static final List<String> NAMES = List.of(
            "llama-3.1-8b", "llama-3.1-70b", "llama-3.2-1b", "llama-3.2-3b", "qwen2.5-7b", "qwen2.5-14b",
            // a Llama 3-shaped model small enough to train on the CPU: the real tokenizer, 4 layers of 256
            "tiny-llama-3");

    private ModelCatalog() {}

    /** A shipped preset by name (case-insensitive), or a path to a Hugging Face config.json / model folder. */
    public static ModelConfig get(String nameOrPath) {
        String key = nameOrPath.trim().toLowerCase();
        if (NAMES.contains(key)) {
            String resource = "/dev/longtune/models/" + key + ".json";
            try (InputStream in = ModelCatalog.class.getResourceAsStream(resource)) {
                return ModelConfig.parse(key, in, resource);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        Path path = Path.of(nameOrPath);
        if (Files.isDirectory(path)) {
            path = path.resolve("config.json");
        }
        if (Files.isRegularFile(path)) {
            try {
                return ModelConfig.read(path);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
            }
        }
        throw new IllegalArgumentException("unknown model '" + nameOrPath + "': use one of " + NAMES
                + " or the path of a Hugging Face config.json");
    }
}
