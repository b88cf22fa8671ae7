package dev.longtune.model;

import dev.longtune.device.Device;
import dev.longtune.device.Device.Event;
import dev.longtune.device.Device.Stream;
import dev.longtune.dist.Communicator;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;

import static dev.longtune.tensor.MemoryCategory.COMM;
import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/**
 * ZeRO-3 data parallelism (one rank of it): this rank keeps only its {@link ShardLayout} slices of the weights and
 * gradients; a unit in use lives whole in a slot on the device, allocated once (as {@link OffloadedParameters}
 * does: one slot shared by the embedding and the head, a ring of two decoder-layer slots).
 *
 * <p>Acquiring a unit makes the compute stream wait for its gather, which was usually queued while the unit before
 * it computed: each acquire starts the all-gather of the next unit into its slot on the communication stream.
 * Releasing a unit after its backward queues, on the communication stream, the reduce-scatter of its gradients and
 * the addition of this rank's part into the gradient shard. Every collective runs on that one stream in the order
 * issued (the same on every rank), a layer's chunk per rank at a time, through buffers allocated once.
 *
 * <p>Each micro-batch's gradients start from zero and are added to the shard once, in rank order: N ranks with one
 * micro-batch each accumulate exactly what one rank with N micro-batches does.
 *
 * <p>With the shards in host memory, this rank's shards of the first {@code residentLayers} decoder layers (and of
 * the embedding, {@code residentEmbedding}) can stay in the device's memory instead, with their optimizer state
 * there too (the GPU's AdamW updates them, as {@link OffloadedParameters}' resident layers): the host AdamW then has
 * that much less to update before the next forward reaches it. The collectives read and write a shard wherever it
 * is, so the schedule is the same; a resident layer is still gathered into a slot before it runs.
 */
final class ShardedParameters implements ParameterStore {
    private static final String TIED = "model.embed_tokens.weight";

    private final ShardLayout layout;
    private final Communicator comm;
    private final Device device;
    private final DType dtype;
    private final ParameterUnits units;
    private final boolean onHost;
    private final int residentLayers;
    private final boolean residentEmbedding;
    /** Elements per rank in one collective: the largest decoder layer's chunk (the largest unit's, without layers). */
    private final int piece;
    private final Parameters shardWeights, shardGrads;
    private final PendingUpdates updates = new PendingUpdates();
    private final Device.BusyClock collectives;
    private final Device.BusyClock communication;
    private final Set<Integer> staleGrads = new HashSet<>();
    private final UnitSlot vocabulary;
    private final UnitSlot[] ring;
    private final Tensor gatherSend, gatherRecv, reduceSend, reduceRecv;
    private final Map<String, Tensor> activeWeights = new HashMap<>(), activeGrads = new HashMap<>();
    private long version;
    private GradientsListener listener;

    /** With the shards in the device's memory, or ({@code onHost}) in host memory, where the host AdamW updates them. */
    ShardedParameters(ShardLayout layout, Communicator comm, Device device, DType dtype, boolean onHost) {
        this(layout, comm, device, dtype, onHost, 0, false);
    }

    /** The same, with this rank's shards of the first {@code residentLayers} layers (and the embedding) on the device. */
    ShardedParameters(ShardLayout layout, Communicator comm, Device device, DType dtype, boolean onHost,
                      int residentLayers, boolean residentEmbedding) {
        if (layout.ranks() != comm.size()) {
            throw new IllegalArgumentException("a layout for " + layout.ranks() + " ranks with a communicator of " + comm.size());
        }
        this.layout = layout;
        this.comm = comm;
        this.device = device;
        this.dtype = dtype;
        this.units = new ParameterUnits(layout.config());
        this.onHost = onHost;
        if (residentLayers < 0 || residentLayers > layout.config().numLayers()) {
            throw new IllegalArgumentException("resident layers: " + residentLayers + " (0 to "
                    + layout.config().numLayers() + ", the model's layers)");
        }
        if (!onHost && (residentLayers > 0 || residentEmbedding)) {
            throw new IllegalArgumentException("resident layers or embedding keep shards on the device out of shards "
                    + "offloaded to the host; these shards are on the device already");
        }
        this.residentLayers = residentLayers;
        this.residentEmbedding = residentEmbedding;
        this.collectives = device.busyClock(); // on the compute stream: the collectives it waits for are not overlapped
        this.communication = device.busyClock(Stream.COMMUNICATION); // all of them, overlapped or not
        long largest = 0;
        for (int u = 0; u < units.count(); u++) {
            if (units.isLayer(u) || layout.config().numLayers() == 0) {
                largest = Math.max(largest, layout.group(u).chunk());
            }
        }
        this.piece = Math.toIntExact(Math.max(1, largest));
        Map<String, int[]> shapes = layout.shardShapes(comm.rank());
        // the shards of resident units on the device, the others (offloaded) in host memory
        Parameters.Allocator where = !onHost ? device::allocate : (name, t, category, shape) ->
                OffloadedParameters.residentName(name, residentLayers, residentEmbedding)
                        ? device.allocate(name, t, category, shape) : device.allocateHost(name, t, category, shape);
        this.shardWeights = new Parameters(shapes, device, where, dtype, WEIGHTS, " (shard " + comm.rank() + ")");
        this.shardGrads = new Parameters(shapes, device, where, dtype, GRADS, ".grad (shard " + comm.rank() + ")");
        // the embedding/head slot is allocated when one of them is gathered and freed at its release (unless it holds
        // the tied embedding's gradient): the (V, h) matrix is not needed while the layers' backward runs, the peak
        this.vocabulary = new UnitSlot();
        this.ring = new UnitSlot[Math.min(2, layout.config().numLayers())];
        for (int i = 0; i < ring.length; i++) {
            ring[i] = slot(ParameterUnits.layer(0), "layer slot " + i);
        }
        int ranks = comm.size();
        this.gatherSend = device.allocate("all-gather send", dtype, COMM, piece);
        this.gatherRecv = device.allocate("all-gather receive", dtype, COMM, piece * ranks);
        this.reduceSend = device.allocate("reduce-scatter send", dtype, COMM, piece * ranks);
        this.reduceRecv = device.allocate("reduce-scatter receive", dtype, COMM, piece);
        zeroGrads();
        // what compute queued (the slots' and buffers' clearing) precedes the first collective
        device.waitFor(Stream.COMMUNICATION, device.record(Stream.COMPUTE));
    }

    private UnitSlot slot(int shapeOf, String label) {
        UnitSlot s = new UnitSlot();
        s.allocate(device, units.names(shapeOf), dtype, this::shapeOf, label);
        return s;
    }

    /** Gives the embedding/head slot back once compute and the collectives are done with it (unless it holds). */
    private void freeVocabulary() {
        if (vocabulary.allocated() && !vocabulary.active && !vocabulary.holding) {
            vocabulary.freeWhenDone();
        }
    }

    private UnitSlot slotOf(int unit) {
        if (unit == ParameterUnits.embedding() || unit == units.head()) {
            return vocabulary;
        }
        return ring[(unit - 1) % ring.length];
    }

    private int[] shapeOf(String name) {
        return layout.config().parameterTensors().stream().filter(p -> p.name().equals(name)).findFirst().orElseThrow().intShape();
    }

    Communicator communicator() { return comm; }

    boolean onHost() { return onHost; }

    /** How many decoder layers' shards (the first ones) stay on the device out of offloaded shards. */
    int residentLayers() { return residentLayers; }

    /** Whether the embedding's shard stays on the device out of offloaded shards. */
    boolean residentEmbedding() { return residentEmbedding; }

    /** Whether a parameter's shard (weights and gradients) is a device tensor kept there out of offloaded shards. */
    boolean isResidentName(String name) { return OffloadedParameters.residentName(name, residentLayers, residentEmbedding); }

    @Override
    public Parameters weights() {
        updates.awaitAll();
        device.record(Stream.COMMUNICATION).synchronize();
        return shardWeights;
    }

    @Override
    public Parameters grads() {
        for (int g : new ArrayList<>(staleGrads)) {
            clearGrads(g);
        }
        device.record(Stream.COMMUNICATION).synchronize(); // the host AdamW reads the shard next
        device.waitFor(Stream.COMPUTE, device.record(Stream.COMMUNICATION));
        return shardGrads;
    }

    /**
     * Marks every group's gradients as zero; each is cleared when the step first adds to it (or reads it), after the
     * background update of the previous step has finished reading it.
     */
    @Override
    public void zeroGrads() {
        for (int u = 0; u < units.count(); u++) {
            staleGrads.add(u);
        }
    }

    private void clearGrads(int group) {
        if (staleGrads.remove(group)) {
            updates.await(group);
            for (ShardLayout.Slice s : layout.slices(group, comm.rank())) {
                device.zero(shardGrads.get(s.name()), Stream.COMMUNICATION);
            }
        }
    }

    @Override
    public long[] keeps(String name, long numel) {
        ShardLayout.Slice s = layout.sliceOf(name, comm.rank());
        return s == null ? new long[] {0, 0} : new long[] {s.from(), s.to()};
    }

    @Override
    public void load(String name, float[] values) {
        ShardLayout.Slice s = layout.sliceOf(name, comm.rank());
        if (s != null) {
            device.write(shardWeights.get(name), Arrays.copyOfRange(values, (int) s.from(), (int) s.to()));
        }
    }

    /** The slot holds the tied embedding's matrix and gradient from the head's backward, for the embedding's. */
    private boolean heldForTheEmbedding(int unit) {
        return unit == ParameterUnits.embedding() && vocabulary.holding;
    }

    @Override
    public void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads) {
        UnitSlot s = slotOf(unit);
        boolean held = heldForTheEmbedding(unit) && withGrads;
        if (s.active) {
            throw new IllegalStateException("unit " + unit + ": its slot still holds unit " + s.unit + " in use");
        }
        if (!held) {
            gatherInto(unit, s);
        }
        if (s.ready != null) {
            collectives.begin(); // what of the gather the compute stream still waits for: the part not overlapped
            device.waitFor(Stream.COMPUTE, s.ready);
            collectives.end();
            s.ready = null;
        }
        if (s.free != null) {
            device.waitFor(Stream.COMPUTE, s.free); // its last reduce-scatter has read the gradients
            s.free = null;
        }
        s.holding = false;
        s.active = true;
        for (String name : units.names(unit)) {
            activeWeights.put(name, s.weights.get(ParameterUnits.localName(name)));
            if (withGrads) {
                Tensor g = s.grads.get(ParameterUnits.localName(name));
                if (!(held && name.equals(TIED))) {
                    device.zero(g); // each micro-batch's gradients start at zero: added to the shard once
                }
                activeGrads.put(name, g);
            }
        }
        // the embedding's backward follows every layer's: gathering it now would hold its slot at the peak
        boolean embeddingBackward = next == ParameterUnits.embedding() && nextWithGrads;
        if (next >= 0 && !embeddingBackward && !slotOf(next).active && !slotOf(next).holding && !heldForTheEmbedding(next)) {
            gatherInto(next, slotOf(next)); // overlaps this unit's compute
        }
    }

    /**
     * Queues on the communication stream the gather of {@code unit}'s weights into {@code s}, unless it holds them
     * already (this step's weights, gathered for the forward and not overwritten since).
     */
    private void gatherInto(int unit, UnitSlot s) {
        if (s.unit == unit && s.version == version) {
            return;
        }
        List<Integer> groups = layout.groupsOf(unit);
        for (int g : groups) {
            updates.await(g); // the host optimizer may still be writing this shard
        }
        if (s == vocabulary && !s.allocated()) {
            s.allocate(device, units.names(units.head()), dtype, this::shapeOf, "vocabulary slot");
            device.waitFor(Stream.COMMUNICATION, device.record(Stream.COMPUTE)); // the new slot's zeroing first
        }
        if (s.free != null) {
            device.waitFor(Stream.COMMUNICATION, s.free); // its previous unit is done with the slot
            s.free = null;
        }
        List<String> names = units.names(unit);
        communication.begin();
        for (int g : groups) {
            gather(layout.group(g), names, s);
        }
        communication.end();
        s.unit = unit;
        s.version = version;
        if (s.ready != null) {
            s.ready.synchronize(); // a gather nobody waited for
        }
        s.ready = device.record(Stream.COMMUNICATION);
    }

    /** A run of a slot tensor's elements and where it lies in a collective's per-rank buffer. */
    private interface Overlap {
        void copy(Tensor tensor, long at, long bufferAt, long count);
    }

    /**
     * For piece [lo, lo + n) of every rank's chunk of {@code group}, each of the unit's tensors (by local name in
     * {@code tensors}) it covers: the run's start in the tensor, its start in a buffer of {@link #piece} elements per
     * rank, and its length.
     */
    private void forEachOverlap(ShardLayout.Group group, List<String> names, Map<String, Tensor> tensors, long lo, long n,
                                Overlap visit) {
        long chunk = group.chunk();
        for (int r = 0; r < comm.size(); r++) {
            long flatLo = r * chunk + lo, flatHi = flatLo + n;
            for (String name : names) {
                Long off = group.offsets().get(name);
                if (off != null) {
                    Tensor t = tensors.get(ParameterUnits.localName(name));
                    long a = Math.max(flatLo, off), b = Math.min(flatHi, off + t.numel());
                    if (a < b) {
                        visit.copy(t, a - off, (long) r * piece + (a - flatLo), b - a);
                    }
                }
            }
        }
    }

    /** One group's parameters of the unit into the slot, a piece at a time (at most {@link #piece} per rank). */
    private void gather(ShardLayout.Group group, List<String> names, UnitSlot s) {
        long chunk = group.chunk();
        for (long lo = 0; lo < chunk; lo += piece) {
            long n = Math.min(piece, chunk - lo);
            for (ShardLayout.Slice sl : layout.slices(group.unit(), comm.rank())) {
                long a = Math.max(sl.at(), lo), b = Math.min(sl.at() + sl.length(), lo + n);
                if (a < b) {
                    device.copyRange(gatherSend, a - lo, shardWeights.get(sl.name()), a - sl.at(), b - a, Stream.COMMUNICATION);
                }
            }
            comm.allGather(gatherSend, gatherRecv);
            forEachOverlap(group, names, s.weights, lo, n, (w, at, buffer, count) ->
                    device.copyRange(w, at, gatherRecv, buffer, count, Stream.COMMUNICATION));
        }
    }

    @Override public Tensor weight(String name) { return active(activeWeights, name, "weight"); }

    @Override public Tensor grad(String name) { return active(activeGrads, name, "gradient"); }

    private static Tensor active(Map<String, Tensor> tensors, String name, String what) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalStateException(what + " " + name + " is used outside an acquire/release of its unit");
        }
        return t;
    }

    @Override
    public void release(int unit, boolean gradientsDone) {
        UnitSlot s = slotOf(unit);
        if (!s.active || s.unit != unit && !(unit == ParameterUnits.embedding() && s.unit == units.head())) {
            throw new IllegalStateException("unit " + unit + " is released without being acquired");
        }
        s.active = false;
        List<String> names = units.names(unit);
        boolean withGrads = names.stream().anyMatch(activeGrads::containsKey);
        names.forEach(activeWeights::remove);
        names.forEach(activeGrads::remove);
        if (!(gradientsDone && withGrads)) {
            s.free = device.record(Stream.COMPUTE);
            if (s == vocabulary) {
                freeVocabulary();
            }
            return;
        }
        // with tied embeddings the matrix's gradient has two parts, the head's and the embedding's: added here first
        // and reduced once, at the embedding's release, as one rank with several micro-batches adds them
        boolean hold = unit == units.head() && layout.config().tieWordEmbeddings();
        device.waitFor(Stream.COMMUNICATION, device.record(Stream.COMPUTE)); // the unit's backward is done
        for (int g : layout.groupsOf(unit)) {
            if (!(hold && g == ParameterUnits.embedding())) {
                reduceScatter(layout.group(g), names, s);
                reportArrived(g);
            }
        }
        s.holding = hold;
        s.free = device.record(Stream.COMMUNICATION);
        if (s == vocabulary) {
            freeVocabulary();
        }
    }

    /**
     * Adds the sum over ranks of the slot's gradients of one group, for this rank's slices, into the shard's
     * gradients; a piece at a time, all on the communication stream.
     */
    private void reduceScatter(ShardLayout.Group group, List<String> names, UnitSlot s) {
        long chunk = group.chunk();
        clearGrads(group.unit()); // may wait for the host optimizer: outside the communication stream's bracket
        communication.begin();
        for (long lo = 0; lo < chunk; lo += piece) {
            long n = Math.min(piece, chunk - lo);
            device.zero(reduceSend, Stream.COMMUNICATION); // what no gradient covers (past the unit's end) adds nothing
            forEachOverlap(group, names, s.grads, lo, n, (g, at, buffer, count) ->
                    device.copyRange(reduceSend, buffer, g, at, count, Stream.COMMUNICATION));
            comm.reduceScatter(reduceSend, reduceRecv);
            for (ShardLayout.Slice sl : layout.slices(group.unit(), comm.rank())) {
                long a = Math.max(sl.at(), lo), b = Math.min(sl.at() + sl.length(), lo + n);
                if (a < b) {
                    addInto(shardGrads.get(sl.name()), a - sl.at(), a - lo, b - a);
                }
            }
        }
        communication.end();
    }

    /** dst[at, at + n) += reduceRecv[from, from + n), in dst's dtype, on the communication stream. */
    private void addInto(Tensor dst, long at, long from, long n) {
        device.accumulateRange(dst, at, reduceRecv, from, n, Stream.COMMUNICATION);
    }

    @Override public void finishBackward() { }

    @Override public double takeCollectiveSeconds() { return collectives.takeSeconds(); }

    @Override public double takeCommunicationSeconds() { return communication.takeSeconds(); }

    @Override public double takeUpdateWaitSeconds() { return updates.takeWaitSeconds(); }

    @Override
    public void abandonPass() {
        updates.awaitAll();
        device.synchronize();
        device.record(Stream.COMMUNICATION).synchronize();
        for (UnitSlot s : allSlots()) {
            s.active = false;
            s.holding = false;
            s.ready = null;
            s.free = null;
            s.unit = -1;
        }
        freeVocabulary();
        activeWeights.clear();
        activeGrads.clear();
        zeroGrads();
    }

    private List<UnitSlot> allSlots() {
        List<UnitSlot> all = new ArrayList<>(List.of(vocabulary));
        all.addAll(List.of(ring));
        return all;
    }

    /**
     * Each group's gradient shard, once its reduce-scatter has added this micro-batch's part (the optimizer sets the
     * listener for the last one, whose sums are final), is reported with the event that follows the addition: the
     * host's sums of squares of the shards in host memory then run while backward goes on, not after it. Resident
     * shards (device tensors) are not reported: the optimizer sums them on the device.
     */
    @Override public void setGradientsListener(GradientsListener listener) { this.listener = listener; }

    private void reportArrived(int group) {
        if (listener == null || !onHost) {
            return;
        }
        Map<String, Tensor> arrived = new LinkedHashMap<>();
        for (ShardLayout.Slice sl : layout.slices(group, comm.rank())) {
            if (!isResidentName(sl.name())) {
                arrived.put(sl.name(), shardGrads.get(sl.name()));
            }
        }
        if (!arrived.isEmpty()) {
            listener.arrived(arrived, device.record(Stream.COMMUNICATION));
        }
    }

    /** The next gather of {@code unit}'s group waits for its update (the groups are indexed by unit, as updates are). */
    @Override public void weightsUpdating(int unit, Future<?> done) { updates.put(unit, done); }

    /** The shards were written (an optimizer step, a load): gathered copies are stale; gathers follow those writes. */
    @Override
    public void weightsChanged() {
        version++;
        device.waitFor(Stream.COMMUNICATION, device.record(Stream.COMPUTE));
    }

    @Override
    public void close() {
        updates.drain();
        device.synchronize();
        device.record(Stream.COMMUNICATION).synchronize();
        for (UnitSlot s : allSlots()) {
            s.weights.values().forEach(Tensor::close);
            s.grads.values().forEach(Tensor::close);
        }
        for (Tensor t : new Tensor[] {gatherSend, gatherRecv, reduceSend, reduceRecv}) {
            t.close();
        }
        shardWeights.close();
        shardGrads.close();
    }
}
