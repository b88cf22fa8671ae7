package dev.longtune.config;

import java.util.ArrayList;
import java.util.List;

/**
 * Which technique sets longtune's engine runs today, as opposed to what the planner can plan. The engine
 * trains on one GPU (or the CPU) with BF16, FP16 or FP32 mixed precision, its own FlashAttention-2, the
 * fused RMSNorm, RoPE, SwiGLU and chunked fused linear cross-entropy, checkpointing none, on the device or
 * offloaded (layer inputs in pinned host memory), the optimizer on the device or on the host
 * (ZeRO-offload: AdamW on the CPU), and ZeRO-3-style parameter offload on its one GPU (model/OffloadedParameters:
 * weights and gradients in pinned host memory, a slot for the embedding/head and a ring of 2 layer slots on the
 * GPU; {@code train --offload parameters} implies the optimizer on the host). It does not tile the sequence, and
 * it does not shard over several GPUs, so ZeRO-3 means parameter offload on one GPU.
 */
public final class EngineSupport {
    private EngineSupport() {}

    /** What the engine lacks to run {@code s} on {@code node}, one reason each; empty when it runs it. */
    public static List<String> missing(TechniqueSet s, NodeProfile node) {
        List<String> out = new ArrayList<>();
        if (s.gpusOn(node) * s.nodes() > 1) {
            out.add("the engine trains on one GPU, not " + s.gpusOn(node) * s.nodes());
        }
        if (s.offloadParameters() && !s.offloadOptimizer()) {
            out.add("the engine's parameter offload keeps the optimizer on the host (--offload parameters implies "
                    + "optimizer): add the optimizer offload");
        }
        if (s.zeroStage() == 3 && !s.offloadParameters()) {
            out.add("ZeRO-3 with resident weights (partitions gathered layer by layer) is not in the engine: on one GPU "
                    + "its ZeRO-3 is parameter offload (--offload-parameters)");
        }
        if (s.attention() != Attention.FLASH_ATTENTION_2) {
            out.add("the engine's attention is its own FlashAttention-2, not " + s.attention().id);
        }
        if (s.liger().size() != LigerOp.values().length) {
            out.add("the engine always runs its fused RMSNorm, RoPE, SwiGLU and linear cross-entropy (liger=all)");
        }
        if (s.microBatch() != 1) {
            out.add("the engine packs documents into one sequence per micro-batch (micro-batch 1)");
        }
        return out;
    }

    public static boolean runs(TechniqueSet s, NodeProfile node) { return missing(s, node).isEmpty(); }
}
