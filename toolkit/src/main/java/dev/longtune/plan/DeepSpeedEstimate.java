package dev.longtune.plan;

import dev.longtune.config.ModelConfig;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * DeepSpeed's {@code estimate_zero3_model_states_mem_needs_all_live} (deepspeed/runtime/zero/stage3.py),
 * reproduced: model-state memory per GPU and per node for the six ZeRO-3 offload options. Its rules:
 * 16 or 18 bytes per parameter on the CPU (18 when parameters are offloaded too), the largest layer
 * gathered as 4 bytes per parameter on the GPU, and a 1.5 allowance for buffers on the CPU side.
 */
public final class DeepSpeedEstimate {
    public static final double ADDITIONAL_BUFFER_FACTOR = 1.5;

    public record Row(long cpuBytes, long gpuBytes, boolean offloadOptimizer, boolean offloadParameters,
                      boolean zeroInit) {
        /** DeepSpeed's options column as Python ≤ 3.10 prints it. */
        public String options() {
            return "offload_param=" + (offloadParameters ? "cpu " : "none") + ", offload_optimizer="
                    + (offloadOptimizer ? "cpu " : "none") + ", zero_init=" + (zeroInit ? 1 : 0);
        }
    }

    private final long totalParams, largestLayerParams;
    private final int gpusPerNode, nodes;

    public DeepSpeedEstimate(ModelConfig model, int gpusPerNode, int nodes) {
        this(model.totalParameters(), model.largestModuleParameters(), gpusPerNode, nodes);
    }

    public DeepSpeedEstimate(long totalParams, long largestLayerParams, int gpusPerNode, int nodes) {
        if (gpusPerNode <= 0 || nodes <= 0) {
            throw new IllegalArgumentException("GPUs per node and nodes must be positive, were " + gpusPerNode
                    + " and " + nodes);
        }
        this.totalParams = totalParams;
        this.largestLayerParams = largestLayerParams;
        this.gpusPerNode = gpusPerNode;
        this.nodes = nodes;
    }

    /** One option set, exactly as {@code estimate_zero3_model_states_mem_needs} computes it. */
    public Row estimate(boolean offloadOptimizer, boolean offloadParameters, boolean zeroInit) {
        int totalGpus = nodes * gpusPerNode;
        double gpusFactor = 1.0 / nodes;
        long largestLayerMemory = 4 * largestLayerParams;
        double cpu;
        long gpu;
        if (offloadOptimizer) {
            int perParam = offloadParameters ? 18 : 16;
            gpu = offloadParameters ? largestLayerMemory : largestLayerMemory + (long) (2.0 * totalParams / totalGpus);
            cpu = zeroInit ? totalParams * perParam * gpusFactor * ADDITIONAL_BUFFER_FACTOR
                    : totalParams * Math.max(4.0 * gpusPerNode, perParam * gpusFactor) * ADDITIONAL_BUFFER_FACTOR;
        } else {
            gpu = largestLayerMemory + (long) (18.0 * totalParams / totalGpus);
            cpu = zeroInit ? largestLayerParams * 4.0 * gpusPerNode * ADDITIONAL_BUFFER_FACTOR
                    : totalParams * 4.0 * gpusPerNode * ADDITIONAL_BUFFER_FACTOR;
        }
        return new Row((long) cpu, gpu, offloadOptimizer, offloadParameters, zeroInit);
    }

    /** The six rows in DeepSpeed's order. */
    public List<Row> rows() {
        List<Row> out = new ArrayList<>();
        for (boolean optimizer : new boolean[] {true, false}) {
            for (boolean params : new boolean[] {true, false}) {
                if (!optimizer && params) {
                    continue;
                }
                for (boolean zeroInit : new boolean[] {true, false}) {
                    out.add(estimate(optimizer, params, zeroInit));
                }
            }
        }
        return out;
    }

    /** The table as DeepSpeed prints it (sizes in GiB, labelled GB as DeepSpeed does). */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append("Estimated memory needed for params, optim states and gradients for a:\n");
        sb.append(String.format(Locale.ROOT, "HW: Setup with %d %s, %d %s per node.%n", nodes,
                nodes > 1 ? "nodes" : "node", gpusPerNode, gpusPerNode > 1 ? "GPUs" : "GPU"));
        sb.append(String.format(Locale.ROOT, "SW: Model with %dM total params, %dM largest layer params.%n",
                (long) (totalParams / 1e6), (long) (largestLayerParams / 1e6)));
        sb.append("  per CPU  |  per GPU |   Options\n");
        for (Row r : rows()) {
            sb.append(String.format(Locale.ROOT, " %7.2fGB | %6.2fGB | %s%n", r.cpuBytes() / Math.pow(2, 30),
                    r.gpuBytes() / Math.pow(2, 30), r.options()));
        }
        return sb.toString();
    }
}
