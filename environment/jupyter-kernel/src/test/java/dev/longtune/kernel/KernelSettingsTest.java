package dev.longtune.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The kernel's environment settings (class path, startup script, compiler options, cell timeout) and %timeout. */
class KernelSettingsTest {
    @Test
    void settingsAreReadFromTheEnvironment() {
        KernelSettings s = KernelSettings.fromEnvironment(Map.of("LONGTUNE_CLASSPATH", "a.jar:lib/*.jar:", "LONGTUNE_STARTUP_SCRIPT",
                "init.jsh", "LONGTUNE_COMPILER_OPTS", " -parameters  -Xlint:none ", "LONGTUNE_TIMEOUT", "90s"));
        assertThat(s.classpath()).containsExactly("a.jar", "lib/*.jar");
        assertThat(s.startupScript()).isEqualTo(Path.of("init.jsh"));
        assertThat(s.compilerOptions()).containsExactly("-parameters", "-Xlint:none");
        assertThat(s.timeout()).isEqualTo(Duration.ofSeconds(90));
        assertThat(KernelSettings.fromEnvironment(Map.of())).isEqualTo(KernelSettings.NONE);
        assertThat(KernelSettings.timeout("1500ms", "x")).isEqualTo(Duration.ofMillis(1500));
        assertThat(KernelSettings.timeout("30m", "x")).isEqualTo(Duration.ofMinutes(30));
        assertThat(KernelSettings.timeout("2", "x")).isEqualTo(Duration.ofSeconds(2));
        assertThat(KernelSettings.timeout("1h", "x")).isEqualTo(Duration.ofHours(1));
        for (String none : new String[] {"off", "0", "-1", "none", " "}) {
            assertThat(KernelSettings.timeout(none, "x")).isNull();
        }
        assertThatThrownBy(() -> KernelSettings.timeout("soon", "LONGTUNE_TIMEOUT")).hasMessageContaining("LONGTUNE_TIMEOUT soon")
                .hasMessageContaining("90s");
        assertThat(KernelSettings.describe(Duration.ofMinutes(30))).isEqualTo("30m");
        assertThat(KernelSettings.describe(null)).isEqualTo("off");
    }

    @Test
    void aKernelStartsWithTheSettingsClassPathScriptAndCompilerOptions(@TempDir Path dir) throws Exception {
        TestJars.jar(dir, "extra.Tool", "package extra; public class Tool { public static int n() { return 7; } }",
                dir.resolve("lib/tool.jar"));
        Path script = Files.writeString(dir.resolve("init.jsh"), "int fromStartup = extra.Tool.n() * 6;\n");
        LongtuneKernel kernel = new LongtuneKernel(Duration.ofMillis(500), new KernelSettings(
                List.of(dir.resolve("lib") + "/*.jar"), script, List.of("-parameters"), null));
        try {
            assertThat(plain(kernel.eval("fromStartup"))).isEqualTo("42");
            // -parameters keeps parameter names in the cells' classes
            assertThat(plain(kernel.eval("class P { void f(int width) {} }\nP.class.getDeclaredMethod(\"f\", int.class)"
                    + ".getParameters()[0].getName()"))).isEqualTo("width");
        } finally {
            kernel.onShutdown(false);
        }
    }

    @Test
    void aCellPastItsTimeoutIsInterruptedAndTheKernelGoesOn() throws Exception {
        LongtuneKernel kernel = new LongtuneKernel(Duration.ofMillis(500), new KernelSettings(List.of(), null, List.of(),
                Duration.ofMillis(400)));
        try {
            long start = System.nanoTime();
            Throwable t = catchThrowable(() -> kernel.eval("long n = 0;\nwhile (true) { n++; }"));
            double seconds = (System.nanoTime() - start) / 1e9;
            assertThat(t).isInstanceOf(CellInterruptedException.class).hasMessageContaining("timeout of 400ms")
                    .hasMessageContaining("%timeout");
            assertThat(seconds).isLessThan(3.0);
            assertThat(plain(kernel.eval("1 + 1"))).isEqualTo("2");
            // %timeout changes it: off lets a cell run past 400 ms
            kernel.eval("%timeout off");
            assertThat(plain(kernel.eval("Thread.sleep(700);\n3"))).isEqualTo("3");
            kernel.eval("%timeout 300ms");
            assertThat(catchThrowable(() -> kernel.eval("Thread.sleep(5000);"))).hasMessageContaining("timeout of 300ms");
            assertThat(catchThrowable(() -> kernel.eval("%timeout later"))).isInstanceOf(MagicException.class)
                    .hasMessageContaining("%timeout later");
        } finally {
            kernel.onShutdown(false);
        }
    }

    private static String plain(DisplayData data) {
        return String.valueOf(data.getData(MIMEType.TEXT_PLAIN));
    }
}
