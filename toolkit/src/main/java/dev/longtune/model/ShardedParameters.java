package dev.longtune.model;

import dev.longtune.device.Device;
import dev.longtune.dist.Communicator;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;

import static dev.longtune.tensor.MemoryCategory.COMM;
import static dev.longtune.tensor.MemoryCategory.GRADS;
import static dev.longtune.tensor.MemoryCategory.WEIGHTS;

/**
 * ZeRO-3 data parallelism (one rank of it): this rank keeps only its {@link ShardLayout} slices of the weights and
 * gradients; acquiring a unit all-gathers the unit's flat vector from every rank into whole tensors, and releasing
 * it after backward reduce-scatters the unit's gradients so that each rank adds the sum over ranks of its own
 * slices. Each micro-batch's gradients start from zero and are added to the shard once, in rank order: N ranks with
 * one micro-batch each accumulate exactly what one rank with N micro-batches does.
 */
final class ShardedParameters implements ParameterStore {
    private final ShardLayout layout;
    private final Communicator comm;
    private final Device device;
    private final DType dtype;
    private final ParameterUnits units;
    private final Parameters shardWeights, shardGrads;
    private final Map<String, Tensor> activeWeights = new HashMap<>(), activeGrads = new HashMap<>();

    private final boolean onHost;
    /** Elements per rank in one collective: the largest decoder layer's chunk (the largest unit's, without layers). */
    private final int piece;
    private final PendingUpdates updates = new PendingUpdates();
    private final Device.BusyClock collectives;
    private final java.util.Set<Integer> staleGrads = new java.util.HashSet<>();

    /** With the shards in the device's memory, or ({@code onHost}) in host memory, where the host AdamW updates them. */
    ShardedParameters(ShardLayout layout, Communicator comm, Device device, DType dtype, boolean onHost) {
        if (layout.ranks() != comm.size()) {
            throw new IllegalArgumentException("a layout for " + layout.ranks() + " ranks with a communicator of " + comm.size());
        }
        this.layout = layout;
        this.comm = comm;
        this.device = device;
        this.dtype = dtype;
        this.units = new ParameterUnits(layout.config());
        this.onHost = onHost;
        this.collectives = device.busyClock();
        long largest = 0;
        for (int u = 0; u < units.count(); u++) {
            if (units.isLayer(u) || layout.config().numLayers() == 0) {
                largest = Math.max(largest, layout.group(u).chunk());
            }
        }
        this.piece = Math.toIntExact(Math.max(1, largest));
        Map<String, int[]> shapes = layout.shardShapes(comm.rank());
        Parameters.Allocator where = onHost ? device::allocateHost : device::allocate;
        this.shardWeights = new Parameters(shapes, device, where, dtype, WEIGHTS, " (shard " + comm.rank() + ")");
        this.shardGrads = new Parameters(shapes, device, where, dtype, GRADS, ".grad (shard " + comm.rank() + ")");
    }

    Communicator communicator() { return comm; }

    boolean onHost() { return onHost; }

    @Override
    public Parameters weights() {
        updates.awaitAll();
        return shardWeights;
    }

    @Override
    public Parameters grads() {
        for (int g : new java.util.ArrayList<>(staleGrads)) {
            clearGrads(g);
        }
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
                device.zero(shardGrads.get(s.name()));
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

    @Override
    public void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads) {
        List<String> names = units.names(unit);
        for (int g : layout.groupsOf(unit)) {
            ShardLayout.Group group = layout.group(g);
            if (heldFromTheHead(unit, withGrads)) {
                continue; // a tied embedding's matrix and gradient, kept from the head's backward
            }
            updates.await(g); // the host optimizer may still be writing this shard (offloaded shards)
            collectives.begin();
            gather(group, names, withGrads);
            collectives.end();
        }
    }

    /**
     * Gathers the unit's parameters of one group into whole tensors (and zeroed gradients), a piece at a time: each
     * rank sends at most {@link #piece} elements per collective, so the buffers stay a decoder layer's chunk even for
     * the embedding and the LM head.
     */
    private void gather(ShardLayout.Group group, List<String> names, boolean withGrads) {
        Map<String, Tensor> into = new java.util.LinkedHashMap<>();
        for (String name : names) {
            if (group.offsets().containsKey(name)) {
                Tensor w = device.allocate(name + " (gathered)", dtype, WEIGHTS, shapeOf(name));
                into.put(name, w);
                activeWeights.put(name, w);
                if (withGrads) {
                    activeGrads.put(name, device.allocate(name + ".grad (this rank's)", dtype, GRADS, shapeOf(name)));
                }
            }
        }
        long chunk = group.chunk();
        int ranks = comm.size();
        try (Tensor send = device.allocate("all-gather send", dtype, COMM, piece);
             Tensor recv = device.allocate("all-gather recv", dtype, COMM, piece * ranks)) {
            for (long lo = 0; lo < chunk; lo += piece) {
                long n = Math.min(piece, chunk - lo);
                for (ShardLayout.Slice sl : layout.slices(group.unit(), comm.rank())) {
                    long a = Math.max(sl.at(), lo), b = Math.min(sl.at() + sl.length(), lo + n);
                    if (a < b) {
                        device.copyRange(send, a - lo, shardWeights.get(sl.name()), a - sl.at(), b - a);
                    }
                }
                comm.allGather(send, recv);
                for (int r = 0; r < ranks; r++) {
                    long flatLo = r * chunk + lo, flatHi = flatLo + n;
                    for (var e : into.entrySet()) {
                        long off = group.offsets().get(e.getKey()), a = Math.max(flatLo, off), b = Math.min(flatHi, off + e.getValue().numel());
                        if (a < b) {
                            device.copyRange(e.getValue(), a - off, recv, (long) r * piece + (a - flatLo), b - a);
                        }
                    }
                }
            }
        }
    }

    private int[] shapeOf(String name) {
        return layout.config().parameterTensors().stream().filter(p -> p.name().equals(name)).findFirst().orElseThrow().intShape();
    }

    /**
     * With tied embeddings the matrix's gradient has two parts in each micro-batch, the head's and the embedding's:
     * they are added on this rank first and reduced once, at the embedding's release, as one rank with several
     * micro-batches adds them. So the head's backward keeps the gathered matrix and its gradient for the embedding.
     */
    private boolean holdsForTheEmbedding(int unit, boolean gradientsDone) {
        return gradientsDone && unit == units.head() && layout.config().tieWordEmbeddings();
    }

    private boolean heldFromTheHead(int unit, boolean withGrads) {
        return unit == ParameterUnits.embedding() && withGrads && activeGrads.containsKey(TIED);
    }

    private static final String TIED = "model.embed_tokens.weight";

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
        List<String> names = units.names(unit);
        boolean withGrads = names.stream().anyMatch(activeGrads::containsKey);
        boolean hold = withGrads && holdsForTheEmbedding(unit, gradientsDone);
        if (gradientsDone && withGrads) {
            for (int g : layout.groupsOf(unit)) {
                if (!(hold && g == ParameterUnits.embedding())) {
                    collectives.begin();
                    reduceScatter(layout.group(g), names);
                    collectives.end();
                }
            }
        }
        for (String name : names) {
            if (!(hold && name.equals(TIED))) {
                close(activeWeights.remove(name));
                close(activeGrads.remove(name));
            }
        }
    }

    /**
     * Adds the sum over ranks of this unit's gradients, for this rank's slices, into the shard's gradients; a piece
     * at a time, as {@link #gather}.
     */
    private void reduceScatter(ShardLayout.Group group, List<String> names) {
        long chunk = group.chunk();
        int ranks = comm.size();
        clearGrads(group.unit());
        try (Tensor send = device.allocate("reduce-scatter send", dtype, COMM, piece * ranks);
             Tensor recv = device.allocate("reduce-scatter recv", dtype, COMM, piece)) {
            for (long lo = 0; lo < chunk; lo += piece) {
                long n = Math.min(piece, chunk - lo);
                device.zero(send); // what no gradient covers (the padding after the unit's end) adds nothing
                for (int r = 0; r < ranks; r++) {
                    long flatLo = r * chunk + lo, flatHi = flatLo + n;
                    for (String name : names) {
                        Long off = group.offsets().get(name);
                        if (off != null) {
                            Tensor g = activeGrads.get(name);
                            long a = Math.max(flatLo, off), b = Math.min(flatHi, off + g.numel());
                            if (a < b) {
                                device.copyRange(send, (long) r * piece + (a - flatLo), g, a - off, b - a);
                            }
                        }
                    }
                }
                comm.reduceScatter(send, recv);
                for (ShardLayout.Slice sl : layout.slices(group.unit(), comm.rank())) {
                    long a = Math.max(sl.at(), lo), b = Math.min(sl.at() + sl.length(), lo + n);
                    if (a < b) {
                        addInto(shardGrads.get(sl.name()), a - sl.at(), recv, a - lo, b - a);
                    }
                }
            }
        }
    }

    /** dst[at, at + n) += src[from, from + n), in dst's dtype. */
    private void addInto(Tensor dst, long at, Tensor src, long from, long n) {
        try (Tensor part = device.allocate("reduced gradient piece", dtype, COMM, Math.toIntExact(n))) {
            device.copyRange(part, 0, src, from, n);
            if (at == 0 && n == dst.numel()) {
                device.accumulate(dst, part);
                return;
            }
            try (Tensor current = device.allocate("gradient shard piece", dtype, COMM, Math.toIntExact(n))) {
                device.copyRange(current, 0, dst, at, n);
                device.accumulate(current, part);
                device.copyRange(dst, at, current, 0, n);
            }
        }
    }

    private static void close(Tensor t) {
        if (t != null) {
            t.close();
        }
    }

    @Override public void finishBackward() { }

    @Override public double takeCollectiveSeconds() { return collectives.takeSeconds(); }

    @Override
    public void abandonPass() {
        updates.awaitAll();
        activeWeights.values().forEach(Tensor::close);
        activeGrads.values().forEach(Tensor::close);
        activeWeights.clear();
        activeGrads.clear();
        zeroGrads();
    }

    /** Gradients reach the shard through collectives in release: nothing is copied to the host to report. */
    @Override public void setGradientsListener(GradientsListener listener) { }

    /** The next gather of {@code unit}'s group waits for its update (the groups are indexed by unit, as updates are). */
    @Override public void weightsUpdating(int unit, Future<?> done) { updates.put(unit, done); }

    @Override public void weightsChanged() { }

    @Override
    public void close() {
        updates.drain();
        abandonPass();
        shardWeights.close();
        shardGrads.close();
    }
}
