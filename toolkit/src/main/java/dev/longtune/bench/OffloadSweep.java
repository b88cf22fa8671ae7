package dev.longtune.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.plan.Units;
import dev.longtune.report.MeasuredSweep;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The study's "memory against context length" figure, measured: the whole model with parameters, AdamW and layer
 * inputs offloaded, on the GPU present under a memory cap, one model for every context (two steps each, the second
 * kept), beside the planner's {@code longtune} curve for the same stack. Also each kept step's tokens/s and its wall
 * time over the GPU's busy time (what offloading costs). Run from the GPU bundle by {@code bench/offload-sweep.sh}.
 *
 * <pre>java -Xmx200g -cp 'lib/*' dev.longtune.bench.OffloadSweep MODEL CAP CONTEXTS OUT_DIR
 *   e.g. llama-3.1-8b 48GiB 8192,16384,32768,65536,131072 /tmp/out</pre>
 *
 * Writes offload-sweep.json (rows with host memory too) under OUT_DIR, rewritten after every context; the GPU bundle
 * has no charting or table libraries, so {@link OffloadSweepReport} turns it into CSV and PNG afterwards.
 */
public final class OffloadSweep {
    private OffloadSweep() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: OffloadSweep MODEL CAP CONTEXTS OUT_DIR  (e.g. llama-3.1-8b 48GiB 8192,32768 out)");
            System.exit(2);
        }
        ModelConfig model = ModelCatalog.get(args[0]);
        long cap = Units.parseBytes(args[1]);
        long[] contexts = Arrays.stream(args[2].split(",")).mapToLong(c -> Long.parseLong(c.trim())).toArray();
        Path out = Files.createDirectories(Path.of(args[3]));
        MeasuredSweep sweep = MeasuredSweep.offloadedOnThisGpu(model, cap);
        long started = System.nanoTime();
        // every row is written as soon as it is measured: a run stopped at 128K keeps the shorter contexts
        sweep.runOnOneModel(contexts, 1, line -> System.err.printf("[%5.0f s] %s%n", (System.nanoTime() - started) / 1e9, line),
                rows -> write(rows, sweep, model, cap, args[1], out));
    }

    private static void write(List<MeasuredSweep.Row> rows, MeasuredSweep sweep, ModelConfig model, long cap, String capText,
                              Path out) {
        try {
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("model", model.name());
            json.put("stack", sweep.describe());
            json.put("cap_bytes", cap);
            json.put("cap", capText);
            List<Map<String, Object>> list = new ArrayList<>();
            for (MeasuredSweep.Row r : rows) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("context", r.context());
                row.put("status", r.ran() ? "ran" : "out of memory: " + r.outOfMemory());
                row.put("step_s", r.stepSeconds());
                row.put("busy_s", r.busySeconds());
                row.put("wall_over_busy", r.ran() ? r.wallOverBusy() : null);
                row.put("tokens_per_s", r.ran() ? r.context() / r.stepSeconds() : null);
                row.put("gpu_measured_peak_bytes", r.measuredPeak());
                row.put("gpu_planned_peak_bytes", r.plannedPeak());
                row.put("gpu_reserved_peak_bytes", r.reservedPeak());
                row.put("gpu_measured", byId(r.measured()));
                row.put("gpu_planned", byId(r.planned()));
                row.put("host_measured", byId(r.hostMeasured()));
                row.put("host_planned", byId(r.hostPlanned()));
                list.add(row);
            }
            json.put("rows", list);
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve("offload-sweep.json").toFile(), json);
            MeasuredSweep.Row r = rows.get(rows.size() - 1);
            System.err.printf("%,9d tokens: %s%n", r.context(), r.ran() ? String.format(java.util.Locale.ROOT,
                    "%.2f s (busy %.2f, ×%.3f), %.0f tokens/s, GPU peak %.2f GiB (planned %.2f), reserved %.2f GiB",
                    r.stepSeconds(), r.busySeconds(), r.wallOverBusy(), r.context() / r.stepSeconds(), Units.gib(r.measuredPeak()),
                    Units.gib(r.plannedPeak()), Units.gib(r.reservedPeak())) : "out of memory");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Map<String, Long> byId(Map<dev.longtune.tensor.MemoryCategory, Long> m) {
        Map<String, Long> out = new LinkedHashMap<>();
        m.forEach((c, v) -> out.put(c.id, v));
        return out;
    }
}
