package dev.longtune.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** environment/fetch-tokenizer.sh, without the network: it refuses the repository and leaves a good file alone. */
class FetchTokenizerScriptTest {

    private static Path script() {
        Path script = RealTokenizer.fetchScript();
        assumeTrue(script != null, "environment/fetch-tokenizer.sh not found from " + Path.of("").toAbsolutePath());
        return script;
    }

    private record Run(int exit, String output) {
    }

    private static Run run(Path script, String folder) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("bash", script.toString(), folder).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new Run(p.exitValue(), out);
    }

    @Test
    void refusesAFolderInsideTheRepository() throws Exception {
        Path script = script();
        Path inside = script.getParent().getParent().resolve("toolkit").resolve("target").resolve("no-tokenizer-here");
        Run r = run(script, inside.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.output()).contains("inside the repository");
        assertThat(inside).doesNotExist();
    }

    @Test
    void leavesAnExistingTokenizerAlone(@TempDir Path dir) throws Exception {
        Path script = script();
        Path cached = TokenizerCache.llama31();
        assumeTrue(Files.isRegularFile(cached), "no cached tokenizer at " + cached);
        Files.copy(cached, dir.resolve("tokenizer.json"));
        long modified = Files.getLastModifiedTime(dir.resolve("tokenizer.json")).toMillis();
        Run r = run(script, dir.toString());
        assertThat(r.exit()).as(r.output()).isZero();
        assertThat(r.output()).contains("already present: " + dir.toRealPath().resolve("tokenizer.json"));
        assertThat(Files.getLastModifiedTime(dir.resolve("tokenizer.json")).toMillis()).isEqualTo(modified);
    }
}
