package dev.longtune;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * No test class may skip itself in {@code @BeforeAll}: JUnit then aborts the class before any test starts,
 * and Surefire reports "Tests run: 0" for it, so the skipped tests and the reason vanish from the counts
 * (issue 9: {@code CudaDeviceTest}, {@code CitationEvaluationTest}, {@code NotebooksTest}). Assume in
 * {@code @BeforeEach} or in the test instead: each test then shows as skipped, with the reason.
 *
 * <p>A source scan of every {@code src/test/java} in the project: an {@code @BeforeAll} method fails it if
 * it calls JUnit's or AssertJ's {@code assumeTrue}, {@code assumeFalse}, {@code assumeThat} or
 * {@code assumingThat}, or {@code Assumptions.…}, or calls a method of the test sources that does, at any
 * depth ({@code NativeLibrary.requireLoaded}, {@code JupyterTestSupport.assumeJupyter}). Helpers are matched
 * by name, so a call to an unrelated method of the same name counts too; the failure lists the names.
 */
class BeforeAllAssumptionsTest {
    static final Pattern ASSUMES = Pattern.compile("\\b(assumeTrue|assumeFalse|assumingThat|assumeThat)\\s*\\(|\\bAssumptions\\s*\\.");
    /** A method declaration's name and the brace that opens its body (also matches a few statements, see below). */
    static final Pattern DECLARATION = Pattern.compile("(\\w+)\\s*\\([^()]*\\)\\s*(?:throws\\s+[\\w.,\\s]+)?\\{");
    static final Set<String> STATEMENTS = Set.of("if", "for", "while", "switch", "catch", "synchronized", "try");
    static final Pattern BEFORE_ALL = Pattern.compile("@BeforeAll\\b");
    /** Tests are not called from other code; leaving them out keeps their names from matching unrelated calls. */
    static final Pattern TEST = Pattern.compile("@(Test|ParameterizedTest|RepeatedTest|TestFactory|TestTemplate)\\b");

    @Test
    void noTestClassAssumesInBeforeAll() {
        Map<Path, String> sources = testSources(projectRoot());
        assertThat(sources.keySet()).as("the scan sees both modules' tests")
                .anyMatch(p -> p.endsWith(Path.of("toolkit/src/test/java/dev/longtune/cuda/CudaDeviceTest.java")))
                .anyMatch(p -> p.endsWith(Path.of("environment/jupyter-kernel/src/test/java/dev/longtune/kernel/NotebooksTest.java")));
        Set<String> helpers = methodsThatAssume(sources.values());
        List<Path> offenders = sources.keySet().stream()
                .filter(p -> assumesInBeforeAll(sources.get(p), helpers)).toList();
        assertThat(offenders).as("test classes that assume in @BeforeAll (directly or through one of %s); "
                + "assume in @BeforeEach instead, so that their tests show as skipped with the reason", helpers).isEmpty();
    }

    @Test
    void theScanFindsAnAssumptionInBeforeAllDirectlyOrThroughAHelperButNotInBeforeEach() {
        String direct = """
                class CudaDeviceTest {
                    @BeforeAll
                    static void needsAGpu() {
                        assumeTrue(Cuda.available(), () -> "no GPU: " + Cuda.whyUnavailable());
                    }
                    @Test void runs() { if (x) { y(); } }
                    @Test void skips() { assumeTrue(false); }
                    @ParameterizedTest @ValueSource(strings = {"a", "b"}) void skipsToo(String s) { assumeTrue(false); }
                }""";
        String helper = """
                final class NativeLibrary {
                    static void requireLoaded() {
                        boolean linuxX64 = "{".isEmpty(); // a brace in a string or a comment: }
                        check(linuxX64);
                    }
                    static void check(boolean b) { Assumptions.assumeTrue(b, "native CPU kernels are built for linux-x86_64 only"); }
                }""";
        String viaHelper = """
                class NativeCpuOpsTest {
                    @BeforeAll
                    static void nativeLibraryLoads() throws Exception {
                        NativeLibrary.requireLoaded();
                    }
                }""";
        Set<String> helpers = methodsThatAssume(List.of(direct, helper, viaHelper));
        assertThat(helpers).contains("needsAGpu", "check", "requireLoaded", "nativeLibraryLoads").doesNotContain("runs", "skips", "skipsToo", "if");
        assertThat(assumesInBeforeAll(direct, helpers)).isTrue();
        assertThat(assumesInBeforeAll(viaHelper, helpers)).isTrue();
        assertThat(assumesInBeforeAll(direct.replace("@BeforeAll", "@BeforeEach"), helpers)).isFalse();
        assertThat(assumesInBeforeAll(viaHelper.replace("@BeforeAll", "@BeforeEach"), helpers)).isFalse();
    }

    /** Whether an {@code @BeforeAll} method of this source assumes, itself or through one of {@code helpers}. */
    static boolean assumesInBeforeAll(String source, Set<String> helpers) {
        String code = code(source);
        Matcher m = BEFORE_ALL.matcher(code);
        while (m.find()) {
            Matcher declaration = DECLARATION.matcher(code);
            if (declaration.find(m.end()) && assumes(body(code, declaration.end() - 1), helpers)) {
                return true;
            }
        }
        return false;
    }

    /** Names of the methods in these sources that assume, directly or through another of them. */
    static Set<String> methodsThatAssume(Iterable<String> sources) {
        Map<String, List<String>> bodies = new TreeMap<>();
        for (String source : sources) {
            String code = code(source);
            Matcher m = DECLARATION.matcher(code);
            while (m.find()) {
                if (!STATEMENTS.contains(m.group(1)) && !TEST.matcher(annotations(code, m.start())).find()) {
                    bodies.computeIfAbsent(m.group(1), k -> new ArrayList<>()).add(body(code, m.end() - 1));
                }
            }
        }
        Set<String> assuming = new HashSet<>();
        for (boolean grew = true; grew; ) {
            grew = false;
            for (Map.Entry<String, List<String>> e : bodies.entrySet()) {
                if (!assuming.contains(e.getKey()) && e.getValue().stream().anyMatch(b -> assumes(b, assuming))) {
                    grew = assuming.add(e.getKey());
                }
            }
        }
        return assuming;
    }

    static boolean assumes(String body, Set<String> helpers) {
        if (ASSUMES.matcher(body).find()) {
            return true;
        }
        Matcher call = Pattern.compile("\\b(\\w+)\\s*\\(").matcher(body);
        while (call.find()) {
            if (helpers.contains(call.group(1))) {
                return true;
            }
        }
        return false;
    }

    /** The annotations and modifiers before the declaration at {@code start}: back to the last brace or semicolon. */
    static String annotations(String code, int start) {
        int i = start - 1;
        while (i >= 0 && "{};".indexOf(code.charAt(i)) < 0) {
            i--;
        }
        return code.substring(i + 1, start);
    }

    /** The text from the brace at {@code open} to its matching brace. */
    static String body(String code, int open) {
        int depth = 0;
        for (int i = open; i < code.length(); i++) {
            char c = code.charAt(i);
            if (c == '{') {
                depth++;
            } else if (c == '}' && --depth == 0) {
                return code.substring(open, i + 1);
            }
        }
        return code.substring(open);
    }

    /**
     * The source without string and char literals, comments and annotations' arguments, whose braces would
     * upset {@link #body} and {@link #annotations}.
     */
    static String code(String source) {
        return source.replaceAll("\"\"\"[\\s\\S]*?\"\"\"", "\"\"")
                .replaceAll("'(?:\\\\.|[^'\\\\\\n])'", "' '")
                .replaceAll("\"(?:\\\\.|[^\"\\\\\\n])*\"", "\"\"")
                .replaceAll("(?s)/\\*.*?\\*/", " ")
                .replaceAll("//[^\\n]*", " ")
                .replaceAll("(@\\w+)\\s*\\([^()]*\\)", "$1");
    }

    static Map<Path, String> testSources(Path root) {
        Map<Path, String> sources = new TreeMap<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : files.filter(p -> p.toString().endsWith(".java") && p.toString().contains("/src/test/java/")
                    && !p.toString().contains("/target/")).toList()) {
                sources.put(root.relativize(p), Files.readString(p));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return sources;
    }

    /** The project's root: the nearest folder at or above the working directory with the launcher and toolkit/. */
    static Path projectRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("longtune")) && Files.isDirectory(p.resolve("toolkit"))) {
                return p;
            }
        }
        throw new IllegalStateException("no project root (the longtune launcher beside toolkit/) above "
                + Path.of("").toAbsolutePath());
    }
}
