package dev.longtune.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.DeepSpeedEstimate;
import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.MemoryPlanner;
import dev.longtune.plan.ThroughputModel;
import dev.longtune.plan.Units;
import dev.longtune.tensor.MemoryCategory;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The planner study: memory by category against context length for the V100 and A6000 nodes under each
 * technique stack and engine profile, charts, the max-context table, the validation against the published
 * study, DeepSpeed's estimate, and a manifest. Everything is a pure function of the code, so a re-run
 * writes identical CSVs.
 */
public final class StudyReport {
    public static final String MODEL = "llama-3.1-8b";
    public static final List<String> NODES = List.of("study-8xV100", "study-4xA6000");
    public static final List<String> STACKS = List.of(
            "baseline", "ckpt", "ckpt-offload", "liger", "fa2", "zero-offload", "all", "all-tiled", "study");
    /** The stack whose categories the stacked charts show. */
    public static final String CHART_STACK = "all";

    private final Path out;
    private final Consumer<String> progress;
    private final List<String> written = new ArrayList<>();
    private MeasuredSweep sweep;
    private long[] sweepContexts;
    private String noSweep = "not asked for";
    private Path benchResults;

    /** @param progress told the name of each unit of work as it finishes */
    public StudyReport(Path out, Consumer<String> progress) {
        this.out = out;
        this.progress = progress;
    }

    /** Context lengths from 1K to 512K in half-octave steps: 1K, 1.5K, 2K, 3K, …, 384K, 512K. */
    public static long[] contexts() {
        List<Long> c = new ArrayList<>();
        for (long p = 1024; p <= 512 * 1024; p *= 2) {
            c.add(p);
            if (p * 3 / 2 < 512 * 1024) {
                c.add(p * 3 / 2);
            }
        }
        return c.stream().mapToLong(Long::longValue).toArray();
    }

    /** Units of work, for a progress bar. */
    public static int workUnits() { return NODES.size() * EngineProfile.values().length * 2 + 4; }

    /** Also measures the engine on a device at these contexts (files {@code measured-by-context.*}). */
    public StudyReport withMeasuredSweep(MeasuredSweep sweep, long[] contexts) {
        this.sweep = sweep;
        this.sweepContexts = contexts.clone();
        return this;
    }

    /** Says in the index why nothing was measured (e.g. no GPU). */
    public StudyReport withoutMeasuredSweep(String why) {
        this.sweep = null;
        this.noSweep = why;
        return this;
    }

    /**
     * Also draws the whole 8B's measured and planned peaks under a 16 GiB and a 48 GiB cap from the results committed
     * under {@code dir} (bench/results: measured on an H200; files {@code long-context-8b-h200.*}).
     */
    public StudyReport withBenchResults(Path dir) {
        this.benchResults = dir;
        return this;
    }

    public List<String> write(String command) throws IOException {
        Files.createDirectories(out);
        ModelConfig model = ModelCatalog.get(MODEL);
        Table memory = memorySweep(model);
        save(memory, "memory-by-context.csv");
        Table max = maxContextTable(model);
        save(max, "max-context.csv");
        html(max, "max-context.html", "Max context (tokens) per technique stack, Llama 3.1 8B");
        progress.accept("max-context table");

        ValidationTable validation = new ValidationTable();
        save(validation.table(), "validation.csv");
        html(validation.table(), "validation.html", "hf-deepspeed profile against the published study");
        text("validation.txt", validation.text());
        progress.accept("validation");

        String estimate = new DeepSpeedEstimate(model, 8, 1).table() + "\n" + new DeepSpeedEstimate(model, 4, 1).table();
        text("deepspeed-estimate.txt", estimate);
        progress.accept("DeepSpeed estimate");

        Table cheapest = cheapestTable(model);
        save(cheapest, "cheapest-stack.csv");
        html(cheapest, "cheapest-stack.html", "Cheapest technique set per node and target context");
        progress.accept("cheapest stacks");

        List<MeasuredSweep.Row> measured = sweep == null ? List.of() : measure();
        if (benchResults != null) {
            written.addAll(LongContextFigure.write(benchResults, out));
        }
        index(max, validation, measured, cheapest, estimate);
        written.add("manifest.json");
        Map<String, Object> manifest = Manifest.of(command, Path.of("").toAbsolutePath(), List.copyOf(written));
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve("manifest.json").toFile(), manifest);
        return List.copyOf(written);
    }

    /** One row per node, profile, stack and context, with every category on the GPU and the host. */
    Table memorySweep(ModelConfig model) throws IOException {
        long[] contexts = contexts();
        StringColumn node = StringColumn.create("node"), profile = StringColumn.create("profile"),
                stack = StringColumn.create("stack"), techniques = StringColumn.create("techniques"),
                peakPhase = StringColumn.create("gpu_peak_phase");
        LongColumn context = LongColumn.create("context");
        Map<MemoryCategory, LongColumn> gpu = new EnumMap<>(MemoryCategory.class), host = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            gpu.put(c, LongColumn.create("gpu_" + c.id));
            host.put(c, LongColumn.create("host_" + c.id));
        }
        LongColumn gpuTotal = LongColumn.create("gpu_peak_bytes"), gpuReserved = LongColumn.create("gpu_reserved_bytes_at_least"),
                gpuSmi = LongColumn.create("gpu_nvidia_smi_bytes_at_least"), gpuCap = LongColumn.create("gpu_capacity_bytes"),
                hostTotal = LongColumn.create("host_peak_bytes"), hostCap = LongColumn.create("host_capacity_bytes");
        BooleanColumn fits = BooleanColumn.create("fits");
        DoubleColumn tokens = DoubleColumn.create("tokens_per_s");
        for (String nodeName : NODES) {
            NodeProfile n = NodeCatalog.get(nodeName);
            for (EngineProfile p : EngineProfile.values()) {
                MemoryPlanner planner = new MemoryPlanner(p);
                ThroughputModel speed = new ThroughputModel(p);
                Map<String, double[]> totalsByStack = new LinkedHashMap<>();
                Map<String, Long> maxByStack = new LinkedHashMap<>();
                Map<MemoryCategory, double[]> chartGib = new EnumMap<>(MemoryCategory.class);
                Map<MemoryCategory, double[]> chartHostGib = new EnumMap<>(MemoryCategory.class);
                for (String stackName : STACKS) {
                    TechniqueSet t = Stacks.named(stackName, n, p);
                    double[] totals = new double[contexts.length];
                    for (int i = 0; i < contexts.length; i++) {
                        MemoryPlan plan = planner.plan(model, n, t, contexts[i]);
                        node.append(nodeName);
                        profile.append(p.id);
                        stack.append(stackName);
                        techniques.append(t.describe());
                        context.append(contexts[i]);
                        peakPhase.append(plan.gpuPeakPhase().id);
                        Map<MemoryCategory, Long> g = plan.gpuAtPeak().byCategory(), h = plan.hostAtPeak().byCategory();
                        for (MemoryCategory c : MemoryCategory.values()) {
                            gpu.get(c).append(g.get(c));
                            host.get(c).append(h.get(c));
                            if (stackName.equals(CHART_STACK)) {
                                chartGib.computeIfAbsent(c, k -> new double[contexts.length])[i] = Units.gib(g.get(c));
                                chartHostGib.computeIfAbsent(c, k -> new double[contexts.length])[i] = Units.gib(h.get(c));
                            }
                        }
                        gpuTotal.append(plan.gpuPeakBytes());
                        gpuReserved.append(plan.gpuReservedBytes());
                        gpuSmi.append(plan.gpuNvidiaSmiBytes());
                        gpuCap.append(n.gpu().memoryBytes());
                        hostTotal.append(plan.hostPeakBytes());
                        hostCap.append(n.hostRamBytes());
                        fits.append(plan.fits());
                        tokens.append(Math.round(speed.estimate(model, n, t, contexts[i]).tokensPerSecond() * 10) / 10.0);
                        totals[i] = Units.gib(plan.gpuPeakBytes());
                    }
                    String series = seriesName(stackName, t);
                    totalsByStack.put(series, totals);
                    if (t.problems(n, p).isEmpty()) {
                        maxByStack.put(series, new ContextSearch(p).maxContext(model, n, t));
                    }
                }
                double[] x = java.util.Arrays.stream(contexts).asDoubleStream().toArray();
                String label = n.gpus() + "×" + n.gpu().name() + ", " + p.id;
                String shown = seriesName(CHART_STACK, Stacks.named(CHART_STACK, n, p));
                chart(Charts.stacked("GPU memory per GPU by category: stack '" + shown + "', " + label, x,
                        chartGib, n.gpu().memoryGiB(), "GPU capacity"), categoryChart("gpu", nodeName, p));
                chart(Charts.stacked("Host memory of the node by category: stack '" + shown + "', " + label, x,
                        chartHostGib, n.hostRamGiB(), "host RAM"), categoryChart("host", nodeName, p));
                progress.accept(nodeName + " " + p.id + " categories");
                chart(Charts.lines("GPU peak per technique stack, " + label, x, totalsByStack, maxByStack,
                        n.gpu().memoryGiB(), "GPU capacity"), "gpu-by-stack-" + nodeName + "-" + p.id);
                progress.accept(nodeName + " " + p.id + " stacks");
            }
        }
        Table t = Table.create("memory by context").addColumns(node, profile, stack, techniques, context, peakPhase);
        for (MemoryCategory c : MemoryCategory.values()) {
            t.addColumns(gpu.get(c));
        }
        t.addColumns(gpuTotal, gpuReserved, gpuSmi, gpuCap);
        for (MemoryCategory c : MemoryCategory.values()) {
            t.addColumns(host.get(c));
        }
        return t.addColumns(hostTotal, hostCap, fits, tokens);
    }

    /** Max context per stack (rows) for each node and profile (columns). */
    public static Table maxContextTable(ModelConfig model) {
        Table t = Table.create("max context");
        StringColumn stack = StringColumn.create("stack");
        STACKS.forEach(stack::append);
        t.addColumns(stack);
        for (String nodeName : NODES) {
            NodeProfile n = NodeCatalog.get(nodeName);
            for (EngineProfile p : EngineProfile.values()) {
                ContextSearch search = new ContextSearch(p);
                IntColumn col = IntColumn.create(nodeName + " " + p.id);
                for (String s : STACKS) {
                    col.append((int) search.maxContext(model, n, Stacks.named(s, n, p)));
                }
                t.addColumns(col);
            }
        }
        return t;
    }

    /** For 32K, 64K, 128K and 256K on each node: the cheapest set that fits under each profile. */
    public static Table cheapestTable(ModelConfig model) {
        StringColumn node = StringColumn.create("node"), profile = StringColumn.create("profile"),
                stack = StringColumn.create("cheapest techniques");
        IntColumn context = IntColumn.create("context"), offloads = IntColumn.create("offloads");
        DoubleColumn gpu = DoubleColumn.create("gpu peak GiB"), tok = DoubleColumn.create("tokens/s");
        for (String nodeName : NODES) {
            NodeProfile n = NodeCatalog.get(nodeName);
            for (EngineProfile p : EngineProfile.values()) {
                for (long c : new long[] {32768, 65536, 131072, 262144}) {
                    var found = new ContextSearch(p).cheapest(model, n, c);
                    node.append(nodeName);
                    profile.append(p.id);
                    context.append((int) c);
                    if (found.isEmpty()) {
                        stack.append("nothing fits");
                        offloads.appendMissing();
                        gpu.appendMissing();
                        tok.appendMissing();
                    } else {
                        var best = found.get(0);
                        stack.append(best.stack().describe());
                        offloads.append(best.offloads());
                        gpu.append(Math.round(Units.gib(best.plan().gpuPeakBytes()) * 100) / 100.0);
                        tok.append(Math.round(best.throughput().tokensPerSecond()));
                    }
                }
            }
        }
        return Table.create("cheapest").addColumns(node, profile, context, stack, offloads, gpu, tok);
    }

    private List<MeasuredSweep.Row> measure() throws IOException {
        List<MeasuredSweep.Row> rows = sweep.run(sweepContexts, progress);
        save(MeasuredSweep.table(rows), "measured-by-context.csv");
        chart(MeasuredSweep.chart("Measured and planned peak, " + sweep.describe(), rows,
                Units.gib(sweep.node().gpu().memoryBytes()), sweep.node().gpu().name() + " memory"), "measured-by-context");
        return rows;
    }

    /** PNG for the page, SVG and PDF for papers. */
    private void chart(XYChart chart, String name) throws IOException {
        written.addAll(Charts.save(chart, out.resolve(name)));
    }

    /** The stacked chart's file: named after the stack it shows, then the node and the profile. */
    static String categoryChart(String where, String nodeName, EngineProfile p) {
        return where + "-by-category-" + CHART_STACK + "-" + nodeName + "-" + p.id;
    }

    /**
     * A stack's name as its curve is labelled: with the attention it really runs where that is not what the name
     * says (the study ran SDPA on the V100, which has no official FlashAttention-2, so 'fa2' there is SDPA).
     */
    static String seriesName(String stackName, TechniqueSet t) {
        boolean promisesFa2 = List.of("fa2", "all", "all-tiled", "engine").contains(stackName);
        return promisesFa2 && t.attention() != dev.longtune.config.Attention.FLASH_ATTENTION_2
                ? stackName + " [" + t.attention().id + ", no FA2 here]" : stackName;
    }

    private void save(Table t, String name) throws IOException {
        t.write().csv(out.resolve(name).toFile());
        written.add(name);
    }

    private void html(Table t, String name, String title) throws IOException {
        text(name, "<!doctype html><meta charset=\"utf-8\"><title>" + title + "</title>\n<h2>" + title + "</h2>\n"
                + Html.table(t));
    }

    private void text(String name, String content) throws IOException {
        Files.writeString(out.resolve(name), content);
        written.add(name);
    }

    /** The page's look: readable type, tables with thin rules and right-aligned numbers, figures at full width. */
    static final String STYLE = "<style>body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;"
            + "padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:.5em 0 1.5em}"
            + "th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f3f3f3}figure{margin:1em 0}"
            + "figure img{width:100%;height:auto}figcaption{font-size:.9em;color:#555}pre{background:#f7f7f7;"
            + "padding:.8em;overflow-x:auto}</style>\n";

    private void index(Table max, ValidationTable validation, List<MeasuredSweep.Row> measured, Table cheapest,
                       String deepSpeedEstimate) throws IOException {
        StringBuilder sb = new StringBuilder("<!doctype html><meta charset=\"utf-8\"><title>longtune planner study</title>\n");
        sb.append(STYLE);
        sb.append("<h1>Memory planner study: Llama 3.1 8B on 8×V100 16GB and 4×A6000 48GB</h1>\n");
        sb.append("<p>Files: <a href=\"memory-by-context.csv\">memory-by-context.csv</a> (bytes per category, every node, "
                + "profile, stack and context), <a href=\"max-context.csv\">max-context.csv</a>, <a href=\"validation.csv\">"
                + "validation.csv</a>, <a href=\"cheapest-stack.csv\">cheapest-stack.csv</a>, <a href=\"deepspeed-estimate.txt\">"
                + "deepspeed-estimate.txt</a>, <a href=\"manifest.json\">manifest.json</a> (toolkit version, commit, command); "
                + "the executed notebooks, when the study ran them, in <a href=\"notebooks/\">notebooks/</a>. Figures: PNG "
                + "here, SVG and PDF under each.</p>\n");
        sb.append("<h2>Validation against the published study</h2>\n").append(Html.table(validation.table(), true));
        sb.append("<h2>Max context per technique stack</h2>\n<p>The longest context, in tokens, whose GPU peak fits the "
                + "GPU and whose host peak fits the node's RAM; <b>0</b> means not even one token fits (without ZeRO offload "
                + "a 16 GiB V100 cannot hold the 8B's model states).</p>\n").append(Html.table(max, true));
        sb.append("<h2>Cheapest technique set per node and target context</h2>\n<p>Fewest offloads first (each costs "
                + "host-link traffic or CPU time), then the fastest by the throughput model.</p>\n")
                .append(Html.table(cheapest, true));
        sb.append("<h2>DeepSpeed's own estimate of ZeRO-3 model states</h2>\n<pre>")
                .append(Html.escape(deepSpeedEstimate)).append("</pre>\n");
        sb.append("<h2>Measured on this machine's GPU</h2>\n");
        if (measured.isEmpty()) {
            sb.append("<p>Nothing measured: ").append(noSweep).append(".</p>\n");
        } else {
            sb.append("<p>").append(sweep.describe()).append(": measured by the engine's memory trackers, planned by the "
                    + "longtune profile for the same stack.</p>\n").append(Html.table(MeasuredSweep.table(measured)))
                    .append("<figure><img src=\"measured-by-context.png\"></figure>\n");
        }
        if (benchResults != null) {
            sb.append("<h2>The whole 8B under a V100's and an A6000's memory, measured on an H200</h2>\n<p>Llama 3.1 8B, "
                    + "BF16, parameters, AdamW and layer inputs offloaded, one H200 capped at 16 GiB or 48 GiB: the planner's "
                    + "reserved peak against context for the engine untiled and with the MLP in 8K-token tiles (lines), and "
                    + "what the GPU reserved in the runs committed under bench/results (points; crosses ran out of memory). "
                    + "Table: <a href=\"long-context-8b-h200.csv\">long-context-8b-h200.csv</a>.</p>\n")
                    .append("<figure><a href=\"long-context-8b-h200.pdf\"><img src=\"long-context-8b-h200.png\"></a>"
                            + "<figcaption>long-context-8b-h200: <a href=\"long-context-8b-h200.svg\">SVG</a>, "
                            + "<a href=\"long-context-8b-h200.pdf\">PDF</a></figcaption></figure>\n");
        }
        for (String nodeName : NODES) {
            for (EngineProfile p : EngineProfile.values()) {
                sb.append(String.format(Locale.ROOT, "<h3>%s, %s</h3>%n", nodeName, p.id));
                for (String file : List.of(categoryChart("gpu", nodeName, p), "gpu-by-stack-" + nodeName + "-" + p.id,
                        categoryChart("host", nodeName, p))) {
                    sb.append(String.format(Locale.ROOT, "<figure><a href=\"%1$s.pdf\"><img src=\"%1$s.png\"></a>"
                            + "<figcaption>%1$s: <a href=\"%1$s.svg\">SVG</a>, <a href=\"%1$s.pdf\">PDF</a></figcaption></figure>%n", file));
                }
            }
        }
        text("index.html", sb.toString());
    }
}
