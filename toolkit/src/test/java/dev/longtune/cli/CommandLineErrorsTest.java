package dev.longtune.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every expected failure of the command line prints one line that names the input and exits 2, without a
 * stack trace; {@code --verbose} adds the trace.
 */
class CommandLineErrorsTest {
    @TempDir Path dir;

    static void assertOneLine(CommandLineTest.Result r, String... mentions) {
        assertThat(r.code()).as(r.err()).isEqualTo(LongtuneCommand.BAD_INPUT);
        assertThat(r.err().strip().lines()).as(r.err()).hasSize(1);
        assertThat(r.err()).doesNotContain("\tat ").doesNotContain("Exception");
        assertThat(r.err()).contains(mentions);
    }

    @Test
    void resumeFromAMissingFolder() {
        Path missing = dir.resolve("nonexistent");
        assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--resume", missing.toString()),
                "--resume", missing.toString(), "no such folder", "train --save");
    }

    @Test
    void resumeFromAFolderThatIsNoSavedRun() {
        assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--resume", dir.toString()),
                dir.toString(), "trainer_state.json", "train --save");
    }

    @Test
    void inspectAFolderWithoutConfig() throws IOException {
        Path tokens = Files.writeString(dir.resolve("tokens.txt"), "1 2 3\n");
        assertOneLine(CommandLineTest.run("inspect", "--device", "cpu", "--checkpoint", dir.toString(), "--tokens", tokens.toString()),
                dir.resolve("config.json").toString(), "missing");
    }

    @Test
    void initFromAMalformedConfig() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{ not json");
        assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--init-from", dir.toString(), "--steps", "1"),
                dir.resolve("config.json").toString());
    }

    @Test
    void badOptionValues() {
        assertOneLine(CommandLineTest.run("train", "--steps", "abc"), "--steps", "abc", "longtune train --help");
        assertOneLine(CommandLineTest.run("train", "--device", "tpu", "--steps", "1"), "--device tpu", "cpu, cuda or auto");
        assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--precision", "fp8", "--steps", "1"), "fp8");
        assertOneLine(CommandLineTest.run("plan", "--node", "study-8xV100", "--context", "lots"), "lots");
        assertOneLine(CommandLineTest.run("train", "--no-such-option"), "--no-such-option");
    }

    @Test
    void verboseAddsTheStackTraceWhereverItIsGiven() {
        for (String[] args : new String[][] {
                {"--verbose", "train", "--device", "cpu", "--resume", dir.toString()},
                {"train", "--verbose", "--device", "cpu", "--resume", dir.toString()}}) {
            CommandLineTest.Result r = CommandLineTest.run(args);
            assertThat(r.code()).isEqualTo(LongtuneCommand.BAD_INPUT);
            assertThat(r.err()).contains("trainer_state.json").contains("\tat dev.longtune.");
        }
    }

    @Test
    void aBugIsNotDisguisedAsBadInput() {
        assertThat(LongtuneCommand.expectedFailure(new NullPointerException("x"))).isNull();
        assertThat(LongtuneCommand.expectedFailure(new IllegalArgumentException("--x y: use z"))).isEqualTo("--x y: use z");
        assertThat(LongtuneCommand.expectedFailure(new java.io.UncheckedIOException(new java.nio.file.NoSuchFileException("/a/b"))))
                .contains("/a/b").contains("no such file");
    }
}
