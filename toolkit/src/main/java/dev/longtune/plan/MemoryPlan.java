package dev.longtune.plan;

import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.TechniqueSet;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryLocation;

import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** A memory prediction: per-GPU and per-node host breakdowns for every phase of one training step. */
public record MemoryPlan(
        ModelConfig model,
        NodeProfile node,
        TechniqueSet stack,
        EngineProfile profile,
        long context,
        Map<Phase, Breakdown> gpu,
        Map<Phase, Breakdown> host) {

    public Phase gpuPeakPhase() { return peakPhase(gpu); }

    public Phase hostPeakPhase() { return peakPhase(host); }

    public Breakdown gpuAtPeak() { return gpu.get(gpuPeakPhase()); }

    public Breakdown hostAtPeak() { return host.get(hostPeakPhase()); }

    /** The GPU peak as allocated bytes: every term at the peak phase (what max_memory_allocated reports). */
    public long gpuPeakBytes() { return gpuAtPeak().total(); }

    /** The least the caching allocator reserves at the peak: allocated plus its segment rounding (GpuRuntime). */
    public long gpuReservedBytes() { return gpuPeakBytes() + GpuRuntime.allocatorReserveBytes(node.gpu(), gpuAtPeak()); }

    /** The least nvidia-smi shows for the process at the peak: reserved plus the CUDA context (GpuRuntime). */
    public long gpuNvidiaSmiBytes() { return gpuReservedBytes() + GpuRuntime.cudaContextBytes(node.gpu()); }

    public long hostPeakBytes() { return hostAtPeak().total(); }

    /** Judged on what the whole GPU holds: tensors, the allocator's rounding and the CUDA context. */
    public boolean fitsGpu() { return gpuNvidiaSmiBytes() <= node.gpu().memoryBytes(); }

    public boolean fitsHost() { return hostPeakBytes() <= node.hostRamBytes(); }

    public boolean fits() { return fitsGpu() && fitsHost(); }

    private static Phase peakPhase(Map<Phase, Breakdown> phases) {
        // ties go to the earliest phase of the step
        return Arrays.stream(Phase.values())
                .max(Comparator.<Phase>comparingLong(p -> phases.get(p).total())
                        .thenComparing(Comparator.<Phase>naturalOrder().reversed()))
                .orElseThrow();
    }

    /** The {@code plan --json} shape: byte counts as integers. */
    public Map<String, Object> toJson(Throughput throughput) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", model.name());
        out.put("node", node.name());
        out.put("context", context);
        out.put("profile", profile.id);
        out.put("stack", stack.describe());
        Map<String, Object> g = new LinkedHashMap<>();
        g.put("peak_bytes", gpuPeakBytes());
        g.put("peak_figure", "allocated");
        g.put("reserved_bytes_at_least", gpuReservedBytes());
        g.put("nvidia_smi_bytes_at_least", gpuNvidiaSmiBytes());
        g.put("peak_phase", gpuPeakPhase().id);
        g.put("capacity_bytes", node.gpu().memoryBytes());
        g.put("by_category", categories(gpuAtPeak()));
        Map<String, Object> phases = new LinkedHashMap<>();
        gpu.forEach((phase, b) -> phases.put(phase.id, b.total()));
        g.put("by_phase", phases);
        out.put("gpu", g);
        Map<String, Object> hst = new LinkedHashMap<>();
        hst.put("peak_bytes", hostPeakBytes());
        hst.put("capacity_bytes", node.hostRamBytes());
        hst.put("by_category", categories(hostAtPeak()));
        hst.put("pinned_bytes", hostAtPeak().bytes(MemoryLocation.HOST_PINNED));
        hst.put("pageable_bytes", hostAtPeak().bytes(MemoryLocation.HOST_PAGEABLE));
        out.put("host", hst);
        out.put("fits", fits());
        out.put("tokens_per_s", throughput == null ? null : Math.round(throughput.tokensPerSecond() * 100) / 100.0);
        return out;
    }

    private static Map<String, Long> categories(Breakdown b) {
        Map<String, Long> out = new LinkedHashMap<>();
        b.byCategory().forEach((c, v) -> out.put(c.id, v));
        return out;
    }

    /** A plain-text report: the peak breakdowns with every term and its formula. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%s on %s at %,d tokens, profile %s%n  stack: %s%n",
                model.name(), node.name(), context, profile.id, stack.describe()));
        sb.append(String.format(Locale.ROOT, "GPU peak %s in %s (capacity %s)%s%n", Units.human(gpuPeakBytes()),
                gpuPeakPhase(), Units.human(node.gpu().memoryBytes()), fitsGpu() ? "" : "  DOES NOT FIT"));
        sb.append(String.format(Locale.ROOT, "  figures: allocated %s (the terms below); reserved ≥ %s (+ allocator rounding); "
                + "nvidia-smi ≥ %s (+ CUDA context %s)%n", Units.human(gpuPeakBytes()), Units.human(gpuReservedBytes()),
                Units.human(gpuNvidiaSmiBytes()), Units.human(GpuRuntime.cudaContextBytes(node.gpu()))));
        terms(sb, gpuAtPeak());
        sb.append("  by phase (allocated):");
        gpu.forEach((p, b) -> sb.append(' ').append(p.id).append('=').append(Units.human(b.total())).append(';'));
        sb.append(String.format(Locale.ROOT, "%nHost peak %s (node RAM %s)%s%n", Units.human(hostPeakBytes()),
                Units.human(node.hostRamBytes()), fitsHost() ? "" : "  DOES NOT FIT"));
        terms(sb, hostAtPeak());
        return sb.toString();
    }

    private static void terms(StringBuilder sb, Breakdown b) {
        for (MemoryCategory c : MemoryCategory.values()) {
            for (Term t : b.terms()) {
                if (t.category() == c) {
                    sb.append(String.format(Locale.ROOT, "  %-12s %14s  %s%s  [%s]%n", c.id, Units.human(t.bytes()),
                            t.name(), t.location() == MemoryLocation.GPU ? "" : " (" + t.location() + ")", t.formula()));
                }
            }
        }
    }

    @Override
    public String toString() { return describe(); }
}
