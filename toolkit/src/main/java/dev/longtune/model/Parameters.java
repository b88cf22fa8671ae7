package dev.longtune.model;

import dev.longtune.config.ModelConfig;
import dev.longtune.device.Device;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;

import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One tensor per Hugging Face parameter name, in {@code named_parameters()} order, all of one dtype and
 * category: the model's weights, their gradients, or an optimizer state mirror the same layout, so the
 * optimizer, zeroing and clipping are one loop over the same names (llm.c's parameter block). Each
 * tensor is its own allocation on every device today (a Java array on the CPU, an allocator block on a GPU);
 * flat per-layer buffers with views are the offload engine's next step.
 */
public final class Parameters implements AutoCloseable {
    /** How a parameter set gets its tensors: {@code Device::allocate} or {@code Device::allocateCpuVisible}. */
    public interface Allocator {
        Tensor allocate(String name, DType dtype, MemoryCategory category, int... shape);
    }

    private final Map<String, Tensor> byName = new LinkedHashMap<>();
    private final Device device;
    private final DType dtype;
    private final MemoryCategory category;

    /** In the device's own memory. */
    public Parameters(ModelConfig config, Device device, DType dtype, MemoryCategory category, String suffix) {
        this(config, device, device::allocate, dtype, category, suffix);
    }

    public Parameters(ModelConfig config, Device device, Allocator allocator, DType dtype, MemoryCategory category,
                      String suffix) {
        this(layoutOf(config), device, allocator, dtype, category, suffix);
    }

    /** One tensor per entry of {@code layout} (name → shape, in order): a whole model's, or one rank's shard of it. */
    public Parameters(Map<String, int[]> layout, Device device, Allocator allocator, DType dtype, MemoryCategory category,
                      String suffix) {
        this.device = device;
        this.dtype = dtype;
        this.category = category;
        layout.forEach((name, shape) -> byName.put(name, allocator.allocate(name + suffix, dtype, category, shape)));
    }

    /** A set with the names and shapes of {@code like} (an optimizer's state mirroring the weights it updates). */
    public static Parameters like(Parameters like, Allocator allocator, DType dtype, MemoryCategory category, String suffix) {
        Map<String, int[]> layout = new LinkedHashMap<>();
        like.byName.forEach((name, t) -> layout.put(name, t.shape()));
        return new Parameters(layout, like.device, allocator, dtype, category, suffix);
    }

    /** Every parameter of the model: name → shape, in {@code named_parameters()} order. */
    public static Map<String, int[]> layoutOf(ModelConfig config) {
        Map<String, int[]> layout = new LinkedHashMap<>();
        for (ModelConfig.ParameterTensor p : config.parameterTensors()) {
            layout.put(p.name(), p.intShape());
        }
        return layout;
    }

    public Tensor get(String name) {
        Tensor t = byName.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter '" + name + "'");
        }
        return t;
    }

    public Collection<Tensor> all() { return Collections.unmodifiableCollection(byName.values()); }

    public Map<String, Tensor> byName() { return Collections.unmodifiableMap(byName); }

    public DType dtype() { return dtype; }

    public Device device() { return device; }

    public MemoryCategory category() { return category; }

    public long numel() { return byName.values().stream().mapToLong(Tensor::numel).sum(); }

    public void zero() {
        for (Tensor t : byName.values()) {
            device.zero(t);
        }
    }

    /** Copies every value from {@code other} (same names, either side on the host or the device), rounded to this set's dtype. */
    public void copyFrom(Parameters other) {
        for (var e : byName.entrySet()) {
            device.copy(e.getValue(), other.get(e.getKey()));
        }
    }

    @Override
    public void close() { byName.values().forEach(Tensor::close); }
}
