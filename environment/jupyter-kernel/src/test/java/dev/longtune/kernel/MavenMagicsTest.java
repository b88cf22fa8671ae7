package dev.longtune.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * %maven, %mavenRepo and %%loadFromPOM against a repository written here (a file:// URL, so no network): an artifact
 * whose class needs a second one it declares in its POM, resolved with Maven's resolver into a local repository of
 * the test's own.
 */
class MavenMagicsTest {
    @TempDir static Path dir;
    private static LongtuneKernel kernel;
    private static String savedLocal;
    private static Path remote;

    @BeforeAll
    static void start() throws Exception {
        savedLocal = System.getProperty("maven.repo.local");
        System.setProperty("maven.repo.local", dir.resolve("local").toString());
        remote = dir.resolve("remote");
        // demo:name:2.0 and demo:greeter:1.0, which depends on it
        Path nameJar = remote.resolve("demo/name/2.0/name-2.0.jar");
        TestJars.jar(dir, "names.Name", "package names; public class Name { public static String of() { return \"maven\"; } }", nameJar);
        Files.writeString(remote.resolve("demo/name/2.0/name-2.0.pom"), pom("name", "2.0", ""));
        Path classes = dir.resolve("classes-names.Name");
        Path greeterSrc = dir.resolve("src-greeter/greeter/Greeter.java");
        Files.createDirectories(greeterSrc.getParent());
        Files.writeString(greeterSrc, "package greeter; public class Greeter { public static String greet() { return \"hello from \" + names.Name.of(); } }");
        Path out = dir.resolve("classes-greeter");
        Files.createDirectories(out);
        int rc = javax.tools.ToolProvider.getSystemJavaCompiler().run(null, null, null, "-cp", classes.toString(), "-d",
                out.toString(), greeterSrc.toString());
        assertThat(rc).isZero();
        Path greeterJar = remote.resolve("demo/greeter/1.0/greeter-1.0.jar");
        Files.createDirectories(greeterJar.getParent());
        try (var jar = new java.util.jar.JarOutputStream(Files.newOutputStream(greeterJar))) {
            jar.putNextEntry(new java.util.jar.JarEntry("greeter/Greeter.class"));
            jar.write(Files.readAllBytes(out.resolve("greeter/Greeter.class")));
            jar.closeEntry();
        }
        Files.writeString(remote.resolve("demo/greeter/1.0/greeter-1.0.pom"), pom("greeter", "1.0",
                "<dependencies><dependency><groupId>demo</groupId><artifactId>name</artifactId><version>2.0</version></dependency></dependencies>"));
        kernel = new LongtuneKernel(Duration.ofMillis(500));
    }

    @AfterAll
    static void stop() {
        kernel.onShutdown(false);
        if (savedLocal == null) {
            System.clearProperty("maven.repo.local");
        } else {
            System.setProperty("maven.repo.local", savedLocal);
        }
    }

    static String pom(String artifact, String version, String extra) {
        return "<project><modelVersion>4.0.0</modelVersion><groupId>demo</groupId><artifactId>" + artifact
                + "</artifactId><version>" + version + "</version>" + extra + "</project>";
    }

    private static String plain(DisplayData data) {
        return String.valueOf(data.getData(MIMEType.TEXT_PLAIN));
    }

    @Test
    void mavenResolvesAnArtifactWithWhatItsPomDeclares() throws Exception {
        String printed = capture(() -> kernel.eval("%mavenRepo here " + remote.toUri() + "\n%maven demo:greeter:1.0"));
        assertThat(printed).contains("added demo:greeter:jar:1.0").contains("added demo:name:jar:2.0");
        assertThat(plain(kernel.eval("greeter.Greeter.greet()"))).isEqualTo("hello from maven");
        // cached where the local repository is
        assertThat(dir.resolve("local/demo/name/2.0/name-2.0.jar")).exists();
    }

    @Test
    void loadFromPomTakesAPomFragmentWithItsRepositories() throws Exception {
        String cell = "%%loadFromPOM\n<dependencies>\n  <dependency><groupId>demo</groupId><artifactId>name</artifactId>"
                + "<version>2.0</version></dependency>\n  <dependency><groupId>junit</groupId><artifactId>junit</artifactId>"
                + "<version>0</version><scope>test</scope></dependency>\n</dependencies>\n<repositories><repository><id>here</id>"
                + "<url>" + remote.toUri() + "</url></repository></repositories>";
        String printed = capture(() -> kernel.eval(cell));
        assertThat(printed).contains("added demo:name:jar:2.0").doesNotContain("junit:junit");
        assertThat(plain(kernel.eval("names.Name.of()"))).isEqualTo("maven");
    }

    @Test
    void whatCannotBeResolvedIsSaidInOneMessage() {
        Throwable missing = catchThrowable(() -> kernel.eval("%mavenRepo here " + remote.toUri() + "\n%maven demo:absent:9.9"));
        assertThat(missing).isInstanceOf(MagicException.class).hasMessageContaining("%maven demo:absent:9.9")
                .hasMessageContaining("demo:absent").hasMessageContaining("searched");
        assertThat(catchThrowable(() -> kernel.eval("%maven not-coordinates"))).hasMessageContaining("is not group:artifact:version");
        assertThat(catchThrowable(() -> kernel.eval("%%loadFromPOM\n<dependency><groupId>x</groupId>")))
                .hasMessageContaining("not well-formed XML");
        assertThat(catchThrowable(() -> kernel.eval("%%loadFromPOM\n<dependencies/>"))).hasMessageContaining("no <dependency>");
    }

    interface Cell {
        void run() throws Exception;
    }

    private static String capture(Cell cell) throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true));
        try {
            cell.run();
        } finally {
            System.setOut(saved);
        }
        return out.toString();
    }
}
