package dev.longtune.config;

/** Training precision: the dtype of weights, activations and gradients on the GPU. */
public enum Precision {
    /** Plain FP32 everywhere; no separate master copy. */
    FP32("fp32", 4),
    /** FP16 compute with FP32 master weights and dynamic loss scaling (the V100 way). */
    FP16("fp16", 2),
    /** BF16 compute with FP32 master weights (Ampere and newer). */
    BF16("bf16", 2);

    public final String id;
    public final int bytes;

    Precision(String id, int bytes) {
        this.id = id;
        this.bytes = bytes;
    }

    public boolean mixed() { return this != FP32; }

    public static Precision parse(String s) { return Names.parse(Precision.class, s, p -> p.id); }
}
