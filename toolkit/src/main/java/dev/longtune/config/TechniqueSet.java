package dev.longtune.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Everything about how a model is trained that changes memory or speed. Immutable; the {@code with…}
 * methods return changed copies, so a named stack can be refined flag by flag.
 *
 * @param zeroStage          ZeRO stage 0 (data parallel) to 3 (parameters partitioned)
 * @param offloadOptimizer   FP32 master weights, Adam moments and FP32 gradients live in host memory
 * @param offloadParameters  the compute-precision weights live in host memory, gathered layer by layer
 * @param gpus               data-parallel GPUs used on each node; 0 means all of the node's GPUs
 * @param sequenceTile       tokens per tile for the MLP and the loss (0: untiled)
 * @param keptAttentionLayers layers (the first ones) whose attention output and lse are offloaded with their input
 *                           (checkpointing offload), so that the backward's recompute skips their attention: host memory
 *                           for speed at long context; 0 none, {@link #ALL_LAYERS} every layer
 * @param residentLayers     with parameters offloaded, the first decoder layers whose weights, gradients and
 *                           optimizer state stay on the GPU (with ZeRO-3 over several GPUs, each GPU's shards of them) (updated there by the GPU's AdamW), so that the host
 *                           optimizer has fewer layers to update before the next forward reaches them: GPU memory for
 *                           speed where the host optimizer is slower than the forward (short contexts); 0 none
 * @param residentEmbedding  the same for the embedding matrix: the next forward's first unit no longer waits for the
 *                           host's update of it
 * @param prefetchCheckpoints with offloaded checkpoints, the engine brings the layer below's checkpoint back while a
 *                           layer's backward runs (one more layer input on the GPU at the backward's peak, for copies
 *                           off the critical path); train turns it on where the GPU has the room
 * @param keepLastLayer      under checkpointing, the last layer's saved tensors and input stay on the GPU through the
 *                           loss and its backward does not recompute it (one layer's saved tensors more in the loss
 *                           phase, one layer's forward less a step); train turns it on where the GPU has the room
 */
public record TechniqueSet(
        Precision precision,
        Checkpointing checkpointing,
        Attention attention,
        Set<LigerOp> liger,
        int zeroStage,
        boolean offloadOptimizer,
        boolean offloadParameters,
        PinnedMemory pinnedMemory,
        int microBatch,
        int gradientAccumulation,
        int gpus,
        int nodes,
        int sequenceTile,
        int keptAttentionLayers,
        int residentLayers,
        boolean residentEmbedding,
        boolean prefetchCheckpoints,
        boolean keepLastLayer) {

    /** {@link #keptAttentionLayers} for every layer of whatever model the stack runs. */
    public static final int ALL_LAYERS = Integer.MAX_VALUE;

    public TechniqueSet {
        liger = liger.isEmpty() ? Collections.unmodifiableSet(EnumSet.noneOf(LigerOp.class))
                : Collections.unmodifiableSet(EnumSet.copyOf(liger));
    }

    public boolean uses(LigerOp op) { return liger.contains(op); }

    /** Problems with this set on this node under this engine profile; empty when it is valid. */
    public List<String> problems(NodeProfile node, EngineProfile profile) {
        List<String> out = new ArrayList<>();
        GpuProfile gpu = node.gpu();
        if (precision == Precision.BF16 && !gpu.supportsBf16() && !gpu.isCpu()) { // the CPU engine rounds to BF16 itself
            out.add("BF16 needs compute capability 8.0 or newer, and " + gpu.name() + " is sm_"
                    + gpu.computeCapability() + ": use --precision fp16 (dynamic loss scaling)");
        }
        if (attention == Attention.FLASH_ATTENTION_2 && profile == EngineProfile.HF_DEEPSPEED
                && !gpu.supportsOfficialFlashAttention2()) {
            out.add("the official FlashAttention-2 of the hf-deepspeed stack needs sm_80 or newer, and "
                    + gpu.name() + " is sm_" + gpu.computeCapability()
                    + ": use --attention sdpa, or --profile longtune whose FlashAttention-2 runs on Volta");
        }
        if (zeroStage < 0 || zeroStage > 3) {
            out.add("ZeRO stage must be 0, 1, 2 or 3, was " + zeroStage);
        }
        if (offloadParameters && zeroStage != 3) {
            out.add("parameter offload needs ZeRO stage 3 (parameters partitioned), but the stage is "
                    + zeroStage + ": add --zero 3 or drop --offload-parameters");
        }
        if (offloadOptimizer && zeroStage == 0) {
            out.add("optimizer offload needs ZeRO stage 1 or higher: add --zero 1 (or 2, 3)");
        }
        positive(out, "micro-batch", microBatch);
        positive(out, "gradient accumulation", gradientAccumulation);
        positive(out, "nodes", nodes);
        if (gpus < 0 || gpus > node.gpus()) {
            out.add("GPUs per node must be between 1 and " + node.gpus() + " on " + node.name() + ", was " + gpus);
        }
        if (sequenceTile < 0) {
            out.add("sequence tile must be 0 (untiled) or positive, was " + sequenceTile);
        }
        if (keptAttentionLayers < 0) {
            out.add("layers with kept attention must be 0 or more, was " + keptAttentionLayers);
        }
        if (residentLayers < 0) {
            out.add("resident layers must be 0 or more, was " + residentLayers);
        }
        if ((residentLayers > 0 || residentEmbedding) && !(offloadParameters && offloadOptimizer)) {
            out.add("resident layers keep some layers on the GPU out of an offloaded model: they need parameters and "
                    + "optimizer offloaded (--offload parameters,optimizer)");
        }
        if (keepAttention() && checkpointing != Checkpointing.OFFLOAD) {
            out.add("keeping attention outputs offloads them with the layer inputs: it needs --checkpointing offload, "
                    + "not " + checkpointing.id);
        }
        if (keepLastLayer && checkpointing == Checkpointing.NONE) {
            out.add("keeping the last layer's saved tensors is for checkpointed runs (with checkpointing none every layer "
                    + "keeps them): use --checkpointing device or offload, or drop --keep-last-layer");
        }
        return out;
    }

    public void requireValid(NodeProfile node, EngineProfile profile) {
        List<String> p = problems(node, profile);
        if (!p.isEmpty()) {
            throw new InvalidTechniqueException(p);
        }
    }

    private static void positive(List<String> out, String what, int value) {
        if (value <= 0) {
            out.add(what + " must be positive, was " + value);
        }
    }

    /** GPUs per node in use on {@code node}. */
    public int gpusOn(NodeProfile node) { return gpus == 0 ? node.gpus() : gpus; }

    /** Short human description, e.g. {@code bf16 ckpt=offload attn=fa2 liger=all zero3+opt+param mb=1}. */
    public String describe() {
        String ligerText = liger.size() == LigerOp.values().length ? "all"
                : liger.isEmpty() ? "none" : liger.stream().map(o -> o.id).collect(Collectors.joining(","));
        return precision.id + " ckpt=" + checkpointing.id + " attn=" + attention.id + " liger=" + ligerText
                + " zero" + zeroStage + (offloadOptimizer ? "+opt" : "") + (offloadParameters ? "+param" : "")
                + " pinned=" + pinnedMemory.id + " mb=" + microBatch
                + (gradientAccumulation > 1 ? " ga=" + gradientAccumulation : "")
                + (sequenceTile > 0 ? " tile=" + sequenceTile : "")
                + (keptAttentionLayers == ALL_LAYERS ? " keep-attn" : keepAttention() ? " keep-attn=" + keptAttentionLayers : "")
                + (residentLayers > 0 ? " resident=" + residentLayers : "")
                + (residentEmbedding ? " resident-embedding" : "")
                + (prefetchCheckpoints ? " prefetch" : "")
                + (keepLastLayer ? " keep-last-layer" : "");
    }

    /** Whether any layer keeps its attention output (see {@link #keptAttentionLayers}). */
    public boolean keepAttention() { return keptAttentionLayers > 0; }

    /** How many of a model's {@code layers} go through a checkpoint (their forward runs again in backward). */
    public int checkpointedLayers(int layers) {
        return checkpointing == Checkpointing.NONE ? 0 : keepLastLayer ? Math.max(0, layers - 1) : layers;
    }

    /**
     * How many of a model's {@code layers} send their attention output and lse to the host: the kept ones
     * ({@link #keptAttentionLayers}) but the last layer where it keeps all its saved tensors on the GPU.
     */
    public int offloadedAttentionLayers(int layers) { return Math.min(checkpointedLayers(layers), keptAttentionLayers(layers)); }

    /** How many of a model's {@code layers} keep their attention output. */
    public int keptAttentionLayers(int layers) { return Math.min(layers, keptAttentionLayers); }

    public TechniqueSet withPrecision(Precision v) { return new TechniqueSet(v, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withCheckpointing(Checkpointing v) { return new TechniqueSet(precision, v, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withAttention(Attention v) { return new TechniqueSet(precision, checkpointing, v, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withLiger(Set<LigerOp> v) { return new TechniqueSet(precision, checkpointing, attention, v, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withZero(int stage, boolean optimizer, boolean parameters) { return new TechniqueSet(precision, checkpointing, attention, liger, stage, optimizer, parameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withPinnedMemory(PinnedMemory v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, v, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withMicroBatch(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, v, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withGradientAccumulation(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, v, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withGpus(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, v, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withNodes(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, v, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    public TechniqueSet withSequenceTile(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, v, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    /** Each layer's attention output and lse offloaded with its input, so that backward's recompute skips attention. */
    public TechniqueSet withKeepAttention(boolean v) { return withKeptAttentionLayers(v ? ALL_LAYERS : 0); }
    /** The first {@code v} layers' attention outputs and lse kept ({@link #ALL_LAYERS}: every layer's). */
    public TechniqueSet withKeptAttentionLayers(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, v, residentLayers, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    /** The first {@code v} decoder layers resident on the GPU with their optimizer state (see {@link #residentLayers}). */
    public TechniqueSet withResidentLayers(int v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, v, residentEmbedding, prefetchCheckpoints, keepLastLayer); }
    /** Offloaded checkpoints brought back a layer ahead in backward (see {@link #prefetchCheckpoints}). */
    public TechniqueSet withPrefetchCheckpoints(boolean v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, v, keepLastLayer); }
    /** The last layer's saved tensors kept on the GPU for its backward, not recomputed (see {@link #keepLastLayer}). */
    public TechniqueSet withKeepLastLayer(boolean v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, residentEmbedding, prefetchCheckpoints, v); }
    /** The embedding matrix resident on the GPU with its optimizer state (see {@link #residentEmbedding}). */
    public TechniqueSet withResidentEmbedding(boolean v) { return new TechniqueSet(precision, checkpointing, attention, liger, zeroStage, offloadOptimizer, offloadParameters, pinnedMemory, microBatch, gradientAccumulation, gpus, nodes, sequenceTile, keptAttentionLayers, residentLayers, v, prefetchCheckpoints, keepLastLayer); }

    /** How many of a model's {@code layers} stay resident on the GPU. */
    public int residentLayers(int layers) { return Math.min(layers, residentLayers); }
}
