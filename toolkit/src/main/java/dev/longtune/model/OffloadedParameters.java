package dev.longtune.model;

import dev.longtune.config.ModelConfig;
import dev.longtune.device.Device;
import dev.longtune.device.Device.Event;
import dev.longtune.device.Device.Stream;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;

import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/**
 * ZeRO-3-style parameter offload on one device: every weight and gradient lives in host memory (pinned on a
 * GPU); the device holds only the units in flight, in slots with room for a unit's weights and gradients: a ring
 * of {@code ringSize} for the decoder layers, allocated once, and one shared by the embedding and the head (never in
 * flight together), allocated when one of them is brought in and freed when it is released. The (V, h) matrix and
 * its gradient are the largest units, and neither is needed while the decoder layers' backward runs: that is where
 * a step's memory peaks, so the slot is not there. The embedding's backward comes after every layer's, so it is
 * not prefetched during the first layer's backward either.
 *
 * <p>Acquiring a unit makes the compute stream wait for its slot's host-to-device copy and starts the next
 * unit's copy on the host-to-device stream, so it overlaps this unit's compute. A slot is overwritten only after
 * the event recorded when its previous unit was released (the end of that unit's compute, or of its gradients'
 * device-to-host copy). Gradients start at zero on the device for the first micro-batch of a step, and from
 * the host's accumulated values after that (the same additions, in the same order, as resident gradients).
 * On the CPU device copies are immediate and events complete at once, so the same schedule runs synchronously
 * and gives bit-identical results.
 *
 * <p>The host optimizer may update units in the background while the next step's forward runs
 * ({@link #weightsUpdating}): a unit's copy to the device waits for its update; a prefetch that would wait is
 * started when the unit in flight is released instead, so that the wait never holds back queued kernels. Each
 * unit's final gradients are reported as they are queued to the host ({@link #setGradientsListener}), so their
 * norms can be summed while backward goes on.
 *
 * <p>The first {@code residentLayers} decoder layers can stay on the device instead: their weights and gradients are
 * allocated there once and are the authoritative copies ({@link #weights()} and {@link #grads()} then mix device and
 * host tensors); acquiring them copies nothing, their gradients are not reported (the optimizer keeps their state on
 * the device too and reads them there), and the ring serves the other layers. GPU memory bought back as time: the
 * host optimizer has that many fewer layers to update before the next forward catches up with it. The embedding can
 * stay too ({@code residentEmbedding}; not with tied embeddings, whose matrix the head also brings over): the next
 * step's forward then starts without waiting for the host's update of its largest unit.
 */
final class OffloadedParameters implements ParameterStore {
    private final ParameterUnits units;
    private final Device device;
    private final Parameters hostWeights, hostGrads;
    private final UnitSlot vocabulary;
    private final UnitSlot[] ring;
    private final UnitSlot[] resident; // by layer, for the first residentLayers layers
    private final UnitSlot embeddingSlot; // the resident embedding's, or null
    private final int residentLayerCount;
    private final Map<String, Tensor> activeWeights = new HashMap<>(), activeGrads = new HashMap<>();
    private final Set<String> zeroGrads = new HashSet<>();
    private final List<Event> gradientCopies = new ArrayList<>();
    private final PendingUpdates updates = new PendingUpdates();
    private GradientsListener listener;
    // a prefetch put off because the optimizer was still writing that unit: started when the current unit is released
    private int deferred = -1;
    private boolean deferredWithGrads;
    private long version;

    OffloadedParameters(ModelConfig config, Device device, DType dtype, int ringSize) {
        this(config, device, dtype, ringSize, 0);
    }

    OffloadedParameters(ModelConfig config, Device device, DType dtype, int ringSize, int residentLayers) {
        this(config, device, dtype, ringSize, residentLayers, false);
    }

    OffloadedParameters(ModelConfig config, Device device, DType dtype, int ringSize, int residentLayers,
                        boolean residentEmbedding) {
        if (ringSize < 2) {
            throw new IllegalArgumentException("the layer ring needs at least 2 slots (one computing, one loading), asked for " + ringSize);
        }
        if (residentLayers < 0 || residentLayers > config.numLayers()) {
            throw new IllegalArgumentException("resident layers: " + residentLayers + " (0 to " + config.numLayers()
                    + ", the model's layers)");
        }
        if (residentEmbedding && config.tieWordEmbeddings()) {
            throw new IllegalArgumentException(config.name() + " ties its embedding to the LM head, which comes over with "
                    + "the head: keep the embedding offloaded (drop the resident embedding)");
        }
        this.units = new ParameterUnits(config);
        this.device = device;
        this.residentLayerCount = residentLayers;
        // the resident tensors are allocated on the device, every other one in (pinned) host memory
        Parameters.Allocator placed = (name, t, category, shape) -> residentName(name, residentLayers, residentEmbedding)
                ? device.allocate(name, t, category, shape) : device.allocateHost(name, t, category, shape);
        this.hostWeights = new Parameters(config, device, placed, dtype, WEIGHTS, "");
        this.hostGrads = new Parameters(config, device, placed, dtype, GRADS, ".grad");
        this.resident = new UnitSlot[residentLayers];
        for (int i = 0; i < residentLayers; i++) {
            UnitSlot s = new UnitSlot();
            for (String name : units.names(ParameterUnits.layer(i))) {
                s.weights.put(ParameterUnits.localName(name), hostWeights.get(name));
                s.grads.put(ParameterUnits.localName(name), hostGrads.get(name));
            }
            s.unit = ParameterUnits.layer(i);
            resident[i] = s;
        }
        if (residentEmbedding) {
            embeddingSlot = new UnitSlot();
            String name = units.names(ParameterUnits.embedding()).get(0);
            embeddingSlot.weights.put(ParameterUnits.localName(name), hostWeights.get(name));
            embeddingSlot.grads.put(ParameterUnits.localName(name), hostGrads.get(name));
            embeddingSlot.unit = ParameterUnits.embedding();
        } else {
            embeddingSlot = null;
        }
        // the embedding and the head are never in flight together (forward: embedding first, head last; backward:
        // head first, embedding last), so they share one slot: the (V, h) matrix and the final norm
        this.vocabulary = new UnitSlot(); // allocated when the embedding or the head is brought in
        this.ring = new UnitSlot[Math.min(ringSize, config.numLayers() - residentLayers)];
        for (int i = 0; i < ring.length; i++) {
            ring[i] = slot(ParameterUnits.layer(0), "layer slot " + i);
        }
        zeroGrads.addAll(hostGrads.byName().keySet());
    }

    /** Whether a parameter (a "model.layers.N." name, any suffix) belongs to one of the first {@code layers} layers. */
    static boolean residentName(String name, int layers) { return residentName(name, layers, false); }

    /** The same, or the embedding matrix ("model.embed_tokens.weight", any suffix) with {@code embedding}. */
    static boolean residentName(String name, int layers, boolean embedding) {
        if (name.startsWith("model.embed_tokens.weight")) {
            return embedding;
        }
        if (!name.startsWith("model.layers.")) {
            return false;
        }
        int from = "model.layers.".length();
        return Integer.parseInt(name.substring(from, name.indexOf('.', from))) < layers;
    }

    /** Whether a unit stays on the device: one of the resident decoder layers, or the resident embedding. */
    private boolean isResident(int unit) {
        return units.isLayer(unit) && unit - 1 < resident.length || unit == ParameterUnits.embedding() && embeddingSlot != null;
    }

    /** How many decoder layers (the first ones) stay on the device. */
    int residentLayers() { return residentLayerCount; }

    /** Whether the embedding matrix stays on the device. */
    boolean residentEmbedding() { return embeddingSlot != null; }

    /** Whether a parameter's weights and gradients are device tensors here. */
    boolean isResidentName(String name) { return residentName(name, residentLayerCount, embeddingSlot != null); }

    private UnitSlot slot(int shapeOf, String label) {
        UnitSlot s = new UnitSlot();
        allocate(s, shapeOf, label);
        return s;
    }

    private void allocate(UnitSlot s, int shapeOf, String label) {
        Tensor like = hostWeights.get(units.names(shapeOf).get(0));
        // a ring slot is shaped like any layer: the first offloaded one's names give the shapes (all layers alike)
        s.allocate(device, units.names(shapeOf), like.dtype(), name -> hostWeights.get(name).shape(), label);
        s.free = device.record(Stream.COMPUTE); // the slots' zeroing, queued on compute, precedes their first copy
    }

    /** Gives the embedding/head slot's memory back once what reads it (compute, the gradients' copy) is done. */
    private void freeVocabulary() {
        if (vocabulary.allocated()) {
            vocabulary.freeWhenDone();
        }
    }

    private UnitSlot slotOf(int unit) {
        if (unit == ParameterUnits.embedding() && embeddingSlot != null) {
            return embeddingSlot;
        }
        if (unit == ParameterUnits.embedding() || unit == units.head()) {
            return vocabulary;
        }
        if (isResident(unit)) {
            return resident[unit - 1];
        }
        return ring[(unit - 1 - resident.length) % ring.length];
    }

    @Override
    public void load(String name, float[] values) { device.write(hostWeights.get(name), values); }

    @Override
    public Parameters weights() {
        updates.awaitAll();
        return hostWeights;
    }

    @Override public double takeUpdateWaitSeconds() { return updates.takeWaitSeconds(); }

    @Override
    public Parameters grads() {
        // gradients still marked zero were never written this step: make the host copy say so
        for (String name : zeroGrads) {
            device.zero(hostGrads.get(name));
        }
        if (!zeroGrads.isEmpty()) {
            device.synchronize(); // the host reads them next
        }
        zeroGrads.clear();
        return hostGrads;
    }

    @Override
    public void zeroGrads() {
        finishBackward();
        zeroGrads.addAll(hostGrads.byName().keySet());
    }

    @Override
    public void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads) {
        UnitSlot s = slotOf(unit);
        if (s.active) {
            throw new IllegalStateException("unit " + unit + ": its slot still holds unit " + s.unit + " in use");
        }
        load(unit, withGrads);
        if (s.ready != null) {
            device.waitFor(Stream.COMPUTE, s.ready);
            s.ready = null;
        }
        s.active = true;
        for (String name : units.names(unit)) {
            activeWeights.put(name, s.weights.get(ParameterUnits.localName(name)));
            if (withGrads) {
                Tensor g = s.grads.get(ParameterUnits.localName(name));
                if (isResident(unit) ? zeroGrads.remove(name) : zeroGrads.contains(name)) {
                    device.zero(g); // first micro-batch of the step: nothing to bring from the host
                }
                activeGrads.put(name, g);
            }
        }
        if (deferred == unit) {
            deferred = -1;
        }
        // the embedding's backward follows every layer's: bringing it in now would hold its slot at the peak
        boolean embeddingBackward = next == ParameterUnits.embedding() && nextWithGrads;
        if (next >= 0 && !slotOf(next).active && !embeddingBackward) {
            if (updates.ready(next)) {
                load(next, nextWithGrads);
            } else {
                // waiting here would hold back this unit's kernels: load it once they are queued (release)
                deferred = next;
                deferredWithGrads = nextWithGrads;
            }
        }
    }

    /** Queues the copies that bring a unit's current weights (and accumulated gradients) into its slot. */
    private void load(int unit, boolean withGrads) {
        if (isResident(unit)) {
            return; // its tensors are the authoritative ones, on the device: nothing to copy
        }
        updates.await(unit);
        UnitSlot s = slotOf(unit);
        if (s == vocabulary && !s.allocated()) {
            allocate(s, units.head(), "vocabulary slot");
        }
        List<String> names = units.names(unit);
        boolean weightsThere = s.unit == unit && s.version == version;
        boolean gradsNeeded = withGrads && names.stream().anyMatch(n -> !zeroGrads.contains(n));
        if (weightsThere && !gradsNeeded) {
            return;
        }
        if (gradsNeeded) {
            finishBackward(); // a gradient still on its way to the host is what this copy reads (tied embeddings)
            for (String n : names) {
                if (zeroGrads.remove(n)) {
                    device.zero(hostGrads.get(n));
                }
            }
        }
        if (s.free != null) {
            device.waitFor(Stream.HOST_TO_DEVICE, s.free);
            s.free = null;
        }
        for (String name : names) {
            if (!weightsThere) {
                device.copyAsync(s.weights.get(ParameterUnits.localName(name)), hostWeights.get(name), Stream.HOST_TO_DEVICE);
            }
            if (gradsNeeded) {
                device.copyAsync(s.grads.get(ParameterUnits.localName(name)), hostGrads.get(name), Stream.HOST_TO_DEVICE);
            }
        }
        if (s.ready != null) {
            s.ready.synchronize(); // an earlier load nobody waited for
        }
        s.ready = device.record(Stream.HOST_TO_DEVICE);
        s.unit = unit;
        s.version = version;
    }

    @Override
    public Tensor weight(String name) { return active(activeWeights, name, "weight", "an acquire/release"); }

    @Override
    public Tensor grad(String name) { return active(activeGrads, name, "gradient", "an acquire-with-gradients"); }

    private static Tensor active(Map<String, Tensor> tensors, String name, String what, String bracket) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalStateException(what + " " + name + " is used outside " + bracket + " of its unit");
        }
        return t;
    }

    @Override
    public void release(int unit, boolean gradientsDone) {
        UnitSlot s = slotOf(unit);
        if (!s.active || s.unit != unit) {
            throw new IllegalStateException("unit " + unit + " is released without being acquired");
        }
        s.active = false;
        List<String> names = units.names(unit);
        names.forEach(activeWeights::remove);
        boolean withGrads = names.stream().anyMatch(activeGrads::containsKey);
        names.forEach(activeGrads::remove);
        // the slot's new "free" event below covers the old one (it follows the old one's D2H copies in that stream's
        // order and the compute queued so far), so the old one is dropped without the host waiting for it
        if (s.free != null) {
            s.free.discard();
        }
        if (isResident(unit)) {
            // nothing to copy back or to wait for: the next use of these tensors is queued on the same stream
        } else if (gradientsDone && withGrads) {
            device.waitFor(Stream.DEVICE_TO_HOST, device.record(Stream.COMPUTE));
            for (String name : names) {
                device.copyAsync(hostGrads.get(name), s.grads.get(ParameterUnits.localName(name)), Stream.DEVICE_TO_HOST);
                zeroGrads.remove(name);
            }
            gradientCopies.add(device.record(Stream.DEVICE_TO_HOST));
            s.free = device.record(Stream.DEVICE_TO_HOST);
            if (listener != null) {
                Map<String, Tensor> arrived = new LinkedHashMap<>();
                names.forEach(n -> arrived.put(n, hostGrads.get(n)));
                listener.arrived(arrived, device.record(Stream.DEVICE_TO_HOST));
            }
        } else {
            device.waitFor(Stream.DEVICE_TO_HOST, device.record(Stream.COMPUTE));
            s.free = device.record(Stream.DEVICE_TO_HOST);
        }
        if (s == vocabulary) {
            freeVocabulary();
        }
        if (deferred >= 0 && !slotOf(deferred).active) {
            int d = deferred;
            deferred = -1;
            load(d, deferredWithGrads);
        }
    }

    @Override
    public void finishBackward() {
        gradientCopies.forEach(Event::synchronize);
        gradientCopies.clear();
    }

    @Override
    public void abandonPass() {
        updates.awaitAll(); // the previous step's update is that step's: it finishes
        device.synchronize();
        finishBackward();
        for (UnitSlot s : allSlots()) {
            // a slot keeps the weights it holds (they are still current); its gradients are never read unzeroed
            s.active = false;
            s.ready = null;
            s.free = null;
        }
        freeVocabulary();
        activeWeights.clear();
        activeGrads.clear();
        deferred = -1;
        zeroGrads.addAll(hostGrads.byName().keySet());
    }

    @Override
    public void weightsChanged() { version++; }

    @Override
    public void setGradientsListener(GradientsListener listener) { this.listener = listener; }

    @Override
    public void weightsUpdating(int unit, Future<?> done) { updates.put(unit, done); }

    @Override
    public void close() {
        updates.drain(); // a background update still writes into the host buffers freed below
        device.synchronize();
        finishBackward();
        for (UnitSlot s : allSlots()) {
            if (List.of(resident).contains(s) || s == embeddingSlot) {
                continue; // its tensors are the authoritative ones, closed below
            }
            for (Event e : new Event[] {s.ready, s.free}) {
                if (e != null) {
                    e.synchronize();
                }
            }
            s.closeTensors();
        }
        hostWeights.close();
        hostGrads.close();
    }

    private List<UnitSlot> allSlots() {
        List<UnitSlot> all = new ArrayList<>(List.of(vocabulary));
        all.addAll(List.of(ring));
        all.addAll(List.of(resident));
        if (embeddingSlot != null) {
            all.add(embeddingSlot);
        }
        return all;
    }
}
