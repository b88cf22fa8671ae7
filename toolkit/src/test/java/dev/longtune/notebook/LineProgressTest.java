package dev.longtune.notebook;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/** Progress written to a log: a line per step and a last line, no carriage returns. */
class LineProgressTest {
    @Test
    void aLogGetsALinePerStepAndAFinalLine() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (Progress p = new LineProgress("study demo", 3, new PrintStream(bytes, true, StandardCharsets.UTF_8))) {
            p.step("study-8xV100 hf-deepspeed");
            p.step();
            p.step("study-4xA6000 longtune");
        }
        String log = bytes.toString(StandardCharsets.UTF_8);
        assertThat(log).doesNotContain("\r");
        assertThat(log.lines().toList()).hasSize(4).startsWith("study demo 1/3: study-8xV100 hf-deepspeed", "study demo 2/3",
                "study demo 3/3: study-4xA6000 longtune");
        assertThat(log.lines().toList().get(3)).matches("study demo done: 3/3 in [0-9.]+ s");
    }

    @Test
    void withoutATerminalStderrGetsLines() {
        // tests run without a console, as a redirected ./longtune study does
        assertThat(System.console()).isNull();
        try (Progress p = LineProgress.onStderr("x", 1)) {
            assertThat(p).isInstanceOf(LineProgress.class);
        }
    }
}
