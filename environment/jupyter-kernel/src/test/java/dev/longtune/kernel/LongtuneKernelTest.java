package dev.longtune.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import io.github.spencerpark.jupyter.kernel.LanguageInfo;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The kernel without a Jupyter connection: rendering, magics, errors, startup imports. */
class LongtuneKernelTest {
    private static LongtuneKernel kernel;

    @BeforeAll
    static void start() {
        kernel = new LongtuneKernel(Duration.ofMillis(500));
    }

    @AfterAll
    static void stop() {
        kernel.onShutdown(false);
    }

    private static String plain(DisplayData data) {
        return (String) data.getData(MIMEType.TEXT_PLAIN);
    }

    @Test
    void valuesAreRenderedAndStatementsShowNothing() throws Exception {
        assertThat(plain(kernel.eval("1 + 1"))).isEqualTo("2");
        assertThat(plain(kernel.eval("\"text\""))).isEqualTo("text");
        assertThat(kernel.eval("int quiet = 3;")).isNull();
        assertThat(kernel.eval("System.out.print(\"\")")).isNull();
    }

    @Test
    void aDisplayDataValueIsPassedOnAsItIs() throws Exception {
        DisplayData data = kernel.eval("var d = new io.github.spencerpark.jupyter.kernel.display.DisplayData(\"plain\");\n"
                + "d.putHTML(\"<b>rich</b>\");\nd");
        assertThat(plain(data)).isEqualTo("plain");
        assertThat(data.getData(MIMEType.TEXT_HTML)).isEqualTo("<b>rich</b>");
    }

    @Test
    void anImageRendersAsPng() throws Exception {
        DisplayData data = kernel.eval("new java.awt.image.BufferedImage(4, 3, java.awt.image.BufferedImage.TYPE_INT_RGB)");
        assertThat(data.hasDataForType(MIMEType.IMAGE_PNG)).isTrue();
    }

    @Test
    void theStartupScriptImportsTheToolkitAndTheJdkBasics() throws Exception {
        assertThat(plain(kernel.eval("Paths.get(\"a\", \"b\").toString()"))).isEqualTo("a/b");
        assertThat(plain(kernel.eval("new ArrayList<>(List.of(1)).size()"))).isEqualTo("1");
        assertThat(plain(kernel.eval("Precision.class.getName()"))).isEqualTo("dev.longtune.config.Precision");
    }

    @Test
    void inspectShowsSignaturesOfJdkAndToolkitMembers() {
        assertThat(plain(kernel.inspect("Math.max(", 9, false))).contains("int Math.max(int a, int b)", "double Math.max(double a, double b)");
        // a name without its parenthesis is looked up as a call; the cursor may sit inside the name
        assertThat(plain(kernel.inspect("var p = Plan.of", 15, false))).contains("Plan Plan.of(String");
        assertThat(plain(kernel.inspect("Plan.of(\"llama\")", 6, false))).contains("Plan Plan.of(String");
        assertThat(plain(kernel.inspect("String", 3, false))).contains("java.lang.String");
        assertThat(kernel.inspect("   ", 1, false)).isNull();
    }

    @Test
    void timeMagicTimesTheCellAndLsmagicAndCompletionKnowEveryMagic(@TempDir Path dir) throws Exception {
        java.io.PrintStream saved = System.out;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        System.setOut(new java.io.PrintStream(out, true));
        try {
            assertThat(plain(kernel.eval("%%time\nThread.sleep(30);\n1 + 1"))).isEqualTo("2");
            kernel.eval("%lsmagic");
        } finally {
            System.setOut(saved);
        }
        assertThat(out.toString()).containsPattern("Wall time: [0-9.]+ ms").contains("%classpath", "%jars", "%load", "%%time");
        assertThat(kernel.complete("%", 1).getReplacements()).containsExactly("%classpath", "%jars", "%maven", "%mavenRepo",
                "%lsmagic", "%load", "%timeout", "%time", "%%loadFromPOM", "%%time");
        assertThat(kernel.complete("int x = 1;\n  %%ti", 17).getReplacements()).containsExactly("%%time");
        // %load evaluates a file before the cell's code
        Path script = Files.writeString(dir.resolve("setup.jsh"), "int loadedFromFile = 41;\n");
        assertThat(plain(kernel.eval("%load " + script + "\nloadedFromFile + 1"))).isEqualTo("42");
        assertThatThrownBy(() -> kernel.eval("%load " + dir.resolve("missing.jsh"))).hasMessageContaining("no such file");
        assertThatThrownBy(() -> kernel.eval("%nosuch")).hasMessageContaining("%lsmagic lists them");
    }

    @Test
    void classpathMagicAddsAJarBuiltHere(@TempDir Path dir) throws Exception {
        Path jar = TestJars.jar(dir, "demo.Greeter",
                "package demo; public class Greeter { public String greet() { return \"hello from a jar\"; } }",
                dir.resolve("greeter.jar"));
        DisplayData data = kernel.eval("%classpath " + jar + "\nnew demo.Greeter().greet()");
        assertThat(plain(data)).isEqualTo("hello from a jar");
        assertThat(plain(kernel.eval("demo.Greeter.class.getClassLoader().getName()"))).isEqualTo("longtune-snippets");
    }

    @Test
    void jarsMagicAddsEveryJarAGlobMatches(@TempDir Path dir) throws Exception {
        TestJars.jar(dir, "one.First", "package one; public class First { public static int n() { return 1; } }",
                dir.resolve("lib/first.jar"));
        TestJars.jar(dir, "two.Second", "package two; public class Second { public static int n() { return 2; } }",
                dir.resolve("lib/second.jar"));
        DisplayData data = kernel.eval("%jars " + dir.resolve("lib") + "/*.jar\none.First.n() + two.Second.n()");
        assertThat(plain(data)).isEqualTo("3");
    }

    @Test
    void magicErrorsAreClear(@TempDir Path dir) {
        Throwable unknown = catchThrowable(() -> kernel.eval("%nosuchmagic x\n1"));
        assertThat(unknown).isInstanceOf(MagicException.class)
                .hasMessageContaining("%nosuchmagic").hasMessageContaining("%classpath").hasMessageContaining("%jars");
        assertThat(kernel.errorLines((Exception) unknown)).containsExactly(unknown.getMessage());
        assertThat(catchThrowable(() -> kernel.eval("%classpath " + dir.resolve("missing.jar"))))
                .isInstanceOf(MagicException.class).hasMessageContaining("missing.jar");
        assertThat(catchThrowable(() -> kernel.eval("%jars " + dir + "/*.jar")))
                .isInstanceOf(MagicException.class).hasMessageContaining("no file matches");
        Throwable missingFolder = catchThrowable(() -> kernel.eval("%jars " + dir.resolve("no-such-folder") + "/*.jar"));
        assertThat(missingFolder).isInstanceOf(MagicException.class).hasMessageContaining("no-such-folder");
        assertThat(kernel.errorLines((Exception) missingFolder)).containsExactly(missingFolder.getMessage());
    }

    @Test
    void errorsAreFormattedWithTheLineAndTheKernelGoesOn() throws Exception {
        Exception compile = (Exception) catchThrowable(() -> kernel.eval("int fine = 1;\nString s = 42;"));
        List<String> lines = kernel.formatError(compile);
        assertThat(lines.get(0)).contains("incompatible types: int cannot be converted to java.lang.String");
        assertThat(lines).contains("    String s = 42;", "               ^^");

        Exception runtime = (Exception) catchThrowable(() -> kernel.eval("Object o = null;\no.hashCode()"));
        assertThat(runtime).isInstanceOf(NullPointerException.class);
        assertThat(kernel.errorLines(runtime).get(0)).startsWith("java.lang.NullPointerException");
        assertThat(kernel.errorLines(runtime)).last().asString().endsWith(" line 2");

        assertThat(plain(kernel.eval("fine + 1"))).isEqualTo("2");
    }

    @Test
    void isCompleteAndCompletionIgnoreMagicLines() {
        assertThat(kernel.isComplete("%classpath some.jar\nint a = 1;")).isEqualTo("complete");
        assertThat(kernel.isComplete("%jars lib/*.jar\nif (true) {")).isEqualTo("   ");
        String code = "%jars lib/*.jar\n\"abc\".toUpperC";
        assertThat(kernel.complete(code, code.length()).getReplacements()).contains("toUpperCase(");
    }

    @Test
    void languageInfoAndBanner() {
        LanguageInfo info = kernel.getLanguageInfo();
        assertThat(info.getName()).isEqualTo("java");
        assertThat(info.getVersion()).isEqualTo(Runtime.version().toString());
        assertThat(info.getMimetype()).isEqualTo("text/x-java-source");
        assertThat(info.getFileExtension()).isEqualTo(".jshell");
        assertThat(info.getPygmentsLexer()).isEqualTo("java");
        assertThat(info.getCodemirrorMode()).isEqualTo("java");
        assertThat(kernel.getBanner()).contains("longtune");
    }

    @Test
    void renderTakesTheMimeTypesAsked() throws Exception {
        DisplayData html = kernel.eval("render(\"<b>bold</b>\", \"text/html\")");
        assertThat(html.getData(MIMEType.TEXT_HTML)).isEqualTo("<b>bold</b>");
        assertThat(html.getData(MIMEType.TEXT_PLAIN)).isNull();
        // an object rendered as text only, though its renderer knows more types
        DisplayData text = kernel.eval("render(java.util.List.of(1, 2), \"text/plain\")");
        assertThat(text.getData(MIMEType.TEXT_PLAIN)).isEqualTo("[1, 2]");
        assertThat(plain(kernel.eval("render(42).getData(io.github.spencerpark.jupyter.kernel.display.mime.MIMEType.TEXT_PLAIN)"))).isEqualTo("42");
    }

    @Test
    void evalRunsCodeBuiltInACellAndItsDeclarationsStay() throws Exception {
        // the value of the last expression comes back as a live object
        assertThat(plain(kernel.eval("var parts = List.of(\"6\", \"*\", \"7\");\neval(String.join(\" \", parts))"))).isEqualTo("42");
        // a declaration made by eval is there for the next cell
        assertThat(kernel.eval("eval(\"int fromEval = 5;\")")).isNull();
        assertThat(plain(kernel.eval("fromEval * 2"))).isEqualTo("10");
        // a nested snippet's exception and compile error reach the cell
        assertThat(catchThrowable(() -> kernel.eval("eval(\"Integer.parseInt(\\\"x\\\")\")")))
                .isInstanceOf(NumberFormatException.class);
        assertThat(catchThrowable(() -> kernel.eval("eval(\"undefinedName + 1\")"))).isInstanceOf(CompilationException.class);
        // the kernel is still usable, and a long cell that calls eval can still be interrupted
        assertThat(plain(kernel.eval("1 + eval(\"2\").hashCode()"))).isEqualTo("3");
    }

    @Test
    void aCellInterruptedWhileItsEvalRunsStops() throws Exception {
        var stopper = new Thread(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            }
            kernel.interrupt();
        });
        stopper.start();
        long started = System.nanoTime();
        Throwable t = catchThrowable(() -> kernel.eval("eval(\"while (true) { Math.sqrt(2); }\")"));
        stopper.join();
        assertThat(t).isNotNull();
        assertThat((System.nanoTime() - started) / 1e9).isLessThan(3.0);
        assertThat(plain(kernel.eval("2 + 2"))).isEqualTo("4");
    }

    @Test
    void timeOnALineTimesThatLineAndKeepsItsValue() throws Exception {
        var out = new java.io.ByteArrayOutputStream();
        var was = System.out;
        System.setOut(new java.io.PrintStream(out, true));
        try {
            assertThat(plain(kernel.eval("int before = 1;\n%time Thread.sleep(20); int timed = 6 * 7;\ntimed"))).isEqualTo("42");
            assertThat(plain(kernel.eval("%time before + timed"))).isEqualTo("43");
        } finally {
            System.setOut(was);
        }
        assertThat(out.toString()).containsPattern("Wall time: [0-9.]+ ms");
        assertThat(catchThrowable(() -> kernel.eval("%time"))).isInstanceOf(MagicException.class).hasMessageContaining("%time times");
    }

    @Test
    void aLineMagicCanStandAsAValueAndFormatStringsAreLeftAlone(@TempDir Path dir) throws Exception {
        Path jar = dir.resolve("empty.jar");
        try (var z = new java.util.zip.ZipOutputStream(Files.newOutputStream(jar))) {
            z.putNextEntry(new java.util.zip.ZipEntry("META-INF/MANIFEST.MF"));
            z.write("Manifest-Version: 1.0\n".getBytes());
        }
        Object added = kernel.eval("var jars = %jars " + jar + ";\njars");
        assertThat(plain((DisplayData) added)).contains("empty.jar");
        // "= %d" and ", %s" in strings are not magics
        assertThat(plain(kernel.eval("String.format(\"n = %d, %s\", 3, \"x\")"))).isEqualTo("n = 3, x");
        assertThat(plain(kernel.eval("int m = 17 %5;\nm"))).isEqualTo("2");
    }
}
