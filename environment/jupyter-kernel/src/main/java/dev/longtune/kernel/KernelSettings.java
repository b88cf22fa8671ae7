package dev.longtune.kernel;

import java.io.File;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel's settings from its environment (set them in the kernelspec's {@code env}, or before starting Jupyter):
 * <ul>
 *   <li>{@code LONGTUNE_CLASSPATH}: more jars or class folders for the cells, separated by {@code :}; an entry may be
 *   a glob such as {@code lib/*.jar} (as {@code %jars});</li>
 *   <li>{@code LONGTUNE_STARTUP_SCRIPT}: a .jsh file run after the kernel's own startup script (imports, helpers);</li>
 *   <li>{@code LONGTUNE_COMPILER_OPTS}: options for the cells' compiler, e.g. {@code --enable-preview --release 21};</li>
 *   <li>{@code LONGTUNE_TIMEOUT}: a cell running longer is interrupted, e.g. {@code 90s}, {@code 30m}, {@code 1h},
 *   {@code 1500ms} (a plain number is seconds); {@code 0}, {@code off} or unset: no limit. {@code %timeout} changes it
 *   in a session.</li>
 * </ul>
 */
record KernelSettings(List<String> classpath, Path startupScript, List<String> compilerOptions, Duration timeout) {
    static final KernelSettings NONE = new KernelSettings(List.of(), null, List.of(), null);

    static KernelSettings fromEnvironment(Map<String, String> env) {
        List<String> classpath = new ArrayList<>();
        String cp = env.getOrDefault("LONGTUNE_CLASSPATH", "");
        for (String entry : cp.split(File.pathSeparator)) {
            if (!entry.isBlank()) {
                classpath.add(entry.strip());
            }
        }
        String script = env.get("LONGTUNE_STARTUP_SCRIPT");
        String opts = env.getOrDefault("LONGTUNE_COMPILER_OPTS", "").strip();
        return new KernelSettings(List.copyOf(classpath), script == null || script.isBlank() ? null : Path.of(script.strip()),
                opts.isEmpty() ? List.of() : List.of(opts.split("\\s+")), timeout(env.get("LONGTUNE_TIMEOUT"), "LONGTUNE_TIMEOUT"));
    }

    private static final Pattern DURATION = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ms|s|m|h)?");

    /** A timeout as written by a user; null for none ({@code 0}, {@code off}, {@code none}, {@code -1}, blank). */
    static Duration timeout(String text, String where) {
        if (text == null) {
            return null;
        }
        String t = text.strip().toLowerCase(Locale.ROOT);
        if (t.isEmpty() || t.equals("off") || t.equals("none") || t.equals("-1") || t.equals("0")) {
            return null;
        }
        Matcher m = DURATION.matcher(t);
        if (!m.matches()) {
            throw new IllegalArgumentException(where + " " + text + ": give a duration such as 90s, 30m, 1h or 1500ms "
                    + "(a plain number is seconds), or off");
        }
        double n = Double.parseDouble(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        double millis = switch (unit) {
            case "ms" -> n;
            case "m" -> n * 60_000;
            case "h" -> n * 3_600_000;
            default -> n * 1000;
        };
        return millis <= 0 ? null : Duration.ofMillis(Math.round(millis));
    }

    static String describe(Duration d) {
        if (d == null) {
            return "off";
        }
        long ms = d.toMillis();
        return ms % 3_600_000 == 0 ? ms / 3_600_000 + "h" : ms % 60_000 == 0 ? ms / 60_000 + "m"
                : ms % 1000 == 0 ? ms / 1000 + "s" : ms + "ms";
    }
}
