package dev.longtune.kernel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Debian's Jupyter driven from tests: a kernelspec in a temporary data dir, and processes with a timeout. */
final class JupyterTestSupport {
    static final Path PYTHON = Path.of("/usr/bin/python3");
    static final Path JUPYTER = Path.of("/usr/bin/jupyter");

    record Result(int exitCode, String output) {}

    private JupyterTestSupport() {}

    static void assumeJupyter(Path dir) throws IOException, InterruptedException {
        String missing = whatJupyterLacks(dir);
        assumeTrue(missing == null, missing);
    }

    /** Why Debian's Jupyter cannot run here, or null when it can. */
    static String whatJupyterLacks(Path dir) throws IOException, InterruptedException {
        if (!Files.isExecutable(JUPYTER) || !Files.isExecutable(PYTHON)) {
            return "Jupyter is not installed";
        }
        if (run(dir, Map.of(), 60, PYTHON.toString(), "-c", "import jupyter_client, nbclient").exitCode != 0) {
            return "jupyter_client or nbclient is not installed for /usr/bin/python3";
        }
        return null;
    }

    /** Installs the "longtune" kernelspec into {@code data} with this JVM and this test's class path. */
    static Result installKernel(Path dir, Path data) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        return run(dir, Map.of("LONGTUNE_KERNEL_CLASSPATH", System.getProperty("java.class.path"),
                "LONGTUNE_KERNEL_JAVA", java), 60, "bash", installScript().toString(), data.toString());
    }

    /** Environment that makes Jupyter see only the temporary data dir's kernels. */
    static Map<String, String> jupyterEnv(Path dir, Path data) throws IOException {
        Path runtime = Files.createDirectories(dir.resolve("runtime"));
        return Map.of("JUPYTER_PATH", data.toString(), "JUPYTER_DATA_DIR", data.toString(),
                "JUPYTER_RUNTIME_DIR", runtime.toString());
    }

    static Path moduleDir() { return Path.of(System.getProperty("basedir", System.getProperty("user.dir"))); }

    static Path installScript() { return moduleDir().resolve("../install-kernel.sh").normalize(); }

    static Path notebooksDir() { return moduleDir().resolve("../../notebooks").normalize(); }

    static Result run(Path dir, Map<String, String> env, int timeoutSeconds, String... command)
            throws IOException, InterruptedException {
        Path log = Files.createTempFile(dir, "process", ".log");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            return new Result(-1, "timed out after " + timeoutSeconds + " s\n" + Files.readString(log, StandardCharsets.UTF_8));
        }
        return new Result(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    }
}
