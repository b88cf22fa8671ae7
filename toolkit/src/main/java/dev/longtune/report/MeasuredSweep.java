package dev.longtune.report;

import dev.longtune.bench.GpuBench;
import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.GpuCatalog;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.cuda.GpuOutOfMemoryException;
import dev.longtune.device.Device;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.plan.Breakdown;
import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.MemoryPlanner;
import dev.longtune.plan.Units;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The engine's measured memory against context length next to the planner's curve for the same stack: one
 * fresh device per context, two training steps (the second one's peaks are kept, so that one-time set-up does
 * not count), each category as the device's tracker saw it and as the planner's {@code longtune} profile
 * predicts it. {@code ./longtune study} runs it on a GPU when one is present (a 2-layer slice of Llama 3.1 8B,
 * which takes seconds); the tests run it on the CPU with a small model. A context that runs out of memory ends
 * the sweep and is reported as such.
 */
public final class MeasuredSweep {
    /**
     * One context: measured peaks by category (each its own, not simultaneous) and the simultaneous total, and the
     * plan's: each category's largest value over the phases, and the peak phase's total.
     */
    public record Row(long context, Map<MemoryCategory, Long> measured, long measuredPeak,
                      Map<MemoryCategory, Long> planned, long plannedPeak, long reservedPeak, double stepSeconds,
                      double busySeconds, String outOfMemory, Map<MemoryCategory, Long> hostMeasured,
                      Map<MemoryCategory, Long> hostPlanned) {
        /** (planned − measured) / measured of the total peak. */
        public double error() { return (double) (plannedPeak - measuredPeak) / measuredPeak; }

        /** The kept step's wall time over the device's busy time in it: what offloading costs (1 = nothing). */
        public double wallOverBusy() { return stepSeconds / Math.max(busySeconds, 1e-9); }

        public boolean ran() { return outOfMemory == null; }
    }

    private final ModelConfig model;
    private final Precision precision;
    private final Checkpointing checkpointing;
    private final Optimizer.Placement placement;
    private final NodeProfile node;
    private final Supplier<Device> devices;
    private ParameterPlacement parameters = ParameterPlacement.DEVICE;

    public MeasuredSweep(ModelConfig model, Precision precision, Checkpointing checkpointing, Optimizer.Placement placement,
                         NodeProfile node, Supplier<Device> devices) {
        this.model = model;
        this.precision = precision;
        this.checkpointing = checkpointing;
        this.placement = placement;
        this.node = node;
        this.devices = devices;
    }

    /** The contexts {@code ./longtune study} measures on a GPU. */
    public static final long[] GPU_CONTEXTS = {4096, 8192, 16384, 32768};

    /**
     * The study's sweep on the GPU present: a 2-layer slice of Llama 3.1 8B (its embeddings, head and two
     * decoder layers, 1.5B parameters), BF16 on Ampere and newer and FP16 before, checkpoints on the device,
     * AdamW on the GPU where it has 40 GiB or more and on the host (ZeRO-offload) otherwise.
     */
    public static MeasuredSweep onThisGpu() {
        String name;
        int arch;
        long total;
        try (CudaDevice probe = new CudaDevice()) {
            name = probe.gpuName();
            arch = probe.arch();
            total = probe.memoryInfo()[1];
        }
        NodeProfile node = new NodeProfile("1x" + name, gpuProfile(name, total), 1, NodeCatalog.cpu().hostRamBytes(),
                Runtime.getRuntime().availableProcessors(), NodeCatalog.cpu().hostMemoryGBps());
        return new MeasuredSweep(ModelCatalog.get("llama-3.1-8b").withLayers(2), arch >= 80 ? Precision.BF16 : Precision.FP16,
                Checkpointing.DEVICE, total >= 40L << 30 ? Optimizer.Placement.DEVICE : Optimizer.Placement.HOST, node,
                CudaDevice::new);
    }

    /**
     * The mission's job on the GPU present under a memory cap: {@code model} whole, BF16 (FP16 before Ampere), with
     * parameters, AdamW and layer inputs offloaded to the host; the planner sees a GPU of the cap's size.
     */
    public static MeasuredSweep offloadedOnThisGpu(ModelConfig model, long capBytes) {
        String name;
        int arch;
        try (CudaDevice probe = new CudaDevice()) {
            name = probe.gpuName();
            arch = probe.arch();
        }
        NodeProfile node = new NodeProfile("1x" + name + " capped", gpuProfile(name, capBytes), 1,
                NodeCatalog.cpu().hostRamBytes(), Runtime.getRuntime().availableProcessors(), NodeCatalog.cpu().hostMemoryGBps());
        return new MeasuredSweep(model, arch >= 80 ? Precision.BF16 : Precision.FP16, Checkpointing.OFFLOAD,
                Optimizer.Placement.HOST, node, () -> new CudaDevice(dev.longtune.cuda.CudaOptions.defaults().withMemoryCap(capBytes)))
                .withParameters(ParameterPlacement.HOST);
    }

    /** The catalogue's profile of a GPU whose name contains a catalogued one, with the memory the GPU reports. */
    static GpuProfile gpuProfile(String gpuName, long memoryBytes) {
        GpuProfile base = GpuCatalog.matching(gpuName).orElse(GpuCatalog.get("H200"));
        return new GpuProfile(gpuName, base.description(), memoryBytes, base.fp16Tflops(), base.bf16Tflops(), base.hbmGBps(),
                base.pcieGen(), base.hostLinkGBps(), base.nvlinkGBps(), base.computeCapability(), base.sms(),
                base.maxThreadsPerSm());
    }

    public NodeProfile node() { return node; }

    /** With the weights and gradients resident on the device (the default) or offloaded to the host. */
    public MeasuredSweep withParameters(ParameterPlacement p) {
        if (p == ParameterPlacement.HOST && placement != Optimizer.Placement.HOST) {
            throw new IllegalArgumentException("offloaded parameters need the optimizer on the host");
        }
        this.parameters = p;
        return this;
    }

    /** The stack the engine runs here, as the planner names it: one GPU, ZeRO-offload when AdamW is on the host. */
    public TechniqueSet stack() {
        return Stacks.engineRun(node, precision, placement == Optimizer.Placement.HOST,
                parameters == ParameterPlacement.HOST, checkpointing);
    }

    public String describe() {
        return model.name() + ", " + stack().describe() + ", optimizer on the " + placement.id
                + (parameters == ParameterPlacement.HOST ? ", parameters on the host" : "");
    }

    public List<Row> run(long[] contexts, Consumer<String> progress) {
        List<Row> rows = new ArrayList<>();
        MemoryPlanner planner = new MemoryPlanner(EngineProfile.LONGTUNE);
        for (long context : contexts) {
            MemoryPlan plan = planner.plan(model, node, stack(), context);
            progress.accept(String.format(java.util.Locale.ROOT, "measured sweep: %,d tokens", context));
            try (Device device = devices.get()) {
                try (LlamaModel m = new LlamaModel(model, device, precision, checkpointing, parameters)) {
                    long seed = 1;
                    for (var w : m.weights().byName().entrySet()) {
                        int n = Math.toIntExact(w.getValue().numel());
                        device.write(w.getValue(), w.getKey().endsWith("norm.weight") ? ones(n) : GpuBench.noise(n, seed++, 0.02));
                    }
                    try (Trainer trainer = new Trainer(m, TrainingConfig.defaults(10), precision, placement)) {
                        rows.add(measure(trainer, device, context, plan));
                    }
                }
            } catch (GpuOutOfMemoryException e) {
                rows.add(outOfMemory(context, plan, e));
                break;
            }
        }
        return rows;
    }

    /**
     * The same measurement on one model for every context (ascending), set up once: for a model whose set-up takes
     * minutes (the whole 8B with offloaded parameters: random init, pinning 32 GB). Peaks are the tracker's per
     * step, so earlier contexts do not leak into later rows; the allocator's reserved peak may keep blocks cached
     * at an earlier context.
     */
    public List<Row> runOnOneModel(long[] contexts, long seed, Consumer<String> progress, Consumer<List<Row>> afterEachRow) {
        List<Row> rows = new ArrayList<>();
        MemoryPlanner planner = new MemoryPlanner(EngineProfile.LONGTUNE);
        progress.accept("measured sweep: allocating " + model.name() + " (" + describe() + ")");
        try (Device device = devices.get();
             LlamaModel m = new LlamaModel(model, device, precision, checkpointing, parameters)) {
            progress.accept("measured sweep: random initialisation");
            m.initialize(seed);
            progress.accept("measured sweep: optimizer state (FP32 master weights and moments)");
            try (Trainer trainer = new Trainer(m, TrainingConfig.defaults(2 * contexts.length), precision, placement)) {
                for (long context : contexts) {
                    MemoryPlan plan = planner.plan(model, node, stack(), context);
                    progress.accept(String.format(java.util.Locale.ROOT, "measured sweep: %,d tokens", context));
                    try {
                        rows.add(measure(trainer, device, context, plan));
                    } catch (GpuOutOfMemoryException e) {
                        rows.add(outOfMemory(context, plan, e));
                        afterEachRow.accept(rows);
                        break;
                    }
                    afterEachRow.accept(rows);
                }
            }
        }
        return rows;
    }

    /** Two steps on one random document; the row holds the second one's peaks and times. */
    private Row measure(Trainer trainer, Device device, long context, MemoryPlan plan) {
        int tokens = Math.toIntExact(context);
        List<Batch> batch = List.of(Batch.ofDocument(new Random(3).ints(tokens, 0, model.vocabSize()).toArray()));
        trainer.step(batch);
        device.memory().resetPeaks();
        device.hostMemory().resetPeaks();
        if (device instanceof CudaDevice gpu) {
            gpu.allocator().resetPeakReserved();
        }
        StepResult r = trainer.step(batch);
        Map<MemoryCategory, Long> measured = new EnumMap<>(MemoryCategory.class), host = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            measured.put(c, device.memory().peak(c));
            host.put(c, device.hostMemory().peak(c));
        }
        long reserved = device instanceof CudaDevice gpu ? gpu.allocator().peakReserved() : device.memory().peakTotal();
        return new Row(context, measured, device.memory().peakTotal(), plannedByCategory(plan.gpu()), plan.gpuPeakBytes(),
                reserved, r.seconds(), r.busySeconds(), null, host, plannedByCategory(plan.host()));
    }

    private static Row outOfMemory(long context, MemoryPlan plan, GpuOutOfMemoryException e) {
        return new Row(context, Map.of(), 0, plannedByCategory(plan.gpu()), plan.gpuPeakBytes(), 0, 0, 0, e.getMessage(),
                Map.of(), plannedByCategory(plan.host()));
    }

    /** Each category's largest planned value over the phases: what a tracker's per-category peak measures. */
    private static Map<MemoryCategory, Long> plannedByCategory(Map<?, Breakdown> phases) {
        Map<MemoryCategory, Long> out = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            out.put(c, phases.values().stream().mapToLong(b -> b.bytes(c)).max().orElse(0));
        }
        return out;
    }

    private static float[] ones(int n) {
        float[] x = new float[n];
        java.util.Arrays.fill(x, 1f);
        return x;
    }

    /** One row per context: measured and planned bytes by category, the totals, and the error. */
    public static Table table(List<Row> rows) {
        LongColumn context = LongColumn.create("context"), measuredPeak = LongColumn.create("measured_peak_bytes"),
                plannedPeak = LongColumn.create("planned_peak_bytes"), reserved = LongColumn.create("reserved_peak_bytes");
        DoubleColumn error = DoubleColumn.create("error_percent"), seconds = DoubleColumn.create("step_s"),
                busy = DoubleColumn.create("busy_s"), wallOverBusy = DoubleColumn.create("wall_over_busy");
        StringColumn status = StringColumn.create("status");
        Map<MemoryCategory, LongColumn> measured = new EnumMap<>(MemoryCategory.class), planned = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            measured.put(c, LongColumn.create("measured_" + c.id));
            planned.put(c, LongColumn.create("planned_" + c.id));
        }
        for (Row r : rows) {
            context.append(r.context());
            for (MemoryCategory c : MemoryCategory.values()) {
                measured.get(c).append(r.measured().getOrDefault(c, 0L));
                planned.get(c).append(r.planned().getOrDefault(c, 0L));
            }
            measuredPeak.append(r.measuredPeak());
            plannedPeak.append(r.plannedPeak());
            reserved.append(r.reservedPeak());
            error.append(r.ran() ? Math.round(r.error() * 1000) / 10.0 : Double.NaN);
            seconds.append(Math.round(r.stepSeconds() * 1000) / 1000.0);
            busy.append(Math.round(r.busySeconds() * 1000) / 1000.0);
            wallOverBusy.append(r.ran() ? Math.round(r.wallOverBusy() * 1000) / 1000.0 : Double.NaN);
            status.append(r.ran() ? "ran" : "out of memory");
        }
        Table t = Table.create("measured-sweep").addColumns(context);
        measured.values().forEach(t::addColumns);
        planned.values().forEach(t::addColumns);
        return t.addColumns(measuredPeak, plannedPeak, error, reserved, seconds, busy, wallOverBusy, status);
    }

    /** Measured peak, planned peak and (on a GPU) the allocator's reserved peak against context, in GiB. */
    public static XYChart chart(String title, List<Row> rows, double capacityGiB, String capacityLabel) {
        List<Row> ran = rows.stream().filter(Row::ran).toList();
        double[] x = ran.stream().mapToDouble(Row::context).toArray();
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("measured peak (engine's trackers)", ran.stream().mapToDouble(r -> Units.gib(r.measuredPeak())).toArray());
        series.put("planned peak (longtune profile)", ran.stream().mapToDouble(r -> Units.gib(r.plannedPeak())).toArray());
        series.put("reserved peak (allocator)", ran.stream().mapToDouble(r -> Units.gib(r.reservedPeak())).toArray());
        return Charts.lines(title, x, series, capacityGiB, capacityLabel);
    }
}
