package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.TechniqueSet;

/**
 * Tokens per second from a roofline: FLOPs at a stated fraction of the GPU's dense tensor peak, bytes over
 * the host link and NVLink at their rates, the CPU optimizer at a stated fraction of host DRAM bandwidth.
 *
 * <p>FLOPs per token: {@code 6·N'} for the matmul weights N' (all parameters but the input embedding,
 * a lookup) plus the causal attention term {@code 6·L·(H·d)·s} (QKᵀ and PV, 2·2·s·H·d per token forward
 * for full attention, halved by the causal mask, tripled for forward + backward); checkpointing adds one
 * more forward, ×4/3; a tiled MLP recomputes its forward, 2·3·h·f·L more per token.
 */
public final class ThroughputModel {
    /** Fraction of the dense tensor peak reached by the large GEMMs of a decoder layer. */
    public static final double GEMM_EFFICIENCY = 0.5;
    /** Fraction of the dense peak reached by attention, by kernel (eager is bounded by memory traffic). */
    public static final double FLASH_EFFICIENCY = 0.5, SDPA_EFFICIENCY = 0.25, EAGER_EFFICIENCY = 0.1;
    /** Fraction of host DRAM bandwidth a CPU AdamW streams at: DeepSpeed's CPU Adam, longtune's design. */
    public static final double CPU_ADAM_EFFICIENCY_HF = 0.3, CPU_ADAM_EFFICIENCY_LONGTUNE = 0.8;
    /** Fraction of transfer time hidden behind compute (prefetching). */
    public static final double OVERLAP_HF = 0.5, OVERLAP_LONGTUNE = 0.9;
    /** Fraction of HBM bandwidth an on-GPU fused AdamW streams at. */
    public static final double GPU_ADAM_EFFICIENCY = 0.7;
    /** Bytes a mixed-precision AdamW step moves per parameter: read param, m, v, grad, write param, m, v, and the compute copy. */
    public static final int ADAM_BYTES_PER_PARAMETER = 4 * 4 + 3 * 4 + 2;

    private final EngineProfile profile;

    public ThroughputModel(EngineProfile profile) { this.profile = profile; }

    public static double flopsPerToken(ModelConfig m, TechniqueSet s, long context) {
        double recompute = s.checkpointing() == Checkpointing.NONE ? 1 : 4.0 / 3;
        return gemmFlopsPerToken(m, s, context) * recompute + attentionFlopsPerToken(m, context) * recompute
                + tiledMlpRecomputePerToken(m, s, (long) s.microBatch() * context);
    }

    static double gemmFlopsPerToken(ModelConfig m, TechniqueSet s, long context) {
        double matmulParams = m.totalParameters() - m.embeddingParameters()
                + (m.tieWordEmbeddings() ? m.embeddingParameters() : 0);
        return 6 * matmulParams;
    }

    static double attentionFlopsPerToken(ModelConfig m, long context) {
        return 6.0 * m.numLayers() * m.queryDim() * context;
    }

    /** A tiled MLP recomputes its forward (2·3·h·f per token per layer) during backward. */
    static double tiledMlpRecomputePerToken(ModelConfig m, TechniqueSet s, long tokens) {
        return s.sequenceTile() > 0 && tokens > s.sequenceTile()
                ? 2.0 * 3 * m.hiddenSize() * m.intermediateSize() * m.numLayers() : 0;
    }

    public Throughput estimate(ModelConfig m, NodeProfile node, TechniqueSet s, long context) {
        GpuProfile gpu = node.gpu();
        double peak = (s.precision() == Precision.BF16 ? gpu.bf16Tflops() : gpu.fp16Tflops()) * 1e12;
        if (s.precision() == Precision.FP32) {
            peak /= 8; // no FP32 tensor cores at full rate; TF32 is not modelled
        }
        int e = s.precision().bytes;
        long tokens = (long) s.microBatch() * context;
        int gpusPerNode = s.gpusOn(node);
        int P = gpusPerNode * s.nodes();
        double recompute = s.checkpointing() == Checkpointing.NONE ? 1 : 4.0 / 3;
        double gemmFlops = (gemmFlopsPerToken(m, s, context) * recompute + tiledMlpRecomputePerToken(m, s, tokens)) * tokens;
        double attnFlops = attentionFlopsPerToken(m, context) * recompute * tokens;
        double attnEfficiency = switch (s.attention()) {
            case FLASH_ATTENTION_2 -> FLASH_EFFICIENCY;
            case SDPA -> SDPA_EFFICIENCY;
            case EAGER -> EAGER_EFFICIENCY;
        };
        double compute = gemmFlops / (peak * GEMM_EFFICIENCY) + attnFlops / (peak * attnEfficiency);

        double link = gpu.hostLinkGBps() * 1e9;
        double peer = (gpu.nvlinkGBps() > 0 ? gpu.nvlinkGBps() : gpu.hostLinkGBps()) * 1e9;
        double n = m.totalParameters();
        double passes = s.checkpointing() == Checkpointing.NONE ? 2 : 3; // forward, (recompute,) backward
        double transfer = 0;
        if (s.offloadParameters()) {
            transfer += passes * e * n / P / link;                 // each GPU fetches its partition per pass
        }
        if (s.zeroStage() == 3 && P > 1) {
            transfer += passes * e * n * (P - 1) / P / peer;        // all-gather of every layer per pass
        }
        if (P > 1) {
            transfer += e * n * (P - 1) / P / peer;                 // reduce-scatter of gradients
        }
        if (s.offloadOptimizer()) {
            transfer += e * n / P / link + (s.offloadParameters() ? 0 : e * n / P / link); // grads out, weights back
        }
        if (s.checkpointing() == Checkpointing.OFFLOAD) {
            transfer += 2.0 * m.numLayers() * tokens * m.hiddenSize() * e / link; // out in forward, back in backward
        }
        double overlap = profile == EngineProfile.LONGTUNE ? OVERLAP_LONGTUNE : OVERLAP_HF;
        double exposed = Math.max(transfer - overlap * compute, (1 - overlap) * transfer);

        double optimizer;
        if (s.offloadOptimizer()) {
            double efficiency = profile == EngineProfile.LONGTUNE ? CPU_ADAM_EFFICIENCY_LONGTUNE : CPU_ADAM_EFFICIENCY_HF;
            // every node updates its share of the partitions; nodes work in parallel
            optimizer = ADAM_BYTES_PER_PARAMETER * n / s.nodes() / (node.hostMemoryGBps() * 1e9 * efficiency);
        } else {
            optimizer = ADAM_BYTES_PER_PARAMETER * n / P / (gpu.hbmGBps() * 1e9 * GPU_ADAM_EFFICIENCY);
        }
        int ga = s.gradientAccumulation();
        double stepSeconds = ga * (compute + exposed) + optimizer;
        double tokensPerSecond = P * tokens * ga / stepSeconds;
        return new Throughput(flopsPerToken(m, s, context), compute, transfer, exposed, optimizer, tokensPerSecond);
    }
}
