package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.GpuProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.TechniqueSet;

/**
 * Tokens per second from per-op rates measured on one H200 (bench/results/h200-2026-11-28.json, docs/benchmarks.md):
 * the GEMMs, attention forward and backward, and the fused loss at their achieved TFLOP/s; copies over the host
 * link; AdamW at its measured throughput. Another GPU gets the same fraction of its own dense peak (the H200's
 * measured rate × its peak / 989 TFLOP/s). Overlap rules, not factors: copies run on their own streams and hide
 * behind compute up to the compute time; the optimizer step follows the backward (neither DeepSpeed, FSDP2 nor
 * longtune's engine overlaps it yet).
 *
 * <p>FLOPs per token: {@code 6·N'} for the matmul weights N' (all parameters but the input embedding, a lookup)
 * plus the causal attention term {@code 6·L·(H·d)·s}; checkpointing runs each layer's forward once more (the
 * loss is not recomputed); a tiled MLP recomputes its forward, 2·3·h·f·L more per token.
 */
public final class ThroughputModel {
    /** The H200's dense BF16 peak, the scale for other GPUs. */
    static final double H200_PEAK_TFLOPS = 989;
    /** cuBLAS bf16 GEMM (8192 × 4096 · 14336 × 4096): torch.matmul 790.3, ours 798.7 TFLOP/s. */
    static final double GEMM_TORCH = 790.3, GEMM_OURS = 798.7;
    /**
     * Attention at 131,072 tokens (32/8 heads, d 128, causal), forward and forward+backward TFLOP/s counted as
     * 2·s²·q·(1 or 3.5): PyTorch SDPA (flash backend) 331.6 / 326.0. The official FlashAttention-2 is SDPA's flash
     * backend.
     */
    static final double SDPA_FWD = 331.6, SDPA_FWD_BWD = 326.0;
    /**
     * Ours, by the kernel path a GPU runs (kernels/cuda/flash_attention*.md), measured on the H200 at 131,072 tokens:
     * the Hopper (wgmma) kernels of sm_90, launched from Java (GpuBench, bench/results/sm90-fwd-tma-2026-12-02):
     * forward 597 (warp-specialised, K and V by TMA, three stages, intra-warpgroup overlap, ping-pong),
     * forward+backward 544 (the warp-specialised backward, Q and dO by TMA). Before them: 554 / 515 (cp.async
     * producers, 2026-12-01 evening), 470.8 / 481.6 (2026-12-01, morning), 470.8 / 430.5 and 397.7; MeasuredSteps
     * says which kernels each 8B row was measured with.
     */
    static final double OURS_HOPPER_FWD = 597.0, OURS_HOPPER_FWD_BWD = 544.0;
    /** The mma.sync kernels (sm_80 and sm_100-class GPUs; v4, check_flash_attention.py) 321.7 / 274.8. */
    static final double OURS_MMA_FWD = 321.7, OURS_MMA_FWD_BWD = 274.8;
    /**
     * The mma.sync kernels built for 99 KiB of shared memory per block (sm_86/87/89/120: A6000, L40, RTX 4090), on the
     * H200 with one block per SM as an A6000 runs them, at 65,536 tokens (flash-attention-small-smem-h200.json,
     * 2026-11-30) 281.7 / 245.7.
     */
    static final double OURS_MMA_SMALL_FWD = 281.7, OURS_MMA_SMALL_FWD_BWD = 245.7;
    /**
     * The WMMA kernels (Volta, Turing), forced on the H200 at 65,536 tokens (flash-attention-paths-h200.json,
     * 2026-11-30) 112.4 / 63.5.
     */
    static final double OURS_WMMA_FWD = 112.4, OURS_WMMA_FWD_BWD = 63.5;

    /** Our attention's forward and forward+backward H200-equivalent TFLOP/s on {@code gpu}'s kernel path. */
    static double[] oursAttention(GpuProfile gpu) {
        int cc = gpu.computeCapability();
        if (cc == 90) {
            return new double[] {OURS_HOPPER_FWD, OURS_HOPPER_FWD_BWD};
        }
        if (cc < 80) {
            return new double[] {OURS_WMMA_FWD, OURS_WMMA_FWD_BWD};
        }
        boolean smallSharedMemory = cc == 86 || cc == 87 || cc == 89 || cc == 120;
        return smallSharedMemory ? new double[] {OURS_MMA_SMALL_FWD, OURS_MMA_SMALL_FWD_BWD}
                : new double[] {OURS_MMA_FWD, OURS_MMA_FWD_BWD};
    }
    /**
     * SDPA as PyTorch 2.11 dispatches it by default on the H200 for these shapes: cuDNN attention
     * (bench/results/sdpa-backends-h200.json, backend "default"), forward / forward+backward TFLOP/s at 32,768
     * tokens 666.8 / 568.6 and at 131,072 tokens 556.5 / 563.3 (the flash backend there: 349.7 / 326.6 and
     * 324.5 / 327.5). Between the two lengths the rate is interpolated linearly in log s; outside, the nearer
     * one is used.
     */
    static final double SDPA_DEFAULT_FWD_32K = 666.8, SDPA_DEFAULT_FWD_BWD_32K = 568.6,
            SDPA_DEFAULT_FWD_128K = 556.5, SDPA_DEFAULT_FWD_BWD_128K = 563.3;
    /** Eager attention was not timed: an allowance of 10% of the peak (it is bound by the s² score traffic). */
    static final double EAGER_FRACTION = 0.1;
    /**
     * Fused linear cross-entropy at 131,072 tokens with no token masked, 6·V·h FLOPs per token: ours 606.0 (681.8 ms,
     * the two-pass softmax rows), PyTorch chunked 547.4 (754.7 ms), one run (bench/results/flce-masked-rows-2026-12-01).
     */
    static final double FLCE_OURS = 606.0, FLCE_TORCH = 547.4;
    /**
     * AdamW on the GPU, parameters per second per TB/s of HBM. Ours, one pass per tensor (adamw_step_scaled, about 30
     * bytes per parameter): 1.49B parameters in 15.7 ms (2-layer step 119.7 ms − forward+backward 104.0 ms at 8K,
     * bench/results/gpu-bench-2026-12-01-train-step) on the H200's 4.8 TB/s. Others (PyTorch's foreach AdamW, not
     * timed alone): the rate ours had through FP32 copies of the gradients (about 60 bytes per parameter), 1.49B in
     * 37.7 ms (2-layer step 909.8 ms − forward+backward 872.1 ms at 32K, 2026-11-28).
     */
    static final double GPU_ADAM_PARAMS_PER_S_PER_TBPS = 1.49e9 / 0.0157 / 4.8, OTHERS_GPU_ADAM_PARAMS_PER_S_PER_TBPS = 1.49e9 / 0.0377 / 4.8;
    /**
     * PyTorch's CPU AdamW (foreach) in FSDP2 with CPU offload on the 2×H200 host: 5.1 s for a rank's
     * 4,015,130,624 parameters while the other rank updates its own (issue 10's 32K breakdown).
     */
    static final double CPU_ADAM_PARAMS_PER_S = 8_030_261_248.0 / 2 / 5.1;
    /**
     * Our native CPU AdamW streams at this fraction of the host's memory bandwidth (3.68e9 parameters/s, 110 GB/s,
     * 79% of the triad bandwidth on the 2×H200 host: docs/benchmarks.md, "CPU AdamW").
     */
    static final double OURS_CPU_ADAM_BANDWIDTH_FRACTION = 0.79;
    /**
     * What the collectives of data parallelism cost the compute beside them: NCCL's kernels hold SMs while they run, so
     * the GPU's own work takes longer. Measured on 2×H200 at 32,768 tokens per GPU (ZeRO-3, the warp-specialised
     * attention; bench/results/sm90-bwd-ws-2026-12-01/d): 5.50 s busy per step against one GPU's 5.24 s on the same
     * per-GPU work, for 32.1 GB of all-gathers and reduce-scatters per GPU (communication_s 1.62 s, 99% of it
     * hidden): 0.26 s per 32.1 GB. Counted per byte, so it fades at long contexts as the measurements do (128K: about
     * 1% of the step). One measurement, on our engine over NVLink, applied to every profile and to several nodes
     * alike (NCCL's kernels take SMs there too); being added to the compute, it also lengthens the time that hides
     * the copies and the forward that hides the host AdamW.
     */
    static final double COLLECTIVE_BUSY_S_PER_GB = 0.26 / 32.1;
    /** Bytes one mixed-precision AdamW update moves per parameter: read p, m, v, g (4 × 4), write p, m, v (3 × 4), the 16-bit copy (2). */
    public static final int ADAM_BYTES_PER_PARAMETER = 4 * 4 + 3 * 4 + 2;

    private final EngineProfile profile;

    public ThroughputModel(EngineProfile profile) { this.profile = profile; }

    public static double flopsPerToken(ModelConfig m, TechniqueSet s, long context) {
        return layerGemmFlopsPerToken(m) * recompute(m, s) + lossFlopsPerToken(m)
                + attentionFlopsPerToken(m, context) * recompute(m, s) + tiledMlpRecomputePerToken(m, s, (long) s.microBatch() * context);
    }

    /** The layers' forward+backward work with the recompute: 1 + ⅓ of the share of layers that are checkpointed. */
    static double recompute(ModelConfig m, TechniqueSet s) {
        int layers = m.numLayers();
        return layers == 0 ? 1 : 1 + (double) s.checkpointedLayers(layers) / layers / 3;
    }

    /** 6 × the decoder layers' matmul weights. */
    static double layerGemmFlopsPerToken(ModelConfig m) {
        double matmul = m.totalParameters() - m.embeddingParameters() - m.lmHeadParameters()
                - normParameters(m);
        return 6 * matmul;
    }

    /** 6·V·h: the LM head's forward, input gradient and weight gradient. */
    static double lossFlopsPerToken(ModelConfig m) { return 6.0 * m.vocabSize() * m.hiddenSize(); }

    private static double normParameters(ModelConfig m) { return (2.0 * m.numLayers() + 1) * m.hiddenSize(); }

    static double attentionFlopsPerToken(ModelConfig m, long context) {
        return 6.0 * m.numLayers() * m.queryDim() * context;
    }

    /** A tiled MLP recomputes its forward (2·3·h·f per token per layer) during backward. */
    static double tiledMlpRecomputePerToken(ModelConfig m, TechniqueSet s, long tokens) {
        return s.sequenceTile() > 0 && tokens > s.sequenceTile()
                ? 2.0 * 3 * m.hiddenSize() * m.intermediateSize() * m.numLayers() : 0;
    }

    /** An H200-measured rate scaled to this GPU's dense peak in this precision, in FLOP/s. */
    static double scaled(double h200Tflops, GpuProfile gpu, Precision precision) {
        double peak = precision == Precision.BF16 ? gpu.bf16Tflops() : gpu.fp16Tflops();
        if (precision == Precision.FP32) {
            peak /= 8; // no FP32 tensor cores at full rate; TF32 is not modelled
        }
        return h200Tflops * peak / H200_PEAK_TFLOPS * 1e12;
    }

    /** Seconds of attention for one step's layers: forward (twice under checkpointing) and backward. */
    double attentionSeconds(ModelConfig m, GpuProfile gpu, TechniqueSet s, long context) {
        double forward = 2.0 * context * m.queryDim() * s.microBatch() * context * m.numLayers(); // causal: 2·s²·q per layer
        boolean ours = profile == EngineProfile.LONGTUNE && s.attention() == Attention.FLASH_ATTENTION_2;
        double fwd, fwdBwd;
        if (s.attention() == Attention.EAGER) {
            fwd = fwdBwd = EAGER_FRACTION * H200_PEAK_TFLOPS;
        } else if (ours) {
            double[] rates = oursAttention(gpu);
            fwd = rates[0];
            fwdBwd = rates[1];
        } else if (s.attention() == Attention.SDPA) {
            fwd = sdpaDefault(SDPA_DEFAULT_FWD_32K, SDPA_DEFAULT_FWD_128K, context);
            fwdBwd = sdpaDefault(SDPA_DEFAULT_FWD_BWD_32K, SDPA_DEFAULT_FWD_BWD_128K, context);
        } else {
            // the official FlashAttention-2 is SDPA's flash backend
            fwd = SDPA_FWD;
            fwdBwd = SDPA_FWD_BWD;
        }
        // under checkpointing the forward runs again in backward, attention included in the layers that did not keep
        // their output
        int layers = m.numLayers();
        double recomputedShare = layers == 0 ? 0
                : (double) (s.checkpointedLayers(layers) - s.offloadedAttentionLayers(layers)) / layers;
        double recomputed = recomputedShare * forward / scaled(fwd, gpu, s.precision());
        return 3.5 * forward / scaled(fwdBwd, gpu, s.precision()) + recomputed;
    }

    /** A default-dispatch SDPA rate at {@code context}: linear in log s between 32,768 and 131,072 tokens, clamped. */
    static double sdpaDefault(double at32k, double at128k, long context) {
        double x = (Math.log(context) - Math.log(32_768)) / (Math.log(131_072) - Math.log(32_768));
        x = Math.max(0, Math.min(1, x));
        return at32k + x * (at128k - at32k);
    }

    public Throughput estimate(ModelConfig m, NodeProfile node, TechniqueSet s, long context) {
        GpuProfile gpu = node.gpu();
        int e = s.precision().bytes;
        long tokens = (long) s.microBatch() * context;
        int P = s.gpusOn(node) * s.nodes();
        boolean ours = profile == EngineProfile.LONGTUNE;
        double gemm = scaled(ours ? GEMM_OURS : GEMM_TORCH, gpu, s.precision());
        double loss = s.uses(LigerOp.FUSED_LINEAR_CROSS_ENTROPY) ? scaled(ours ? FLCE_OURS : FLCE_TORCH, gpu, s.precision()) : gemm;
        double compute = (layerGemmFlopsPerToken(m) * recompute(m, s) + tiledMlpRecomputePerToken(m, s, tokens)) * tokens / gemm
                + lossFlopsPerToken(m) * tokens / loss
                + attentionSeconds(m, gpu, s, context);

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
            int offloaded = ours ? s.checkpointedLayers(m.numLayers()) : m.numLayers();
            transfer += 2.0 * offloaded * tokens * m.hiddenSize() * e / link; // out in forward, back in backward
            if (s.keepAttention()) { // att and lse of the layers that keep them too
                int kept = ours ? s.offloadedAttentionLayers(m.numLayers()) : s.keptAttentionLayers(m.numLayers());
                transfer += 2.0 * kept * tokens * (m.queryDim() * e + 4.0 * m.numHeads()) / link;
            }
        }
        // copies run on their own streams, prefetched: hidden up to the compute time
        if (P > 1) { // the collectives' kernels share the SMs with the compute they overlap
            double gathers = s.zeroStage() == 3 ? passes : 0;
            compute += COLLECTIVE_BUSY_S_PER_GB * (gathers + 1) * e * n * (P - 1) / P / 1e9;
        }
        double exposed = Math.max(0, transfer - compute);

        double optimizer;
        double optimizerExposed;
        if (s.offloadOptimizer() && ours) {
            // one process per node runs the native AdamW over all its ranks' shards, bound by the host's memory
            // bandwidth, in the background while the next step's forward runs (each layer waits only for its own
            // update): what outlasts that forward is exposed
            // layers resident on the GPU are updated there, in a moment: the host updates the rest
            // (with ZeRO-3, every rank's shards of them: the node's host updates the rest)
            double onHost = s.offloadParameters() ? n - (double) s.residentLayers(m.numLayers()) * m.layerParameters()
                    - (s.residentEmbedding() ? (double) m.vocabSize() * m.hiddenSize() : 0) : n;
            optimizer = ADAM_BYTES_PER_PARAMETER * onHost / s.nodes() / (OURS_CPU_ADAM_BANDWIDTH_FRACTION * node.hostMemoryGBps() * 1e9);
            double forward = compute / (s.checkpointing() == Checkpointing.NONE ? 3 : 4); // forward : (recompute :) backward = 1 : (1 :) 2
            optimizerExposed = Math.max(0, optimizer - forward);
        } else if (s.offloadOptimizer()) {
            // each GPU's process updates its shard; all of a node's processes share its DRAM bandwidth
            double perProcess = n / P / CPU_ADAM_PARAMS_PER_S;
            double dram = ADAM_BYTES_PER_PARAMETER * n / s.nodes() / (node.hostMemoryGBps() * 1e9);
            optimizer = Math.max(perProcess, dram);
            optimizerExposed = optimizer;
        } else {
            int parts = s.zeroStage() >= 1 ? P : 1;
            double rate = ours ? GPU_ADAM_PARAMS_PER_S_PER_TBPS : OTHERS_GPU_ADAM_PARAMS_PER_S_PER_TBPS;
            optimizer = n / parts / (rate * gpu.hbmGBps() / 1000);
            optimizerExposed = optimizer;
        }
        int ga = s.gradientAccumulation();
        double stepSeconds = ga * (compute + exposed) + optimizerExposed;
        double tokensPerSecond = P * tokens * ga / stepSeconds;
        return new Throughput(flopsPerToken(m, s, context), compute, transfer, exposed, optimizer, tokensPerSecond);
    }
}
