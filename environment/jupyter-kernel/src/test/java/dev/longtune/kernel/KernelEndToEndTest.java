package dev.longtune.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import dev.longtune.kernel.JupyterTestSupport.Result;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Installs the kernelspec into a temporary Jupyter data dir and drives the real kernel process through
 * Debian's jupyter_client: start, execute, print, error, interrupt, shut down. The kernel's class path is
 * this test's, so it runs in Maven's test phase before the jar is packaged.
 */
class KernelEndToEndTest {
    @Test
    void aNotebookFrontEndCanRunInterruptAndShutDownTheKernel(@TempDir Path dir) throws Exception {
        JupyterTestSupport.assumeJupyter(dir);

        Path data = dir.resolve("data");
        Result install = JupyterTestSupport.installKernel(dir, data);
        assertThat(install.exitCode()).as(install.output()).isZero();
        assertThat(install.output()).contains("kernels/longtune/kernel.json");
        String spec = Files.readString(data.resolve("kernels/longtune/kernel.json"));
        assertThat(spec).contains("\"display_name\": \"Java (longtune)\"", "\"interrupt_mode\": \"message\"",
                "\"-Djava.awt.headless=true\"", "\"dev.longtune.kernel.KernelMain\"", "\"{connection_file}\"");
        for (String logo : new String[] {"logo-32x32.png", "logo-64x64.png"}) {
            assertThat(Files.mismatch(data.resolve("kernels/longtune").resolve(logo),
                    JupyterTestSupport.installScript().resolveSibling("kernelspec").resolve(logo))).as(logo).isEqualTo(-1L);
        }

        Path script = dir.resolve("kernel_roundtrip.py");
        try (InputStream in = getClass().getResourceAsStream("kernel_roundtrip.py")) {
            Files.copy(in, script);
        }
        // %maven over the protocol: an artifact in a file:// repository written here, resolved into a local one
        Path remote = dir.resolve("remote");
        TestJars.jar(dir, "names.Name", "package names; public class Name { public static String of() { return \"maven\"; } }",
                remote.resolve("demo/name/2.0/name-2.0.jar"));
        Files.writeString(remote.resolve("demo/name/2.0/name-2.0.pom"), MavenMagicsTest.pom("name", "2.0", ""));
        Map<String, String> env = new java.util.HashMap<>(JupyterTestSupport.jupyterEnv(dir, data));
        env.put("LONGTUNE_MAVEN_REPO", dir.resolve("local").toString());
        env.put("ROUNDTRIP_MAVEN_REPO", remote.toUri().toString());
        Result roundtrip = JupyterTestSupport.run(dir, env, 180, JupyterTestSupport.PYTHON.toString(), script.toString());
        Map<String, String> facts = facts(roundtrip.output());
        System.out.println("longtune kernel: start (to kernel_info reply) " + facts.get("start_seconds")
                + " s, first cell " + facts.get("first_cell_seconds") + " s, next cell "
                + facts.get("second_cell_seconds") + " s, interrupt " + facts.get("interrupt_seconds") + " s; after an "
                + "interrupted training step (same counter, same memory, steps done): " + facts.get("train_after_interrupt"));

        assertThat(roundtrip.exitCode()).as(roundtrip.output()).isZero();
        assertThat(facts).as(roundtrip.output())
                .containsEntry("interrupt_mode", "message")
                .containsEntry("language", "java")
                .containsEntry("banner_mentions_longtune", "True")
                .containsEntry("one_plus_one_status", "ok")
                .containsEntry("one_plus_one", "2")
                .containsEntry("stdout", "printed from a cell\\n")
                .containsEntry("display_status", "ok")
                .containsEntry("displayed", "['shown', 'updated']")
                .containsEntry("error_status", "error")
                .containsEntry("error_ename", "IllegalStateException")
                .containsEntry("error_traceback_has_boom", "True")
                .containsEntry("after_interrupt_status", "ok")
                .containsEntry("after_interrupt", "alive")
                // a training step interrupted over the protocol counts no step and holds no more memory than before it
                .containsEntry("train_setup", "ready 1")
                .containsEntry("kernel_alive_after_shutdown", "False");
        assertThat(facts).containsEntry("maven_status", "ok").containsEntry("maven_result", "maven");
        assertThat(dir.resolve("local/demo/name/2.0/name-2.0.jar")).exists();
        // inspect, %%time and magic completion over the protocol
        assertThat(facts).containsEntry("inspect_max_found", "True").containsEntry("inspect_plan_found", "True")
                .containsEntry("time_status", "ok").containsEntry("time_result", "2")
                .containsEntry("complete_magic", "['%lsmagic']");
        // a thread a cell started, printing after that cell ended (while another ran), writes to its own cell
        assertThat(facts).containsEntry("late_output_to_its_cell", "True").containsEntry("late_next_cell_stdout", "");
        assertThat(facts.get("inspect_max")).contains("int Math.max(int a, int b)");
        assertThat(facts.get("inspect_plan")).contains("Plan Plan.of(String");
        assertThat(facts.get("time_stdout")).matches("Wall time: [0-9.]+ (ms|s)\\\\n");
        assertThat(facts.get("interrupt_status")).isIn("error", "aborted");
        assertThat(Double.parseDouble(facts.get("interrupt_seconds"))).isLessThan(5.0);
        assertThat(facts.get("train_interrupt_status")).isIn("error", "aborted");
        assertThat(facts.get("train_after_interrupt")).as("counter equals completed steps, memory as after step 1")
                .startsWith("true true ");
        assertThat(Double.parseDouble(facts.get("start_seconds"))).isLessThan(30.0);
    }

    private static Map<String, String> facts(String output) {
        Map<String, String> facts = new LinkedHashMap<>();
        for (String line : output.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                facts.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return facts;
    }
}
