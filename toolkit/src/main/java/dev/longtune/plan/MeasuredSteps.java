package dev.longtune.plan;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;

import java.util.EnumSet;
import java.util.List;
import java.util.Locale;

/**
 * Training steps measured on the GPUs we have, beside the throughput model's prediction for the same stack:
 * longtune's engine and Hugging Face on one H200 (bench/results/h200-2026-11-28.json, a 2-layer slice of
 * Llama 3.1 8B) and PyTorch FSDP2 with CPU offload of the whole 8B on 2×H200 (issue 10). The published study's
 * rows are in {@link Validation}.
 */
public final class MeasuredSteps {
    public record Row(String setup, ModelConfig model, NodeProfile node, EngineProfile profile, TechniqueSet stack,
                      long context, double measuredTokensPerSecond, Throughput predicted) {
        public double ratio() { return predicted.tokensPerSecond() / measuredTokensPerSecond; }
    }

    private MeasuredSteps() {}

    public static List<Row> rows() {
        ModelConfig full = ModelCatalog.get("llama-3.1-8b");
        ModelConfig slice = full.withLayers(2);
        NodeProfile h200 = NodeCatalog.get("1xH200"), twoH200 = NodeCatalog.get("2xH200");
        // FSDP2: parameters, gradients and AdamW state offloaded, inputs of each layer saved to pinned host, SDPA,
        // a chunked loss (the fused loss's cost), bf16, per GPU the same work
        TechniqueSet fsdp2 = Stacks.baseline(twoH200, EngineProfile.HF_DEEPSPEED).withAttention(Attention.SDPA)
                .withCheckpointing(Checkpointing.OFFLOAD).withLiger(EnumSet.of(LigerOp.FUSED_LINEAR_CROSS_ENTROPY))
                .withZero(3, true, true);
        // our engine: its FlashAttention (the Hopper kernels on the H200), fused ops, offloaded checkpoints, AdamW on the GPU
        TechniqueSet ours = Stacks.baseline(h200, EngineProfile.LONGTUNE).withAttention(Attention.FLASH_ATTENTION_2)
                .withCheckpointing(Checkpointing.OFFLOAD).withLiger(EnumSet.allOf(LigerOp.class)).withZero(0, false, false);
        // the whole 8B with parameters, AdamW and checkpoints offloaded, one random document filling the context (the
        // work the model assumes: bench/offload-sweep.sh; synthetic-LongCite runs pack shorter documents and padding)
        TechniqueSet oursOffload = ours.withZero(3, true, true);
        // Hugging Face: SDPA, non-reentrant checkpointing on the GPU, unfused ops and loss, torch AdamW on the GPU
        TechniqueSet hf = Stacks.baseline(h200, EngineProfile.HF_DEEPSPEED).withAttention(Attention.SDPA)
                .withCheckpointing(Checkpointing.DEVICE).withZero(0, false, false);
        return List.of(
                row("FSDP2 CPU offload, 8B, 2×H200", full, twoH200, EngineProfile.HF_DEEPSPEED, fsdp2, 32_768, 2 * 2_749),
                row("FSDP2 CPU offload, 8B, 2×H200", full, twoH200, EngineProfile.HF_DEEPSPEED, fsdp2, 131_072, 2 * 2_202),
                // 2026-12-01 evening, as `train` sets the slice up: checkpoints brought back a layer ahead and the last
                // layer's saved tensors kept through the loss (no recompute of it), buffers allocated for overwrite
                // (bench/results/keep-last-layer-2026-12-01; at 131,072 bench/results/offload-8b-128k-resident20-2026-12-02)
                row("longtune, 2-layer slice, H200 (last layer kept)", slice, h200, EngineProfile.LONGTUNE,
                        ours.withPrefetchCheckpoints(true).withKeepLastLayer(true), 8_192, 77_971),
                row("longtune, 2-layer slice, H200 (last layer kept)", slice, h200, EngineProfile.LONGTUNE,
                        ours.withPrefetchCheckpoints(true).withKeepLastLayer(true), 32_768, 68_230),
                row("longtune, 2-layer slice, H200 (last layer kept)", slice, h200, EngineProfile.LONGTUNE,
                        ours.withPrefetchCheckpoints(true).withKeepLastLayer(true), 131_072, 37_715),
                // The model carries today's attention kernels, so a row measured with older ones reads high. Dropped
                // 2026-12-02: the 48 GiB-cap rows without kept attention (4,756 at 32K, 2,100 at 128K, 2026-11-30,
                // the first Hopper backward: forward+backward 40% slower than the model's; docs/benchmarks.md keeps them).
                // --keep-attention, 2026-11-30 (offload-8b-{32k,128k}-48gib-keep-attention-h200.jsonl)
                row("longtune offload, kept attention, 8B, H200", full, h200, EngineProfile.LONGTUNE, oursOffload.withKeepAttention(true), 32_768, 4_848),
                // the warp-specialised Hopper backward (bench/results/sm90-bwd-ws-2026-12-01/r and q, the second
                // step; with the first layer resident, the median of steps 2-3)
                row("longtune offload, kept attention, 8B, H200", full, h200, EngineProfile.LONGTUNE,
                        oursOffload.withKeepAttention(true).withPrefetchCheckpoints(true), 131_072, 2_834),
                row("longtune offload, kept attention, 1 layer resident, 8B, H200", full, h200, EngineProfile.LONGTUNE,
                        oursOffload.withKeepAttention(true).withResidentLayers(1).withPrefetchCheckpoints(true), 131_072, 2_891),
                // checkpoint copies off the compute stream (each started as soon as its tensor exists), 7 layers and
                // the embedding resident on the GPU, on the 2-GPU machine's host, the warp-specialised Hopper backward
                // (bench/results/sm90-bwd-ws-2026-12-01/d/off32; median of steps 2-4)
                row("longtune offload, kept attention, 7 layers + embedding resident, 8B, H200", full, h200,
                        EngineProfile.LONGTUNE, oursOffload.withKeepAttention(true).withResidentLayers(7).withResidentEmbedding(true)
                                .withPrefetchCheckpoints(true), 32_768, 5_834),
                // the one-GPU machine with no cap below the H200's own memory: 20 layers and the embedding resident,
                // the last layer kept, the attention kernels with TMA (bench/results/sm90-fwd-tma-2026-12-02; median
                // of steps 2-3; 3,107 with the cp.async kernels, offload-8b-128k-resident20-2026-12-02)
                row("longtune offload, kept attention, 20 layers + embedding resident, 8B, H200", full, h200,
                        EngineProfile.LONGTUNE, oursOffload.withKeepAttention(true).withResidentLayers(20).withResidentEmbedding(true)
                                .withPrefetchCheckpoints(true).withKeepLastLayer(true), 131_072, 3_190),
                // ZeRO-3 over the 2-GPU machine's two H200s, each GPU's shards of the first layers (and of the
                // embedding) resident, node tokens/s (bench/results/sm90-bwd-ws-2026-12-01/d; median of steps 2-4,
                // and the second step at 128K): the model leaves out the collectives' share of the SMs
                row("longtune ZeRO-3 offload, kept attention, 16 layers + embedding resident, 8B, 2×H200", full, twoH200,
                        EngineProfile.LONGTUNE, oursOffload.withGpus(2).withKeepAttention(true).withResidentLayers(16)
                                .withResidentEmbedding(true).withPrefetchCheckpoints(true), 32_768, 11_088),
                row("longtune ZeRO-3 offload, attention kept in 28 layers, 3 layers resident, 8B, 2×H200", full, twoH200,
                        EngineProfile.LONGTUNE, oursOffload.withGpus(2).withKeptAttentionLayers(28).withResidentLayers(3)
                                .withPrefetchCheckpoints(true), 131_072, 5_454),
                // the same run as ours above
                row("Hugging Face, 2-layer slice, H200", slice, h200, EngineProfile.HF_DEEPSPEED, hf, 8_192, 66_896),
                row("Hugging Face, 2-layer slice, H200", slice, h200, EngineProfile.HF_DEEPSPEED, hf, 32_768, 57_755));
    }

    private static Row row(String setup, ModelConfig m, NodeProfile node, EngineProfile p, TechniqueSet s, long context,
                           double measured) {
        return new Row(setup, m, node, p, s, context, measured, new ThroughputModel(p).estimate(m, node, s, context));
    }

    /** The predicted-against-measured table, as docs/benchmarks.md shows it. */
    public static String table() {
        StringBuilder sb = new StringBuilder("| setup | tokens | measured tokens/s | predicted | predicted / measured |\n"
                + "| --- | ---: | ---: | ---: | ---: |\n");
        for (Row r : rows()) {
            sb.append(String.format(Locale.ROOT, "| %s | %,d | %,.0f | %,.0f | %.2f |%n", r.setup(), r.context(),
                    r.measuredTokensPerSecond(), r.predicted().tokensPerSecond(), r.ratio()));
        }
        for (Validation.Row r : Validation.run()) {
            sb.append(String.format(Locale.ROOT, "| study: %s | %,d | %,.0f | %,.0f | %.2f |%n", r.study().setup(),
                    r.study().context(), r.study().tokensPerSecond(), r.throughput().tokensPerSecond(), r.tokensRatio()));
        }
        return sb.toString();
    }
}
