package dev.longtune.kernel;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The interrupt checks the kernel puts into a cell's loops (Thread.stop is gone after JDK 19). */
class InterruptsTest {
    static final String C = Interrupts.CHECK;

    @Test
    void everyLoopBodyStartsWithTheCheckOnTheSameLines() {
        assertThat(Interrupts.instrument("while (true) { spins++; }")).isEqualTo("while (true) { " + C + " spins++; }");
        assertThat(Interrupts.instrument("for (int i = 0; i < f(3); i++) {\n  x += i;\n}"))
                .isEqualTo("for (int i = 0; i < f(3); i++) { " + C + "\n  x += i;\n}");
        assertThat(Interrupts.instrument("do { x++; } while (x < 3);")).isEqualTo("do { " + C + " x++; } while (x < 3);");
        assertThat(Interrupts.instrument("for (var s : list) total += s.length();"))
                .isEqualTo("for (var s : list) { " + C + " total += s.length(); }");
        assertThat(Interrupts.instrument("while (it.hasNext()) it.next();")).isEqualTo("while (it.hasNext()) { " + C + " it.next(); }");
        assertThat(Interrupts.instrument("a\nb\nwhile (x) {\n}\nc").lines().count()).isEqualTo(5);
    }

    @Test
    void stringsCommentsAndNamesAreLeftAlone() {
        for (String s : new String[] {"String s = \"while (true) { }\";", "// for (;;) {\nint x = 1;", "/* do { } */ int y;",
                "var t = \"\"\"\n  for (;;) {\n  \"\"\";", "char c = '{'; int format = 2; int doSomething = 3;", "x.forEach(y -> { });"}) {
            assertThat(Interrupts.instrument(s)).isEqualTo(s);
        }
    }

    @Test
    void theCheckEndsTheLoopOnceTheThreadIsInterrupted() {
        Interrupts.check();
        Thread.currentThread().interrupt();
        try {
            assertThatThrownBy(Interrupts::check).isInstanceOf(Interrupts.Stop.class);
        } finally {
            Thread.interrupted();
        }
    }
}
