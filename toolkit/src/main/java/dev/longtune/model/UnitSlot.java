package dev.longtune.model;

import dev.longtune.device.Device;
import dev.longtune.device.Device.Event;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/**
 * A unit's room on the device, as the offload and sharded stores keep it: weights and gradients by local name (the
 * name after "model.layers.N."), which unit and which version of the weights it holds, and the events that order
 * its reuse.
 */
final class UnitSlot {
    final Map<String, Tensor> weights = new LinkedHashMap<>(), grads = new LinkedHashMap<>();
    int unit = -1;
    long version = -1;
    boolean active;
    /** The sharded store's tied embedding: the slot keeps the head's gradient for the embedding's backward. */
    boolean holding;
    Event ready, free;

    boolean allocated() { return !weights.isEmpty(); }

    /**
     * Room for the weights and gradients of the parameters {@code names}; a failure part-way (out of memory) gives
     * back what was allocated, so that a later try starts from nothing.
     */
    void allocate(Device device, List<String> names, DType dtype, Function<String, int[]> shape, String label) {
        try {
            for (String name : names) {
                String local = ParameterUnits.localName(name);
                weights.put(local, device.allocate(label + " " + local, dtype, WEIGHTS, shape.apply(name)));
                grads.put(local, device.allocate(label + " " + local + ".grad", dtype, GRADS, shape.apply(name)));
            }
        } catch (RuntimeException | Error failure) {
            closeTensors();
            throw failure;
        }
    }

    /** Gives the memory back once what reads or writes it (its events) is done; the slot then holds no unit. */
    void freeWhenDone() {
        for (Event e : new Event[] {ready, free}) {
            if (e != null) {
                e.synchronize();
            }
        }
        closeTensors();
        ready = null;
        free = null;
        unit = -1;
        version = -1;
    }

    void closeTensors() {
        weights.values().forEach(Tensor::close);
        grads.values().forEach(Tensor::close);
        weights.clear();
        grads.clear();
    }
}
