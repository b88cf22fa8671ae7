package dev.longtune.plan;

import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;

import java.util.List;

/**
 * The published study's measurements (docs/memory-model.md, the validation section): Llama 3.1 8B, DeepSpeed ZeRO-3
 * with CPU offload of parameters and optimizer, Liger, offloaded gradient checkpointing, batch 1 per GPU.
 */
public final class StudyReference {
    public record Row(String setup, String nodeName, int gpus, long context, double peakVramMiB,
                      double peakHostGiB, double tokensPerSecond) {
        public NodeProfile node() { return NodeCatalog.get(nodeName).withGpus(gpus); }
    }

    public static final String MODEL = "llama-3.1-8b";

    public static final List<Row> ROWS = List.of(
            new Row("8×V100 16GB, FP16, no FA2", "study-8xV100", 8, 32_768, 7_711.63, 286.43, 2_793.22),
            new Row("8×V100 16GB, FP16, no FA2", "study-8xV100", 8, 49_152, 10_794.13, 351.68, 2_342.40),
            new Row("4×A6000 48GB, BF16", "study-4xA6000", 4, 128_000, 24_128.66, 317.53, 1_775.17),
            new Row("1×A100 40GB, BF16", "study-8xA100", 1, 128_000, 24_128.66, 210.32, 907.76),
            new Row("8×A100 40GB, BF16", "study-8xA100", 8, 128_000, 24_128.66, 460.68, 6_443.85));

    /** The study's empirical GPU peak in backward with offload: (802,160,649 + b·s·92,992) elements of 2 bytes. */
    public static long empiricalPeakBytes(long microBatch, long context) {
        return 2 * (802_160_649L + microBatch * context * 92_992L);
    }

    private StudyReference() {}
}
