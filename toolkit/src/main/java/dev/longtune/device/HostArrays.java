package dev.longtune.device;

import dev.longtune.ops.AdamW;
import dev.longtune.ops.GradientClipping;
import dev.longtune.tensor.Tensor;

/**
 * The optimizer's ops on tensors held as Java arrays ({@code floats()}): the CPU device's own tensors, and a GPU
 * device's CPU-visible ones (ZeRO-offload state). Each device calls these for such tensors; its own memory it
 * handles itself, so a device that lacks an op fails to compile rather than at run time.
 */
public final class HostArrays {
    private HostArrays() {}

    public static void scale(Tensor x, float s) { GradientClipping.scale(x.floats(), s); }

    public static double sumOfSquares(Tensor x) { return GradientClipping.sumOfSquares(x.floats()); }

    public static void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2,
                             double eps, double weightDecay, int t) {
        AdamW.step(param.floats(), grad.floats(), m.floats(), v.floats(), lr, beta1, beta2, eps, weightDecay, t);
    }
}
