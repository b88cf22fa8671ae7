package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.plan.Breakdown;
import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.MemoryPlanner;
import dev.longtune.plan.Units;
import dev.longtune.tensor.MemoryCategory;

import java.util.Locale;
import java.util.Map;

/**
 * Refuses a run whose host memory the planner says will not suffice, before anything is allocated, instead of
 * letting it die with the weights half initialised (or an hour in). On a GPU the host holds what is offloaded
 * (parameters, AdamW state, checkpoints) and is compared with the machine's RAM ({@code --host-ram} where a
 * container misreports it); on the CPU the Java heap holds every tensor, 16-bit ones as floats, and is compared with
 * the heap's limit.
 */
final class HostMemoryCheck {
    private HostMemoryCheck() {}

    /** What a run on a GPU with {@code gpuCapBytes} needs on the host, against {@code hostRamBytes}; null when it fits. */
    static String onGpu(ModelConfig m, Precision p, boolean optimizerOnHost, boolean parametersOnHost, Checkpointing ck,
                        long context, long gpuCapBytes, long hostRamBytes) {
        return onGpu(m, p, optimizerOnHost, parametersOnHost, ck, 0, context, gpuCapBytes, hostRamBytes);
    }

    /**
     * As above, with the first {@code keptAttentionLayers} layers' attention output and lse offloaded too
     * ({@code train --keep-attention}; {@link TechniqueSet#ALL_LAYERS} for every layer).
     */
    static String onGpu(ModelConfig m, Precision p, boolean optimizerOnHost, boolean parametersOnHost, Checkpointing ck,
                        int keptAttentionLayers, long context, long gpuCapBytes, long hostRamBytes) {
        return onGpu(m, p, optimizerOnHost, parametersOnHost, ck, keptAttentionLayers, 0, false, context, gpuCapBytes, hostRamBytes);
    }

    /**
     * As above, with the first {@code residentLayers} decoder layers (and with {@code residentEmbedding} the embedding)
     * kept on the GPU ({@code train --resident-layers, --resident-embedding}).
     */
    static String onGpu(ModelConfig m, Precision p, boolean optimizerOnHost, boolean parametersOnHost, Checkpointing ck,
                        int keptAttentionLayers, int residentLayers, boolean residentEmbedding, long context,
                        long gpuCapBytes, long hostRamBytes) {
        NodeProfile node = PlannerAdvice.cappedNode(gpuCapBytes, hostRamBytes);
        MemoryPlan plan = new MemoryPlanner(EngineProfile.LONGTUNE).plan(m, node,
                stack(node, p, optimizerOnHost, parametersOnHost, ck, keptAttentionLayers).withResidentLayers(residentLayers)
                        .withResidentEmbedding(residentEmbedding), context);
        long need = plan.hostPeakBytes();
        if (need <= hostRamBytes) {
            return null;
        }
        return String.format(Locale.ROOT, "%s at %,d tokens (%s) needs %s of host memory (the planner, longtune profile: %s), "
                        + "and this machine has %s: offload less (--offload), lower --context, or use a machine with more RAM; "
                        + "if the machine has more than it reports (a container), say how much with --host-ram",
                m.name(), context, plan.stack().describe(), Units.human(need), byCategory(plan.hostAtPeak()),
                Units.human(hostRamBytes));
    }

    /** What a run on the CPU device needs in the Java heap, against {@code heapBytes}; null when it fits. */
    static String onCpu(ModelConfig m, Precision p, boolean optimizerOnHost, boolean parametersOnHost, Checkpointing ck,
                        long context, long heapBytes) {
        return onCpu(m, p, optimizerOnHost, parametersOnHost, ck, 0, context, heapBytes);
    }

    static String onCpu(ModelConfig m, Precision p, boolean optimizerOnHost, boolean parametersOnHost, Checkpointing ck,
                        int keptAttentionLayers, long context, long heapBytes) {
        MemoryPlan plan = plan(m, NodeCatalog.cpu(), p, optimizerOnHost, parametersOnHost, ck, keptAttentionLayers, context);
        // the CPU device keeps 16-bit tensors as floats: twice their planned bytes in the heap (FP32 state as planned)
        long need = 0;
        for (Breakdown b : new Breakdown[] {plan.gpuAtPeak(), plan.hostAtPeak()}) {
            for (Map.Entry<MemoryCategory, Long> c : b.byCategory().entrySet()) {
                boolean fp32 = c.getKey() == MemoryCategory.OPTIMIZER || p == Precision.FP32;
                if (c.getKey() != MemoryCategory.OTHER) { // the process itself, outside the heap
                    need += fp32 ? c.getValue() : 2 * c.getValue();
                }
            }
        }
        if (need <= heapBytes) {
            return null;
        }
        return String.format(Locale.ROOT, "%s at %,d tokens on the CPU needs about %s of Java heap for its tensors (the "
                        + "planner, longtune profile: %s; 16-bit tensors are held as floats on the CPU), and this JVM may use %s: "
                        + "use a GPU (--device cuda), a smaller model or a shorter --context, or give the JVM more (e.g. "
                        + "JAVA_TOOL_OPTIONS=-Xmx%dg)",
                m.name(), context, Units.human(need), byCategory(plan.gpuAtPeak()), Units.human(heapBytes),
                (need >> 30) + 2);
    }

    private static MemoryPlan plan(ModelConfig m, NodeProfile node, Precision p, boolean optimizerOnHost,
                                   boolean parametersOnHost, Checkpointing ck, int keptAttentionLayers, long context) {
        return new MemoryPlanner(EngineProfile.LONGTUNE).plan(m, node,
                stack(node, p, optimizerOnHost, parametersOnHost, ck, keptAttentionLayers), context);
    }

    private static TechniqueSet stack(NodeProfile node, Precision p, boolean optimizerOnHost, boolean parametersOnHost,
                                      Checkpointing ck, int keptAttentionLayers) {
        return Stacks.engineRun(node, p, optimizerOnHost, parametersOnHost, ck).withKeptAttentionLayers(keptAttentionLayers);
    }

    private static String byCategory(Breakdown b) {
        StringBuilder sb = new StringBuilder();
        b.byCategory().forEach((c, bytes) -> {
            if (bytes > 0) {
                sb.append(sb.length() == 0 ? "" : ", ").append(c.name().toLowerCase(Locale.ROOT)).append(' ').append(Units.human(bytes));
            }
        });
        return sb.toString();
    }
}
