package dev.longtune.config;

/** Gradient checkpointing at decoder-layer boundaries. */
public enum Checkpointing {
    /** Keep every layer's activations for backward. */
    NONE("none"),
    /** Keep only each layer's input on the GPU and recompute the layer in backward. */
    DEVICE("device"),
    /** Layer inputs go to host memory and are prefetched back for backward. */
    OFFLOAD("offload");

    public final String id;

    Checkpointing(String id) { this.id = id; }

    public static Checkpointing parse(String s) { return Names.parse(Checkpointing.class, s, c -> c.id); }
}
