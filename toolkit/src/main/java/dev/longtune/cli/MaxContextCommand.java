package dev.longtune.cli;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.EngineSupport;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.TechniqueSet;
import dev.longtune.device.CpuDevice;
import dev.longtune.device.Device;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.Units;
import dev.longtune.report.MaxContextMeasurement;
import dev.longtune.train.Optimizer;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "max-context", mixinStandardHelpOptions = true,
        description = {"The longest context that fits the node's GPUs and host RAM with a technique set (the planner).",
                "With --measure: the longest context that trains, found by bisecting real training steps on this machine's "
                        + "GPU (under --gpu-memory-cap) or on the CPU (under --cpu-memory-cap), beside the planner's for the "
                        + "same stack (default there: the engine's stack, 'engine'; 'all-tiled' adds --tile 8192)."})
public class MaxContextCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    private java.io.PrintWriter out() { return spec.commandLine().getOut(); }

    @Mixin PlanOptions options;

    @Option(names = "--json", description = "print JSON") boolean json;

    @Option(names = "--measure", description = "measure it: one training step per trial (random weights and tokens), bisected")
    boolean measure;

    @Option(names = "--device", defaultValue = "auto", description = "with --measure: cpu, cuda, or auto; default ${DEFAULT-VALUE}")
    String device;

    @Option(names = "--gpu-memory-cap", description = "with --measure on a GPU: cap its allocator (16GiB stands in for a V100, 48GiB for an A6000)")
    String gpuMemoryCap;

    @Option(names = "--cpu-memory-cap", description = "with --measure on the CPU: the engine's device tensors under this many bytes (e.g. 64MiB)")
    String cpuMemoryCap;

    @Option(names = "--from", defaultValue = "1024", description = "with --measure: the shortest context tried, tokens; default ${DEFAULT-VALUE}")
    String from;

    @Option(names = "--to", description = "with --measure: the longest context tried; default twice the planner's")
    String to;

    @Option(names = "--resolution", description = "with --measure: stop when the boundary is known to this many tokens; default 1/64 of --to, at least 16")
    String resolution;

    @Option(names = "--seed", defaultValue = "1", description = "with --measure: seed of the random weights and tokens; default ${DEFAULT-VALUE}")
    long seed;

    @Override
    public Integer call() {
        if (measure) {
            return measure();
        }
        if (gpuMemoryCap != null || cpuMemoryCap != null) {
            throw new IllegalArgumentException("--gpu-memory-cap and --cpu-memory-cap go with --measure; the planner "
                    + "takes the GPU from --node");
        }
        var t = options.techniques();
        long max = new ContextSearch(options.profile()).maxContext(options.model(), options.node(), t);
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("model", options.model().name());
            out.put("node", options.node().name());
            out.put("profile", options.profile().id);
            out.put("stack", t.describe());
            out.put("max_context", max);
            out().println(Json.write(out));
        } else {
            out().printf(Locale.ROOT, "%s on %s (%s, %s): max context %,d tokens%n", options.model().name(),
                    options.node().name(), options.profile().id, t.describe(), max);
        }
        return 0;
    }

    private int measure() {
        boolean gpu = switch (device.toLowerCase(Locale.ROOT)) {
            case "cpu" -> false;
            case "cuda", "gpu" -> true;
            case "auto" -> dev.longtune.cuda.Cuda.available();
            default -> throw new IllegalArgumentException("--device " + device + ": use cpu, cuda or auto");
        };
        if (gpu && cpuMemoryCap != null || !gpu && gpuMemoryCap != null) {
            throw new IllegalArgumentException(gpu ? "--cpu-memory-cap is for --device cpu; on a GPU use --gpu-memory-cap"
                    : "--gpu-memory-cap needs a GPU and this search runs on the CPU: use --cpu-memory-cap");
        }
        if (!gpu && cpuMemoryCap == null) {
            throw new IllegalArgumentException("--measure on the CPU needs --cpu-memory-cap (the bytes the engine's device "
                    + "tensors may hold, standing in for a GPU's memory), e.g. --cpu-memory-cap 64MiB");
        }
        ModelConfig model = options.model();
        LlamaModel.requireSupported(model);
        long hostRam = options.hostRam != null ? Units.parseBytes(options.hostRam) : NodeCatalog.cpu().hostRamBytes();
        long cap = Units.parseBytes(gpu ? (gpuMemoryCap == null ? Long.MAX_VALUE + "" : gpuMemoryCap) : cpuMemoryCap);
        NodeProfile node = gpu ? PlannerAdvice.cappedNode(gpuMemoryCap == null ? Long.MAX_VALUE : cap, hostRam)
                : cpuNode(cap, hostRam);
        // the stack: 'engine' unless one was named; every flag given applies on top, as for the planner
        boolean stackGiven = spec.commandLine().getParseResult().hasMatchedOption("--stack");
        if (!stackGiven) {
            options.stack = "engine";
        }
        options.profile = EngineProfile.LONGTUNE.id;
        TechniqueSet stack = options.techniquesOn(node).withGpus(1);
        List<String> missing = EngineSupport.missing(stack, node);
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("the engine cannot run " + stack.describe() + ": " + String.join("; ", missing)
                    + " (measure the engine's own stack: --stack engine, or all-tiled)");
        }
        long planned = new ContextSearch(EngineProfile.LONGTUNE).maxContext(model, node, stack);
        long lo = Units.parseTokens(from);
        long hi = to != null ? Units.parseTokens(to) : Math.max(2 * planned, 2 * lo);
        long step = resolution != null ? Units.parseTokens(resolution) : Math.max(16, hi / 64);
        var err = spec.commandLine().getErr();
        err.printf(Locale.ROOT, "max-context --measure: %s, %s, on %s%s; planner: %,d tokens; trying %,d to %,d tokens "
                        + "to within %,d%n", model.name(), stack.describe(), gpu ? "the GPU" : "the CPU",
                cap == Long.MAX_VALUE ? "" : " capped at " + Units.human(cap), planned, lo, hi, step);
        err.flush();
        long started = System.nanoTime();
        MaxContextMeasurement.Result result;
        var trying = new java.util.concurrent.atomic.AtomicLong(hi); // the trial's context, for the OOM advice
        try (Device d = gpu ? openGpu(cap, options.model, trying::get) : new CpuDevice(cap);
             LlamaModel m = new LlamaModel(model, d, stack.precision(), stack.checkpointing(),
                     stack.offloadParameters() ? ParameterPlacement.HOST : ParameterPlacement.DEVICE)) {
            m.initialize(seed);
            m.setSequenceTile(stack.sequenceTile());
            try (Trainer trainer = new Trainer(m, TrainingConfig.defaults(1000), stack.precision(),
                    stack.offloadOptimizer() ? Optimizer.Placement.HOST : Optimizer.Placement.DEVICE)) {
                err.printf(Locale.ROOT, "  set up in %.0f s%n", (System.nanoTime() - started) / 1e9);
                result = new MaxContextMeasurement(trainer, seed).onTrialStart(trying::set).search(lo, hi, step, trial -> {
                    err.printf(Locale.ROOT, "  %,9d tokens: %s (device peak %s, %.1f s)%n", trial.context(),
                            trial.trained() ? "trained" : "out of memory", Units.human(trial.devicePeakBytes()), trial.seconds());
                    err.flush();
                });
            }
        }
        double ratio = planned > 0 ? (double) result.measured() / planned : Double.NaN;
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("model", model.name());
            o.put("device", gpu ? "cuda" : "cpu");
            o.put("cap_bytes", cap == Long.MAX_VALUE ? null : cap);
            o.put("stack", stack.describe());
            o.put("measured_max_context", result.measured());
            o.put("first_failed", result.failedAt() == 0 ? null : result.failedAt());
            o.put("planned_max_context", planned);
            o.put("measured_over_planned", Double.isNaN(ratio) ? null : Math.round(ratio * 10000) / 10000.0);
            o.put("stopped_by", result.stoppedBy());
            List<Map<String, Object>> trials = new ArrayList<>();
            for (var t : result.trials()) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("context", t.context());
                row.put("trained", t.trained());
                row.put("device_peak_bytes", t.devicePeakBytes());
                row.put("reserved_peak_bytes", t.reservedPeakBytes());
                row.put("seconds", Math.round(t.seconds() * 1000) / 1000.0);
                row.put("failure", t.failure());
                trials.add(row);
            }
            o.put("trials", trials);
            out().println(Json.write(o));
        } else {
            out().printf(Locale.ROOT, "%s, %s on %s%s: measured max context %,d tokens%s; planner %,d tokens "
                            + "(measured/planned %.3f); stopped by %s%n", model.name(), stack.describe(), gpu ? "the GPU" : "the CPU",
                    cap == Long.MAX_VALUE ? "" : " capped at " + Units.human(cap), result.measured(),
                    result.failedAt() == 0 ? "" : String.format(Locale.ROOT, " (%,d did not train)", result.failedAt()),
                    planned, ratio, result.stoppedBy());
        }
        return 0;
    }

    private static Device openGpu(long cap, String model, java.util.function.LongSupplier context) {
        var gpu = new dev.longtune.cuda.CudaDevice(dev.longtune.cuda.CudaOptions.defaults().withMemoryCap(cap));
        gpu.setOutOfMemoryAdvice(() -> PlannerAdvice.forRun(model, cap, context.getAsLong()));
        return gpu;
    }

    /** The CPU engine as the planner sees it, its device memory the cap. */
    static NodeProfile cpuNode(long cap, long hostRam) {
        NodeProfile cpu = NodeCatalog.cpu();
        return new NodeProfile("cpu", cpu.gpu().withMemory(dev.longtune.config.GpuProfile.CPU, cap), 1,
                hostRam, cpu.cores(), cpu.hostMemoryGBps());
    }
}
