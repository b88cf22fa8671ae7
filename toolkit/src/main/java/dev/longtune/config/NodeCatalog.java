package dev.longtune.config;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Named machines: the published study's three nodes, and {@code <n>x<GPU>} for any catalogue GPU
 * (e.g. {@code 4xA6000}, {@code 8xV100}) with a default host of 64 GiB RAM and 8 cores per GPU.
 */
public final class NodeCatalog {
    private static final long GiB = 1L << 30;
    private static final Pattern COUNT_X_GPU = Pattern.compile("(\\d+)x(.+)", Pattern.CASE_INSENSITIVE);
    private static final Map<String, NodeProfile> STUDY = new LinkedHashMap<>();

    static {
        // Host RAM as the study reports it (free -g style binary units); DRAM bandwidth from the platforms'
        // channel counts (two sockets of 6-channel DDR4-2666 / 8-channel DDR4-3200), halved for a
        // read+write stream.
        study(new NodeProfile("study-8xV100", GpuCatalog.get("V100-SXM2-16GB"), 8, gib(481), 92, 120));
        study(new NodeProfile("study-4xA6000", GpuCatalog.get("A6000"), 4, gib(429.5), 56, 150));
        study(new NodeProfile("study-8xA100", GpuCatalog.get("A100-40GB"), 8, gib(1900), 124, 200));
    }

    private NodeCatalog() {}

    private static void study(NodeProfile node) { STUDY.put(node.name().toLowerCase(Locale.ROOT), node); }

    private static long gib(double g) { return Math.round(g * GiB); }

    public static List<String> studyNodes() { return STUDY.values().stream().map(NodeProfile::name).toList(); }

    /**
     * This machine as the CPU engine sees it: one "device" whose memory is the host's RAM (MemTotal from
     * /proc/meminfo), with its cores; for planning CPU training runs.
     */
    public static NodeProfile cpu() {
        long ram = hostRamBytes();
        int cores = Runtime.getRuntime().availableProcessors();
        GpuProfile device = new GpuProfile(GpuProfile.CPU, "the CPU engine (host memory)", ram, 0.1 * cores,
                0.1 * cores, 20, 0, 1000, 0, 0, 0, 0);
        return new NodeProfile("cpu", device, 1, ram, cores, 20);
    }

    static long hostRamBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // not Linux: fall back to the JVM's view
        }
        return Runtime.getRuntime().maxMemory();
    }

    public static NodeProfile get(String name) {
        String key = name.trim().toLowerCase(Locale.ROOT);
        if (key.equals("cpu")) {
            return cpu();
        }
        NodeProfile node = STUDY.get(key);
        if (node != null) {
            return node;
        }
        Matcher m = COUNT_X_GPU.matcher(key);
        if (m.matches()) {
            int n = Integer.parseInt(m.group(1));
            GpuProfile gpu;
            try {
                gpu = GpuCatalog.get(m.group(2));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown node '" + name + "': " + e.getMessage(), e);
            }
            if (n <= 0) {
                throw new IllegalArgumentException("node '" + name + "': GPU count must be positive");
            }
            return new NodeProfile(n + "x" + gpu.name(), gpu, n, n * 64 * GiB, n * 8, 150);
        }
        throw new IllegalArgumentException("unknown node '" + name + "': use one of " + studyNodes()
                + ", cpu, or <n>x<GPU> with a GPU from " + GpuCatalog.names());
    }
}
