package dev.longtune.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.plan.Units;
import dev.longtune.report.MeasuredSweep;
import dev.longtune.tensor.MemoryCategory;
import org.knowm.xchart.BitmapEncoder;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * {@link OffloadSweep}'s JSON as the study's table and figure: {@code offload-sweep.csv} (measured and planned bytes
 * by category, the error, times) and {@code offload-sweep.png} (measured, planned and reserved peak against context,
 * with the cap). Runs where the full toolkit is (the GPU bundle leaves out Tablesaw and XChart):
 *
 * <pre>java -cp 'toolkit/target/lib/*:toolkit/target/classes' dev.longtune.bench.OffloadSweepReport offload-sweep.json OUT_DIR</pre>
 */
public final class OffloadSweepReport {
    private OffloadSweepReport() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: OffloadSweepReport offload-sweep.json OUT_DIR");
            System.exit(2);
        }
        JsonNode json = new ObjectMapper().readTree(Path.of(args[0]).toFile());
        List<MeasuredSweep.Row> rows = rows(json);
        Path out = Path.of(args[1]);
        MeasuredSweep.table(rows).write().csv(out.resolve("offload-sweep.csv").toFile());
        BitmapEncoder.saveBitmap(MeasuredSweep.chart(json.get("model").asText() + " offloaded, one GPU capped at " + json.get("cap").asText() + ": measured and planned peak", rows,
                        Units.gib(json.get("cap_bytes").asLong()), "cap " + json.get("cap").asText()),
                out.resolve("offload-sweep").toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    static List<MeasuredSweep.Row> rows(JsonNode json) {
        List<MeasuredSweep.Row> rows = new ArrayList<>();
        for (JsonNode r : json.get("rows")) {
            String status = r.get("status").asText();
            rows.add(new MeasuredSweep.Row(r.get("context").asLong(), categories(r.get("gpu_measured")),
                    r.get("gpu_measured_peak_bytes").asLong(), categories(r.get("gpu_planned")),
                    r.get("gpu_planned_peak_bytes").asLong(), r.get("gpu_reserved_peak_bytes").asLong(),
                    r.get("step_s").asDouble(), r.get("busy_s").asDouble(), status.equals("ran") ? null : status,
                    categories(r.get("host_measured")), categories(r.get("host_planned"))));
        }
        return rows;
    }

    private static Map<MemoryCategory, Long> categories(JsonNode byId) {
        Map<MemoryCategory, Long> out = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            if (byId != null && byId.has(c.id)) {
                out.put(c, byId.get(c.id).asLong());
            }
        }
        return out;
    }
}
