package dev.longtune.train;

import dev.longtune.device.Device;
import dev.longtune.model.Parameters;
import dev.longtune.ops.AdamW;
import dev.longtune.ops.GradientClipping;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

import static dev.longtune.tensor.MemoryCategory.OPTIMIZER;
import static dev.longtune.tensor.MemoryCategory.WORKSPACE;

/**
 * AdamW over FP32 master weights and moments (12 bytes per parameter in mixed precision: master, m, v;
 * 8 in FP32, where the weights are the master). Gradients arrive in the compute precision, scaled by the
 * loss scale; they are unscaled into FP32, checked for inf/NaN, clipped by global norm, applied, and the
 * compute-precision weights are refreshed from the master.
 */
public final class Optimizer implements AutoCloseable {
    private final Parameters weights, master, m, v;
    private final boolean separateMaster;
    private int step;

    public Optimizer(Parameters weights, Device device, dev.longtune.config.ModelConfig config) {
        this.weights = weights;
        // On a GPU the master weights and moments live in host memory and AdamW runs on the CPU (ZeRO-offload);
        // FP32 weights can be their own master only where Java can update them in place.
        this.separateMaster = weights.dtype() != DType.FP32 || weights.all().iterator().next().onDevice();
        Parameters.Allocator host = device::allocateCpuVisible;
        this.master = separateMaster ? new Parameters(config, device, host, DType.FP32, OPTIMIZER, ".master") : weights;
        if (separateMaster) {
            master.copyFrom(weights);
        }
        this.m = new Parameters(config, device, host, DType.FP32, OPTIMIZER, ".exp_avg");
        this.v = new Parameters(config, device, host, DType.FP32, OPTIMIZER, ".exp_avg_sq");
        m.zero();
        v.zero();
    }

    public Parameters master() { return master; }

    public Parameters exp_avg() { return m; }

    public Parameters exp_avg_sq() { return v; }

    public int step() { return step; }

    public void restoreStep(int s) { step = s; }

    /** What one {@link #apply} did. */
    public record Update(boolean applied, double gradNorm) {}

    /**
     * Unscales {@code grads} by 1/lossScale into FP32, and unless they hold inf/NaN, clips and applies AdamW
     * at {@code lr}. Returns whether it applied and the global gradient norm before clipping.
     */
    public Update apply(Parameters grads, double lossScale, double lr, TrainingConfig c, Device device) {
        List<Tensor> unscaled = new ArrayList<>();
        try {
            List<float[]> arrays = new ArrayList<>();
            for (var e : grads.byName().entrySet()) {
                Tensor g32 = device.allocateCpuVisible(e.getKey() + ".grad32", DType.FP32, WORKSPACE, e.getValue().shape());
                device.copy(g32, e.getValue());
                float[] dst = g32.floats();
                float inv = (float) (1.0 / lossScale);
                for (int i = 0; i < dst.length; i++) {
                    dst[i] *= inv;
                }
                unscaled.add(g32);
                arrays.add(dst);
            }
            double norm = GradientClipping.globalNorm(arrays);
            if (!Double.isFinite(norm)) {
                return new Update(false, norm);
            }
            if (c.maxGradNorm() > 0) {
                GradientClipping.clipByGlobalNorm(arrays, c.maxGradNorm());
            }
            step++;
            int i = 0;
            for (var e : master.byName().entrySet()) {
                boolean decay = !(e.getKey().endsWith("norm.weight") || e.getKey().endsWith(".bias"));
                AdamW.step(e.getValue().floats(), arrays.get(i++), m.get(e.getKey()).floats(), v.get(e.getKey()).floats(),
                        lr, c.beta1(), c.beta2(), c.epsilon(), decay ? c.weightDecay() : 0.0, step);
            }
            if (separateMaster) {
                weights.copyFrom(master);
            }
            return new Update(true, norm);
        } finally {
            unscaled.forEach(Tensor::close);
        }
    }

    @Override
    public void close() {
        if (separateMaster) {
            master.close();
        }
        m.close();
        v.close();
    }
}
