package dev.longtune.cli;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.PinnedMemory;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.plan.Units;
import picocli.CommandLine.Option;

import java.util.EnumSet;
import java.util.Set;

/** The model, node, profile and technique options shared by the planning commands. */
public class PlanOptions {
    @Option(names = "--model", defaultValue = "llama-3.1-8b",
            description = "llama-3.1-8b, llama-3.1-70b, llama-3.2-1b, llama-3.2-3b, qwen2.5-7b, qwen2.5-14b or a config.json path; default ${DEFAULT-VALUE}")
    String model;

    @Option(names = "--node", defaultValue = "study-8xV100",
            description = "study-8xV100, study-4xA6000, study-8xA100 or <n>x<GPU> such as 4xA6000; default ${DEFAULT-VALUE}")
    String node;

    @Option(names = "--profile", defaultValue = "hf-deepspeed", description = "hf-deepspeed or longtune; default ${DEFAULT-VALUE}")
    String profile;

    @Option(names = "--stack", defaultValue = "study",
            description = "baseline, ckpt, ckpt-offload, liger, fa2, zero-offload, all, all-tiled, study; default ${DEFAULT-VALUE}")
    String stack;

    @Option(names = "--precision", description = "fp32, fp16 or bf16") String precision;
    @Option(names = "--checkpointing", description = "none, device or offload") String checkpointing;
    @Option(names = "--attention", description = "eager, sdpa or fa2") String attention;
    @Option(names = "--liger", split = ",", description = "all, none, or a list of rmsnorm,rope,swiglu,flce") String[] liger;
    @Option(names = "--zero", description = "ZeRO stage 0-3") Integer zero;
    @Option(names = "--offload-optimizer", negatable = true, description = "optimizer states in host memory") Boolean offloadOptimizer;
    @Option(names = "--offload-parameters", negatable = true, description = "parameters in host memory (ZeRO-3)") Boolean offloadParameters;
    @Option(names = "--pinned", description = "pageable, caching or pool") String pinned;
    @Option(names = "--micro-batch", description = "sequences per GPU per step") Integer microBatch;
    @Option(names = "--grad-accum", description = "micro-batches per optimizer step") Integer gradAccum;
    @Option(names = "--gpus", description = "GPUs per node to use") Integer gpus;
    @Option(names = "--nodes", description = "number of nodes") Integer nodes;
    @Option(names = "--tile", description = "sequence tile for the MLP and loss, tokens (0: untiled)") Integer tile;
    @Option(names = "--keep-attention", arity = "0..1", fallbackValue = "all", paramLabel = "LAYERS",
            description = "with offloaded checkpoints, each layer's attention output and lse offloaded too (the engine's "
                    + "train --keep-attention): all (the option alone) or a number of layers, the first ones") String keepAttention;
    @Option(names = "--resident-layers", paramLabel = "N", description = "with parameters offloaded, the first N "
            + "decoder layers stay on the GPU with their optimizer state (with --gpus, each GPU's shards of them; the engine's train --resident-layers)") Integer residentLayers;
    @Option(names = "--resident-embedding", description = "with parameters offloaded, the embedding matrix (with --gpus, each GPU's shard of it) stays on "
            + "the GPU with its optimizer state (the engine's train --resident-embedding)") boolean residentEmbedding;
    @Option(names = "--prefetch-checkpoints", description = "with offloaded checkpoints, the layer below's brought back while a "
            + "layer's backward runs (train does it where the GPU has the room)") boolean prefetchCheckpoints;
    @Option(names = "--keep-last-layer", description = "under checkpointing, the last layer's saved tensors stay on the GPU "
            + "through the loss and its backward does not recompute it (train does it where the GPU has the room)") boolean keepLastLayer;
    @Option(names = "--host-ram", description = "override the node's host RAM, e.g. 512GiB") String hostRam;

    ModelConfig model() { return ModelCatalog.get(model); }

    EngineProfile profile() { return EngineProfile.parse(profile); }

    NodeProfile node() {
        NodeProfile n = NodeCatalog.get(node);
        if (gpus != null) {
            n = n.withGpus(gpus); // names the valid range when gpus is out of it
        }
        return hostRam == null ? n : n.withHostRam(Units.parseBytes(hostRam));
    }

    /** The named stack with every given flag applied on top. */
    TechniqueSet techniques() { return techniquesOn(node()); }

    /** The same on {@code node} (a capped GPU or the CPU engine, where a command measures instead of planning). */
    TechniqueSet techniquesOn(NodeProfile node) {
        TechniqueSet t = Stacks.named(stack, node, profile());
        if (precision != null) t = t.withPrecision(Precision.parse(precision));
        if (checkpointing != null) t = t.withCheckpointing(Checkpointing.parse(checkpointing));
        if (attention != null) t = t.withAttention(Attention.parse(attention));
        if (liger != null) t = t.withLiger(parseLiger(liger));
        if (zero != null || offloadOptimizer != null || offloadParameters != null) {
            t = t.withZero(zero != null ? zero : t.zeroStage(),
                    offloadOptimizer != null ? offloadOptimizer : t.offloadOptimizer(),
                    offloadParameters != null ? offloadParameters : t.offloadParameters());
        }
        if (pinned != null) t = t.withPinnedMemory(PinnedMemory.parse(pinned));
        if (microBatch != null) t = t.withMicroBatch(microBatch);
        if (gradAccum != null) t = t.withGradientAccumulation(gradAccum);
        if (nodes != null) t = t.withNodes(nodes);
        if (tile != null) t = t.withSequenceTile(tile);
        if (keepAttention != null) t = t.withKeptAttentionLayers(keptAttentionLayers(keepAttention));
        if (residentLayers != null) t = t.withResidentLayers(residentLayers);
        if (residentEmbedding) t = t.withResidentEmbedding(true);
        if (prefetchCheckpoints) t = t.withPrefetchCheckpoints(true);
        if (keepLastLayer) t = t.withKeepLastLayer(true);
        return t;
    }

    /** plan --keep-attention: all (every layer of the model planned) or a number of layers; auto is train's. */
    static int keptAttentionLayers(String value) {
        String v = value.trim().toLowerCase(java.util.Locale.ROOT);
        if (v.isEmpty() || v.equals("all")) {
            return dev.longtune.config.TechniqueSet.ALL_LAYERS;
        }
        try {
            int n = Integer.parseInt(v);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // named below
        }
        throw new IllegalArgumentException("--keep-attention " + value + ": use all or a number of layers (0 or more; "
                + "more than the model has means all)" + (v.equals("auto") ? "; auto is train's, which knows the host it runs on" : ""));
    }

    static Set<LigerOp> parseLiger(String[] values) {
        if (values.length == 1 && values[0].equalsIgnoreCase("all")) {
            return EnumSet.allOf(LigerOp.class);
        }
        if (values.length == 1 && values[0].equalsIgnoreCase("none")) {
            return EnumSet.noneOf(LigerOp.class);
        }
        Set<LigerOp> ops = EnumSet.noneOf(LigerOp.class);
        for (String v : values) {
            ops.add(LigerOp.parse(v));
        }
        return ops;
    }
}
