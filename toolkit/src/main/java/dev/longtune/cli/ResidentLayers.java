package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.plan.MemoryPlanner;

/**
 * The value of {@code train --resident-layers}: a number of decoder layers (the first ones) kept on the GPU out of
 * offloaded parameters, or {@code auto}: the most layers whose planned GPU peak, with the caching allocator's
 * overhead, stays under the GPU's memory (its cap).
 */
final class ResidentLayers {
    /** {@code auto}, before it is resolved against the GPU's memory. */
    static final int AUTO = KeptAttention.AUTO;

    /**
     * What the caching allocator reserves beyond the planner's allocated peak with resident layers: measured 1.10 and
     * 1.154 on an H200 at 32K (10 layers; 7 layers and the embedding; bench/results/resident-layers-2026-11-30).
     */
    static final double RESERVED_OVER_ALLOCATED = 1.16;

    private ResidentLayers() {}

    /** Layers of a {@code layers}-layer model kept on the GPU; {@link #AUTO}; 0 when not asked. */
    static int parse(String value, int layers) {
        return value == null ? 0 : KeptAttention.numberOrAuto("--resident-layers", value, layers, "auto or");
    }

    /**
     * The most layers (0 … the model's) for which the planner's GPU peak of this run, times
     * {@link #RESERVED_OVER_ALLOCATED}, fits in the allocator's share of the (capped) GPU.
     */
    static int auto(ModelConfig m, Precision p, Checkpointing ck, int keptAttentionLayers, boolean residentEmbedding,
                    long context, long gpuCapBytes, long hostRamBytes) {
        return auto(m, p, ck, keptAttentionLayers, residentEmbedding, context, gpuCapBytes, hostRamBytes, 1);
    }

    /** The same for ZeRO-3 over {@code gpus} GPUs of one node: each keeps its shards of the layers (per-GPU peak). */
    static int auto(ModelConfig m, Precision p, Checkpointing ck, int keptAttentionLayers, boolean residentEmbedding,
                    long context, long gpuCapBytes, long hostRamBytes, int gpus) {
        NodeProfile node = PlannerAdvice.cappedNode(gpuCapBytes, hostRamBytes, gpus);
        return KeptAttention.resolve(KeptAttention.AUTO, m.numLayers(), k -> fits(m, node, Stacks.engineRun(node, p, true, true, ck)
                .withGpus(gpus).withKeptAttentionLayers(keptAttentionLayers).withResidentLayers(k)
                .withResidentEmbedding(residentEmbedding), context));
    }

    /**
     * Whether {@code stack}'s planned GPU peak, times {@link #RESERVED_OVER_ALLOCATED}, fits the allocator's share of
     * {@code node}'s GPU: how train decides what it may spend spare GPU memory on (resident layers, checkpoints
     * brought back ahead).
     */
    static boolean fits(ModelConfig m, NodeProfile node, dev.longtune.config.TechniqueSet stack, long context) {
        long peak = new MemoryPlanner(EngineProfile.LONGTUNE).plan(m, node, stack, context).gpuPeakBytes();
        return peak * RESERVED_OVER_ALLOCATED <= PlannerAdvice.allocatorBytes(node);
    }
}
