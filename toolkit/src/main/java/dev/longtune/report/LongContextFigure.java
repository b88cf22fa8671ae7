package dev.longtune.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.GpuCatalog;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.GpuRuntime;
import dev.longtune.plan.MemoryPlanner;
import dev.longtune.plan.Units;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The whole Llama 3.1 8B on one H200 capped at 16 GiB (a V100's memory) and at 48 GiB (an A6000's), everything
 * offloaded: the planner's reserved peak against context for the untiled and the sequence-tiled engine, beside what
 * the GPU measured (bench/results: the 48 GiB sweep, the 16 GiB tiled step at 131,072 tokens and the search's first
 * context that ran out of memory). The curves are recomputed with the planner of this build; the points are the
 * allocator's reserved peaks as measured. Writes {@code long-context-8b-h200.csv} and the figure as PNG, SVG and PDF:
 *
 * <pre>java -cp 'toolkit/target/lib/*:toolkit/target/classes' dev.longtune.report.LongContextFigure bench/results OUT_DIR</pre>
 */
public final class LongContextFigure {
    static final long GIB = 1L << 30;
    /** The contexts the planner's curves are drawn at: 4K … 512K. */
    static final long[] CONTEXTS = {4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288};
    static final int TILE = 8192;

    /** One row of the figure's table: a planned or a measured reserved peak ("status" says which, and any failure). */
    public record Point(long capBytes, String engine, long context, String source, long reservedBytes, String status) {}

    private LongContextFigure() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: LongContextFigure RESULTS_DIR OUT_DIR");
            System.exit(2);
        }
        Path out = Path.of(args[1]);
        Files.createDirectories(out);
        for (String f : write(Path.of(args[0]), out)) {
            System.out.println(out.resolve(f));
        }
    }

    /** The table and the figure under {@code out}; returns the file names. */
    public static List<String> write(Path results, Path out) throws IOException {
        List<Point> points = points(results);
        table(points).write().csv(out.resolve("long-context-8b-h200.csv").toFile());
        List<String> files = new ArrayList<>(List.of("long-context-8b-h200.csv"));
        files.addAll(Charts.save(chart(points), out.resolve("long-context-8b-h200")));
        return files;
    }

    /** Planned curves for both caps and both engines, then the measured points found under {@code results}. */
    public static List<Point> points(Path results) throws IOException {
        List<Point> points = new ArrayList<>();
        for (long cap : new long[] {16 * GIB, 48 * GIB}) {
            for (boolean tiled : new boolean[] {false, true}) {
                for (long context : CONTEXTS) {
                    var plan = new MemoryPlanner(EngineProfile.LONGTUNE).plan(model(), node(cap), stack(cap, tiled), context);
                    points.add(new Point(cap, engine(tiled), context, "planned", plan.gpuReservedBytes(),
                            plan.fitsGpu() ? "fits" : "does not fit"));
                }
            }
        }
        Path sweep = results.resolve("offload-8b-sweep-48gib-h200.json");
        if (Files.exists(sweep)) {
            JsonNode json = new ObjectMapper().readTree(sweep.toFile());
            for (JsonNode r : json.get("rows")) {
                points.add(new Point(json.get("cap_bytes").asLong(), engine(false), r.get("context").asLong(), "measured",
                        r.get("gpu_reserved_peak_bytes").asLong(), r.get("status").asText()));
            }
        }
        // single tiled steps (bench/long-context-8b.sh): 128K under the 16 GiB cap, 256K under the 48 GiB cap
        for (var step : List.of(Map.entry("long-8b-128k-16gib-tiled-h200.jsonl", 16 * GIB),
                Map.entry("long-8b-256k-48gib-tiled-h200.jsonl", 48 * GIB))) {
            Path file = results.resolve(step.getKey());
            if (Files.exists(file)) {
                JsonNode s = new ObjectMapper().readTree(Files.readAllLines(file).get(0));
                points.add(new Point(step.getValue(), engine(true), s.get("tokens").asLong(), "measured",
                        s.get("gpu_allocator").get("peak_reserved").asLong(), "ran"));
            }
        }
        // the 16 GiB searches (max-context --measure): the first, coarse one, then the one that found the boundary;
        // a context both tried is drawn once
        java.util.Set<Long> seen = new java.util.HashSet<>();
        points.stream().filter(p -> p.source().equals("measured") && p.capBytes() == 16 * GIB).forEach(p -> seen.add(p.context()));
        for (String name : List.of("max-context-8b-16gib-tiled-h200.json", "max-context-8b-16gib-fine-h200.json")) {
            Path search = results.resolve(name);
            if (Files.exists(search)) {
                JsonNode s = new ObjectMapper().readTree(search.toFile());
                for (JsonNode t : s.get("trials")) {
                    if (seen.add(t.get("context").asLong())) {
                        points.add(new Point(s.get("cap_bytes").asLong(), engine(true), t.get("context").asLong(), "measured",
                                t.get("reserved_peak_bytes").asLong(), t.get("trained").asBoolean() ? "ran" : "out of memory"));
                    }
                }
            }
        }
        return points;
    }

    /** The planner's longest context for a cap and engine (the dot on its curve). */
    public static long plannedMaxContext(long capBytes, boolean tiled) {
        return new ContextSearch(EngineProfile.LONGTUNE).maxContext(model(), node(capBytes), stack(capBytes, tiled));
    }

    static ModelConfig model() { return ModelCatalog.get("llama-3.1-8b"); }

    /** One H200 whose allocator is capped: the CUDA context and cuBLAS's workspace lie outside the cap. */
    static NodeProfile node(long capBytes) {
        GpuProfile h200 = GpuCatalog.get("H200");
        GpuProfile capped = h200.withMemory("H200 capped at " + Units.human(capBytes),
                capBytes + GpuRuntime.cudaContextBytes(h200) + GpuRuntime.cublasWorkspaceBytes(h200));
        return new NodeProfile("1xH200-" + Units.human(capBytes), capped, 1, 256 * GIB, 16, 20);
    }

    /** Parameters, AdamW and checkpoints offloaded (the engine stack), BF16; tiled: the MLP in 8K-token tiles. */
    static TechniqueSet stack(long capBytes, boolean tiled) {
        TechniqueSet s = Stacks.named("engine", node(capBytes), EngineProfile.LONGTUNE).withPrecision(Precision.BF16);
        return tiled ? s.withSequenceTile(TILE) : s;
    }

    static String engine(boolean tiled) { return tiled ? "tiled (--tile " + TILE + ")" : "untiled"; }

    public static Table table(List<Point> points) {
        return Table.create("long-context-8b-h200",
                LongColumn.create("cap_bytes", points.stream().mapToLong(Point::capBytes).toArray()),
                StringColumn.create("engine", points.stream().map(Point::engine).toList()),
                LongColumn.create("context", points.stream().mapToLong(Point::context).toArray()),
                StringColumn.create("source", points.stream().map(Point::source).toList()),
                LongColumn.create("reserved_peak_bytes", points.stream().mapToLong(Point::reservedBytes).toArray()),
                StringColumn.create("status", points.stream().map(Point::status).toList()));
    }

    /**
     * The planner's curve per engine (the same under either cap: solid untiled, dashed tiled, in the legend its
     * longest context under each cap, a dot where it meets each cap), the measured points in their cap's colour
     * (squares: trained untiled, diamonds: trained tiled; crosses: ran out of memory, at the reserved peak they reached), and both caps as dashed
     * black lines. The memory axis stops at 64 GiB.
     */
    public static XYChart chart(List<Point> points) {
        XYChart chart = Charts.base("Llama 3.1 8B, one capped H200, all offloaded", "GiB per GPU");
        chart.getStyler().setYAxisMax(64.0);
        long[] caps = {16 * GIB, 48 * GIB};
        int i = 0;
        for (boolean tiled : new boolean[] {false, true}) {
            List<Point> c = points.stream().filter(p -> p.source().equals("planned") && p.capBytes() == caps[1]
                    && p.engine().equals(engine(tiled))).toList();
            long[] max = {plannedMaxContext(caps[0], tiled), plannedMaxContext(caps[1], tiled)};
            String name = String.format(Locale.ROOT, "%s: planned (fits %,d | %,d)", engine(tiled), max[0], max[1]);
            XYSeries s = chart.addSeries(name, log2(c.stream().mapToDouble(Point::context).toArray()),
                    c.stream().mapToDouble(p -> Math.min(Units.gib(p.reservedBytes()), 66.0)).toArray());
            Color color = Charts.LINE_COLORS[2 + i];
            s.setLineColor(color);
            s.setMarker(SeriesMarkers.NONE);
            s.setLineStyle(tiled ? new BasicStroke(2.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {10, 5}, 0)
                    : new BasicStroke(2.2f));
            for (int k = 0; k < 2; k++) {
                XYSeries dot = chart.addSeries(name + " dot " + k, new double[] {Math.log(max[k]) / Math.log(2)},
                        new double[] {Units.gib(caps[k])});
                dot.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                dot.setMarker(SeriesMarkers.CIRCLE);
                dot.setMarkerColor(color);
                dot.setShowInLegend(false);
            }
            i++;
        }
        Map<String, List<Point>> measured = new LinkedHashMap<>();
        for (Point p : points) {
            if (p.source().equals("measured")) {
                String key = p.engine() + String.format(Locale.ROOT, ", %d GiB cap", p.capBytes() / GIB)
                        + (p.status().equals("ran") ? ": measured" : ": out of memory");
                measured.computeIfAbsent(key, k -> new ArrayList<>()).add(p);
            }
        }
        for (var e : measured.entrySet()) {
            List<Point> m = e.getValue();
            XYSeries s = chart.addSeries(e.getKey(), log2(m.stream().mapToDouble(Point::context).toArray()),
                    m.stream().mapToDouble(p -> Units.gib(p.reservedBytes())).toArray());
            s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            boolean tiledRun = m.get(0).engine().equals(engine(true));
            s.setMarker(!m.get(0).status().equals("ran") ? SeriesMarkers.CROSS : tiledRun ? SeriesMarkers.DIAMOND : SeriesMarkers.SQUARE);
            s.setMarkerColor(m.get(0).capBytes() == caps[0] ? Charts.LINE_COLORS[1] : Charts.LINE_COLORS[0]);
        }
        double[] x = log2(java.util.Arrays.stream(CONTEXTS).asDoubleStream().toArray());
        Charts.capacity(chart, x, 16, "cap of a V100");
        Charts.capacity(chart, x, 48, "cap of an A6000");
        Charts.note(chart, "fits: the planner's longest context under 16 | 48 GiB; points: reserved on the H200 "
                + "(the 48 GiB sweep kept blocks cached across contexts)");
        return chart;
    }

    private static double[] log2(double[] contexts) {
        return java.util.Arrays.stream(contexts).map(c -> Math.log(c) / Math.log(2)).toArray();
    }
}
