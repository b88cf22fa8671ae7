package dev.longtune.run;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A run's pictures, drawn from its log.jsonl when it ends: {@code loss.png} (loss by step), {@code throughput.png}
 * (tokens/s by step) and {@code memory.png} (peak bytes by category on the device and the host, by step), each
 * also as SVG.
 */
public final class RunPlots {
    private RunPlots() {}

    public static void write(RunFolder run) throws IOException {
        List<Map<String, Object>> lines = run.logLines();
        if (lines.isEmpty()) {
            return;
        }
        List<Double> steps = new ArrayList<>(), loss = new ArrayList<>(), tokens = new ArrayList<>();
        Map<String, List<Double>> memory = new LinkedHashMap<>();
        for (Map<String, Object> l : lines) {
            steps.add(number(l.get("step")));
            loss.add(number(l.get("loss")));
            tokens.add(number(l.get("tokens_per_s")));
            for (String where : new String[] {"memory", "host_memory"}) {
                if (l.get(where) instanceof Map<?, ?> m) {
                    m.forEach((c, b) -> memory.computeIfAbsent((where.equals("memory") ? "device " : "host ") + c,
                            k -> new ArrayList<>()).add(number(b) / (1L << 30)));
                }
            }
        }
        save(run, "loss", chart("Loss by step", "loss", Map.of("loss", loss), steps));
        save(run, "throughput", chart("Throughput by step", "tokens/s", Map.of("tokens/s", tokens), steps));
        Map<String, List<Double>> used = new LinkedHashMap<>();
        memory.forEach((k, v) -> {
            if (v.size() == steps.size() && v.stream().anyMatch(x -> x > 0)) {
                used.put(k, v);
            }
        });
        if (!used.isEmpty()) {
            save(run, "memory", chart("Peak memory by category, by step", "GiB", used, steps));
        }
    }

    private static XYChart chart(String title, String yTitle, Map<String, List<Double>> series, List<Double> steps) {
        XYChart c = new XYChartBuilder().width(800).height(450).title(title).xAxisTitle("step").yAxisTitle(yTitle).build();
        series.forEach((name, ys) -> c.addSeries(name, steps, ys).setMarker(steps.size() > 50 ? SeriesMarkers.NONE : SeriesMarkers.CIRCLE));
        return c;
    }

    private static void save(RunFolder run, String name, XYChart chart) throws IOException {
        saveChart(chart, run.dir().resolve(name));
    }

    /** {@code chart} as {@code path}.png and {@code path}.svg. */
    public static void saveChart(XYChart chart, java.nio.file.Path path) throws IOException {
        BitmapEncoder.saveBitmap(chart, path + ".png", BitmapEncoder.BitmapFormat.PNG);
        VectorGraphicsEncoder.saveVectorGraphic(chart, path + ".svg", VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
    }

    private static double number(Object o) { return o instanceof Number n ? n.doubleValue() : Double.NaN; }
}
