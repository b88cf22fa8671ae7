package dev.longtune.report;

import dev.longtune.Version;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** What produced a result folder: toolkit version, git commit, Java, OS, command, date. */
public final class Manifest {
    private Manifest() {}

    public static Map<String, Object> of(String command, Path workingDir, List<String> files) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("toolkit_version", Version.get());
        m.put("git_commit", git(workingDir, "rev-parse", "HEAD"));
        String status = git(workingDir, "status", "--porcelain", "--untracked-files=no");
        m.put("git_dirty", status == null ? null : !status.isBlank());
        m.put("java", System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")");
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch"));
        m.put("cpu_cores", Runtime.getRuntime().availableProcessors());
        m.put("command", command);
        m.put("date", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        m.put("files", files);
        return m;
    }

    /** Output of a git command in {@code dir}, or null when git or the repository is missing. */
    static String git(Path dir, String... args) {
        try {
            List<String> cmd = new java.util.ArrayList<>(List.of("git", "-C", dir.toString()));
            cmd.addAll(List.of(args));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out;
            try (InputStream in = p.getInputStream()) {
                out = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
            }
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return null;
            }
            return out;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
