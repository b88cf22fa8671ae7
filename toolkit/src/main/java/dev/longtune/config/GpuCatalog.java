package dev.longtune.config;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** GPU profiles from vendor datasheets (dense tensor throughput, no sparsity; SM counts from the whitepapers). */
public final class GpuCatalog {
    private static final long GiB = 1L << 30;
    private static final Map<String, GpuProfile> BY_NAME = new LinkedHashMap<>();
    private static final Map<String, String> ALIASES = Map.of(
            "v100", "V100-SXM2-16GB", "a6000", "A6000", "rtx-a6000", "A6000",
            "a100", "A100-40GB", "h100", "H100-80GB", "h200", "H200");

    static {
        add(new GpuProfile("V100-SXM2-16GB", "NVIDIA V100 SXM2 16GB", 16 * GiB, 125, 0, 900, 3, 12, 300, 70, 80, 2048));
        add(new GpuProfile("V100-PCIE-16GB", "NVIDIA V100 PCIe 16GB", 16 * GiB, 112, 0, 900, 3, 12, 0, 70, 80, 2048));
        add(new GpuProfile("A6000", "NVIDIA RTX A6000 48GB", 48 * GiB, 154.8, 154.8, 768, 4, 24, 56.25, 86, 84, 1536));
        add(new GpuProfile("A100-40GB", "NVIDIA A100 SXM4 40GB", 40 * GiB, 312, 312, 1555, 4, 24, 600, 80, 108, 2048));
        add(new GpuProfile("A100-80GB", "NVIDIA A100 SXM4 80GB", 80 * GiB, 312, 312, 2039, 4, 24, 600, 80, 108, 2048));
        add(new GpuProfile("H100-80GB", "NVIDIA H100 SXM5 80GB", 80 * GiB, 989, 989, 3350, 5, 55, 900, 90, 132, 2048));
        add(new GpuProfile("H200", "NVIDIA H200 SXM 141GB", 141_000_000_000L, 989, 989, 4800, 5, 55, 900, 90, 132, 2048));
    }

    private GpuCatalog() {}

    private static void add(GpuProfile gpu) { BY_NAME.put(gpu.name().toLowerCase(Locale.ROOT), gpu); }

    public static List<String> names() { return BY_NAME.values().stream().map(GpuProfile::name).toList(); }

    /**
     * The catalogued GPU a device's reported name belongs to ("NVIDIA H200" → H200, "Tesla V100-SXM2-16GB" → the
     * first V100), by family; empty for a GPU the catalogue does not know.
     */
    public static java.util.Optional<GpuProfile> matching(String reportedName) {
        String n = reportedName.toLowerCase(Locale.ROOT).replace(" ", "");
        for (GpuProfile gpu : BY_NAME.values()) {
            String k = gpu.name().toLowerCase(Locale.ROOT);
            String family = k.contains("-") ? k.substring(0, k.indexOf('-')) : k;
            if (n.contains(family)) {
                return java.util.Optional.of(gpu);
            }
        }
        return java.util.Optional.empty();
    }

    /** By name (case-insensitive) or short alias (v100, a6000, a100, h100, h200). */
    public static GpuProfile get(String name) {
        String key = name.trim().toLowerCase(Locale.ROOT);
        GpuProfile gpu = BY_NAME.get(ALIASES.getOrDefault(key, key).toLowerCase(Locale.ROOT));
        if (gpu == null) {
            throw new IllegalArgumentException("unknown GPU '" + name + "': use one of " + names()
                    + " (or " + ALIASES.keySet().stream().sorted().toList() + ")");
        }
        return gpu;
    }
}
