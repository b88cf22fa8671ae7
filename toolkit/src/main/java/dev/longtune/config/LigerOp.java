package dev.longtune.config;

/** The Liger-style fused kernels that can each be switched on or off. */
public enum LigerOp {
    RMS_NORM("rmsnorm"), ROPE("rope"), SWIGLU("swiglu"), FUSED_LINEAR_CROSS_ENTROPY("flce");

    public final String id;

    LigerOp(String id) { this.id = id; }

    public static LigerOp parse(String s) { return Names.parse(LigerOp.class, s, o -> o.id); }
}
