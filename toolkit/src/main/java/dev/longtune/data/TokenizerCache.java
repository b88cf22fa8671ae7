package dev.longtune.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Where tokenizer files live on this machine: outside the repository, in the folder that
 * {@code environment/fetch-tokenizer.sh} fills.
 *
 * <p>Order: the system property {@code longtune.tokenizer}, then the environment variable
 * {@code LONGTUNE_TOKENIZER} (either names a {@code .json} file, or a folder holding {@code tokenizer.json}),
 * then {@code ${XDG_CACHE_HOME:-~/.cache}/longtune/tokenizers/llama-3.1/tokenizer.json}.
 */
public final class TokenizerCache {

    public static final String PROPERTY = "longtune.tokenizer";
    public static final String ENVIRONMENT = "LONGTUNE_TOKENIZER";

    private TokenizerCache() {
    }

    /** The folder fetch-tokenizer.sh writes to when given no argument. */
    public static Path defaultFolder() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path cache = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return cache.resolve("longtune").resolve("tokenizers").resolve("llama-3.1");
    }

    /** The Llama 3.1 {@code tokenizer.json} this machine is configured for; it may not exist yet. */
    public static Path llama31() {
        String configured = System.getProperty(PROPERTY);
        if (configured == null || configured.isBlank()) {
            configured = System.getenv(ENVIRONMENT);
        }
        if (configured == null || configured.isBlank()) {
            return defaultFolder().resolve("tokenizer.json");
        }
        Path path = Path.of(configured);
        return configured.endsWith(".json") ? path : path.resolve("tokenizer.json");
    }

    /** {@link #llama31()} when the file is there. */
    public static Optional<Path> findLlama31() {
        Path path = llama31();
        return Files.isRegularFile(path) ? Optional.of(path) : Optional.empty();
    }
}
