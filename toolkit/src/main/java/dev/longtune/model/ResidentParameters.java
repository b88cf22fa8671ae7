package dev.longtune.model;

import dev.longtune.config.ModelConfig;
import dev.longtune.device.Device;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/** Every weight and gradient stays in the device's memory: acquiring and releasing a unit does nothing. */
final class ResidentParameters implements ParameterStore {
    private final Parameters weights, grads;

    ResidentParameters(ModelConfig config, Device device, DType dtype) {
        this.weights = new Parameters(config, device, dtype, WEIGHTS, "");
        this.grads = new Parameters(config, device, dtype, GRADS, ".grad");
    }

    @Override public Parameters weights() { return weights; }

    @Override public Parameters grads() { return grads; }

    @Override public void zeroGrads() { grads.zero(); }

    @Override public void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads) { }

    @Override public Tensor weight(String name) { return weights.get(name); }

    @Override public Tensor grad(String name) { return grads.get(name); }

    @Override public void release(int unit, boolean gradientsDone) { }

    @Override public void finishBackward() { }

    @Override public void weightsChanged() { }

    @Override
    public void close() {
        weights.close();
        grads.close();
    }
}
