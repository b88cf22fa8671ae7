package dev.longtune.notebook;

import dev.longtune.report.Manifest;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What a notebook ran on: toolkit version, git commit, Java, OS, CPU and GPU, and its seeds. The first cell
 * of every notebook records one, so a figure can be traced to the code and machine that made it.
 */
public final class RunManifest {
    private final Map<String, Object> fields;

    private RunManifest(Map<String, Object> fields) { this.fields = fields; }

    public static RunManifest record(String notebook, Map<String, Long> seeds) {
        Map<String, Object> m = new LinkedHashMap<>(Manifest.of("notebook " + notebook, Notebook.projectRoot(), List.of()));
        m.remove("files");
        m.put("cpu", cpuModel());
        m.put("gpu", gpus());
        m.put("seeds", new LinkedHashMap<>(seeds));
        return new RunManifest(m);
    }

    public Map<String, Object> fields() { return fields; }

    public Table table() {
        StringColumn key = StringColumn.create("field"), value = StringColumn.create("value");
        fields.forEach((k, v) -> {
            key.append(k);
            value.append(String.valueOf(v));
        });
        return Table.create("run manifest").addColumns(key, value);
    }

    public Path save(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path f = dir.resolve("manifest.json");
        new com.fasterxml.jackson.databind.ObjectMapper()
                .enable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT).writeValue(f.toFile(), fields);
        return f;
    }

    static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim() + " × " + Runtime.getRuntime().availableProcessors();
                }
            }
        } catch (IOException e) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch") + " × " + Runtime.getRuntime().availableProcessors();
    }

    /** GPUs as nvidia-smi names them, or "none". */
    static String gpus() {
        try {
            Process p = new ProcessBuilder("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader")
                    .redirectErrorStream(true).start();
            String out;
            try (InputStream in = p.getInputStream()) {
                out = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
            }
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0 && !out.isBlank()) {
                return out.replace('\n', ';');
            }
        } catch (IOException e) {
            // no nvidia-smi: no GPU
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return "none";
    }

    @Override
    public String toString() { return fields.toString(); }
}
