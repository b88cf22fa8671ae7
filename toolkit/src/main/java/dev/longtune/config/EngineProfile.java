package dev.longtune.config;

/** Whose training stack the planner models. */
public enum EngineProfile {
    /** The published study's stack: Hugging Face transformers + DeepSpeed ZeRO + Liger + offloaded checkpoints. */
    HF_DEEPSPEED("hf-deepspeed"),
    /** longtune's own engine as designed: exact-size pinned pool, GQA-native attention, our FlashAttention-2. */
    LONGTUNE("longtune");

    public final String id;

    EngineProfile(String id) { this.id = id; }

    public static EngineProfile parse(String s) { return Names.parse(EngineProfile.class, s, p -> p.id); }
}
