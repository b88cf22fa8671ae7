package dev.longtune.config;

import java.util.EnumSet;
import java.util.List;
import java.util.Locale;

/**
 * The named technique stacks. Each of {@code ckpt}, {@code ckpt-offload}, {@code liger}, {@code fa2} and
 * {@code zero-offload} is the baseline plus that one technique, so a table shows what each buys alone;
 * {@code all} combines them and {@code all-tiled} adds sequence tiling of the MLP and the loss.
 * {@code study} is the published study's exact set on the node; {@code engine} is the most memory-saving set
 * longtune's engine runs today ({@link EngineSupport}): one GPU, parameters and optimizer offloaded.
 *
 * <p>The baseline is what a plain multi-GPU Hugging Face finetune uses: mixed precision (BF16 where the
 * GPU has it, FP16 otherwise), eager attention, no checkpointing, no fused kernels, ZeRO-3 without
 * offload, micro-batch 1, pinned memory through PyTorch's caching allocator.
 */
public final class Stacks {
    public static final List<String> NAMES = List.of(
            "baseline", "ckpt", "ckpt-offload", "liger", "fa2", "zero-offload", "all", "all-tiled", "study", "engine");
    /** Tile for {@code all-tiled}: the MLP and the loss see at most this many tokens at once. */
    public static final int DEFAULT_TILE = 8192;

    private Stacks() {}

    public static TechniqueSet named(String name, NodeProfile node, EngineProfile profile) {
        String key = name.trim().toLowerCase(Locale.ROOT);
        TechniqueSet base = baseline(node, profile);
        return switch (key) {
            case "baseline" -> base;
            case "ckpt" -> base.withCheckpointing(Checkpointing.DEVICE);
            case "ckpt-offload" -> base.withCheckpointing(Checkpointing.OFFLOAD);
            case "liger" -> base.withLiger(EnumSet.allOf(LigerOp.class));
            case "fa2" -> base.withAttention(bestAttention(node, profile));
            case "zero-offload" -> base.withZero(3, true, true);
            case "all" -> all(base, node, profile);
            case "all-tiled" -> all(base, node, profile).withSequenceTile(DEFAULT_TILE);
            case "study" -> study(node, profile);
            case "engine" -> engine(node, profile);
            default -> throw new IllegalArgumentException("unknown stack '" + name + "': use one of " + NAMES);
        };
    }

    /** The published study's set: ZeRO-3 with optimizer and parameter offload, Liger, offloaded checkpoints. */
    public static TechniqueSet study(NodeProfile node, EngineProfile profile) {
        // The study ran V100 without FlashAttention-2, i.e. with Hugging Face's default SDPA attention
        // (its peak memory grows linearly with context, which eager attention cannot do).
        Attention attention = node.gpu().supportsOfficialFlashAttention2() ? Attention.FLASH_ATTENTION_2
                : Attention.SDPA;
        return baseline(node, profile).withAttention(attention)
                .withCheckpointing(Checkpointing.OFFLOAD)
                .withLiger(EnumSet.allOf(LigerOp.class))
                .withZero(3, true, true);
    }

    /**
     * The most memory-saving set longtune's engine runs today on one GPU: its FlashAttention-2, offloaded
     * checkpoints, every fused op, and parameters and optimizer on the host (ZeRO-3-style parameter offload,
     * model/OffloadedParameters, with AdamW on the CPU); no tiling.
     */
    public static TechniqueSet engine(NodeProfile node, EngineProfile profile) {
        return engineResident(node, profile).withZero(3, true, true);
    }

    /**
     * The same with the parameters resident on the GPU (the engine's faster setting): the optimizer on the host
     * (ZeRO-offload; stage 1, as one GPU has nothing to partition).
     */
    public static TechniqueSet engineResident(NodeProfile node, EngineProfile profile) {
        return baseline(node, profile).withAttention(Attention.FLASH_ATTENTION_2)
                .withCheckpointing(Checkpointing.OFFLOAD)
                .withLiger(EnumSet.allOf(LigerOp.class))
                .withZero(1, true, false)
                .withGpus(1);
    }

    /**
     * The stack one engine run on one device is, as the planner names it: its FlashAttention-2 and fused ops, the
     * given precision and checkpointing, ZeRO-offload when AdamW is on the host (stage 3 when the parameters are too).
     */
    public static TechniqueSet engineRun(NodeProfile node, Precision precision, boolean optimizerOnHost,
                                         boolean parametersOnHost, Checkpointing checkpointing) {
        return baseline(node, EngineProfile.LONGTUNE).withGpus(1).withPrecision(precision)
                .withZero(parametersOnHost ? 3 : optimizerOnHost ? 1 : 0, optimizerOnHost, parametersOnHost)
                .withCheckpointing(checkpointing).withAttention(Attention.FLASH_ATTENTION_2).withLiger(EnumSet.allOf(LigerOp.class));
    }

    private static TechniqueSet all(TechniqueSet base, NodeProfile node, EngineProfile profile) {
        return base.withAttention(bestAttention(node, profile))
                .withCheckpointing(Checkpointing.OFFLOAD)
                .withLiger(EnumSet.allOf(LigerOp.class))
                .withZero(3, true, true);
    }

    /** FlashAttention-2 where the profile's engine has it on this GPU, else SDPA (hf-deepspeed on V100). */
    static Attention bestAttention(NodeProfile node, EngineProfile profile) {
        return profile == EngineProfile.LONGTUNE || node.gpu().supportsOfficialFlashAttention2()
                ? Attention.FLASH_ATTENTION_2 : Attention.SDPA;
    }

    public static TechniqueSet baseline(NodeProfile node, EngineProfile profile) {
        Precision precision = node.gpu().supportsBf16() ? Precision.BF16 : Precision.FP16;
        PinnedMemory pinned = profile == EngineProfile.LONGTUNE ? PinnedMemory.POOL : PinnedMemory.CACHING;
        return new TechniqueSet(precision, Checkpointing.NONE, Attention.EAGER, EnumSet.noneOf(LigerOp.class),
                3, false, false, pinned, 1, 1, 0, 1, 0, 0, 0, false, false, false);
    }
}
