package dev.longtune.run;

import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A run folder read back (in a notebook: {@code Run.open(Path.of("runs/a"))}): the run's config, its log as a
 * table, and its loss, throughput and memory charts, the same {@code train --run-dir} draws when it ends.
 */
public final class Run {
    private final RunFolder folder;
    private final List<Map<String, Object>> lines;

    private Run(RunFolder folder) throws IOException {
        this.folder = folder;
        this.lines = folder.logLines();
    }

    /** Reads the run folder at {@code dir} (written by {@code train --run-dir}). */
    public static Run open(Path dir) throws IOException {
        if (!java.nio.file.Files.isRegularFile(dir.resolve(RunFolder.CONFIG))) {
            throw new IllegalArgumentException(dir + " is not a run folder (no " + RunFolder.CONFIG + "): write one with train --run-dir");
        }
        return new Run(RunFolder.read(dir)); // read only: a run still writing keeps its partial save
    }

    public Path dir() { return folder.dir(); }

    /** The run's config.json. */
    public Map<String, Object> config() throws IOException { return folder.config(); }

    /** The complete checkpoints, oldest first. */
    public List<Path> checkpoints() { return folder.checkpoints(); }

    /**
     * One row per logged step: step, loss, eval loss, grad norm, learning rate, loss scale, tokens/s, MFU, seconds,
     * busy seconds, wall over busy (NaN where a step has no such figure, e.g. MFU on the CPU).
     */
    public Table log() {
        IntColumn step = IntColumn.create("step");
        Map<String, DoubleColumn> cols = new LinkedHashMap<>();
        for (String k : List.of("loss", "eval_loss", "grad_norm", "lr", "loss_scale", "tokens_per_s", "mfu", "seconds",
                "busy_s", "wall_over_busy")) {
            cols.put(k, DoubleColumn.create(k));
        }
        for (Map<String, Object> l : lines) {
            step.append((int) number(l.get("step")));
            cols.forEach((k, c) -> c.append(number(l.get(k))));
        }
        Table t = Table.create("log").addColumns(step);
        cols.values().forEach(t::addColumns);
        return t;
    }

    /** Training loss by step, and the held-out evaluation loss where it was measured. */
    public XYChart lossChart() {
        XYChart c = chart("Loss by step", "loss", Map.of("training loss", series("loss")));
        List<Double> x = new ArrayList<>(), y = new ArrayList<>();
        for (Map<String, Object> l : lines) {
            if (l.get("eval_loss") instanceof Number n) {
                x.add(number(l.get("step")));
                y.add(n.doubleValue());
            }
        }
        if (!x.isEmpty()) {
            c.addSeries("held-out loss", x, y).setMarker(SeriesMarkers.DIAMOND);
        }
        return c;
    }

    public XYChart throughputChart() { return chart("Throughput by step", "tokens/s", Map.of("tokens/s", series("tokens_per_s"))); }

    /** Each category's peak bytes per step (GiB), on the device and the host, where any was used. */
    public XYChart memoryChart() {
        Map<String, List<Double>> memory = new LinkedHashMap<>();
        for (Map<String, Object> l : lines) {
            for (String where : new String[] {"memory", "host_memory"}) {
                if (l.get(where) instanceof Map<?, ?> m) {
                    m.forEach((c, b) -> memory.computeIfAbsent((where.equals("memory") ? "device " : "host ") + c,
                            k -> new ArrayList<>()).add(number(b) / (1L << 30)));
                }
            }
        }
        Map<String, List<Double>> used = new LinkedHashMap<>();
        memory.forEach((k, v) -> {
            if (v.size() == lines.size() && v.stream().anyMatch(x -> x > 0)) {
                used.put(k, v);
            }
        });
        return chart("Peak memory by category, by step", "GiB", used);
    }

    boolean empty() { return lines.isEmpty(); }

    private List<Double> series(String key) {
        List<Double> out = new ArrayList<>();
        lines.forEach(l -> out.add(number(l.get(key))));
        return out;
    }

    private XYChart chart(String title, String yTitle, Map<String, List<Double>> series) {
        List<Double> steps = series("step");
        XYChart c = new XYChartBuilder().width(800).height(450).title(title).xAxisTitle("step").yAxisTitle(yTitle).build();
        series.forEach((name, ys) -> c.addSeries(name, steps, ys)
                .setMarker(steps.size() > 50 ? SeriesMarkers.NONE : SeriesMarkers.CIRCLE));
        return c;
    }

    private static double number(Object o) { return o instanceof Number n ? n.doubleValue() : Double.NaN; }
}
