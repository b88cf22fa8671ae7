package dev.longtune.train;

/**
 * Dynamic loss scaling for FP16 (PyTorch's GradScaler rules): gradients are computed for loss × scale so
 * small values survive FP16; a step whose gradients hold inf or NaN is skipped and the scale halves;
 * after {@code growthInterval} good steps in a row it doubles. With BF16 or FP32 the scale stays 1.
 */
public final class LossScaler {
    private final boolean enabled;
    private final int growthInterval;
    private double scale;
    private int goodSteps;

    public LossScaler(boolean enabled, double initialScale, int growthInterval) {
        this.enabled = enabled;
        this.scale = enabled ? initialScale : 1.0;
        this.growthInterval = growthInterval;
    }

    public static LossScaler forFp16() { return new LossScaler(true, 65536.0, 2000); }

    public static LossScaler disabled() { return new LossScaler(false, 1.0, Integer.MAX_VALUE); }

    public boolean enabled() { return enabled; }

    public double scale() { return scale; }

    public int goodSteps() { return goodSteps; }

    /** Records a step's outcome; returns whether the optimizer may apply it. */
    public boolean update(boolean overflow) {
        if (!enabled) {
            return !overflow;
        }
        if (overflow) {
            scale = Math.max(1.0, scale / 2);
            goodSteps = 0;
            return false;
        }
        if (++goodSteps >= growthInterval) {
            scale *= 2;
            goodSteps = 0;
        }
        return true;
    }

    /** Restores a saved state (resume). */
    public void restore(double savedScale, int savedGoodSteps) {
        this.scale = savedScale;
        this.goodSteps = savedGoodSteps;
    }
}
