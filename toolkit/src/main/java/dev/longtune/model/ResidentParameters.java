package dev.longtune.model;

import dev.longtune.config.ModelConfig;
import dev.longtune.device.Device;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.util.concurrent.Future;

import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/** Every weight and gradient stays in the device's memory: acquiring and releasing a unit does nothing. */
final class ResidentParameters implements ParameterStore {
    private final Parameters weights, grads;

    ResidentParameters(ModelConfig config, Device device, DType dtype) {
        this.weights = new Parameters(config, device, dtype, WEIGHTS, "");
        this.grads = new Parameters(config, device, dtype, GRADS, ".grad");
    }

    @Override public void load(String name, float[] values) { weights.device().write(weights.get(name), values); }

    @Override public Parameters weights() { return weights; }

    @Override public Parameters grads() { return grads; }

    @Override public void zeroGrads() { grads.zero(); }

    @Override public void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads) { }

    @Override public Tensor weight(String name) { return weights.get(name); }

    @Override public Tensor grad(String name) { return grads.get(name); }

    @Override public void release(int unit, boolean gradientsDone) { }

    @Override public void finishBackward() { }

    @Override public void abandonPass() { grads.zero(); }

    @Override public void weightsChanged() { }

    /** Gradients stay where backward writes them: nothing is ever copied back to report. */
    @Override public void setGradientsListener(GradientsListener listener) { }

    /** Resident weights are read by the next kernel at once: the update has to be finished first. */
    @Override public void weightsUpdating(int unit, Future<?> done) { PendingUpdates.join(done); }

    @Override
    public void close() {
        weights.close();
        grads.close();
    }
}
