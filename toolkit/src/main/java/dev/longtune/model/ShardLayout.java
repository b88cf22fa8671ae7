package dev.longtune.model;

import dev.longtune.config.ModelConfig;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How ZeRO-3 splits the parameters across ranks: each unit's parameters (the embedding, a layer, the final norm and
 * head) laid end to end as one flat vector in {@code named_parameters()} order, cut into {@code ranks} equal chunks
 * (the last padded); rank r owns chunk r. A parameter that straddles a cut has a slice on each side. A tied
 * embedding belongs to the first unit that names it.
 */
public final class ShardLayout {
    /** The part of one parameter a rank owns: elements [from, to) of the parameter, at {@code at} in the rank's chunk. */
    public record Slice(String name, long from, long to, long at) {
        public int length() { return Math.toIntExact(to - from); }
    }

    /** One unit's parameters as a flat vector: each name's offset in it, its total length and the chunk length. */
    public record Group(int unit, Map<String, Long> offsets, Map<String, Long> sizes, long length, long chunk) {}

    private final ModelConfig config;
    private final ParameterUnits units;
    private final int ranks;
    private final List<Group> groups = new ArrayList<>();
    private final Map<String, Integer> groupOf = new LinkedHashMap<>();

    public ShardLayout(ModelConfig config, int ranks) {
        if (ranks < 1) {
            throw new IllegalArgumentException("ranks must be at least 1, got " + ranks);
        }
        this.config = config;
        this.units = new ParameterUnits(config);
        this.ranks = ranks;
        Map<String, Long> shapes = new LinkedHashMap<>();
        for (ModelConfig.ParameterTensor p : config.parameterTensors()) {
            shapes.put(p.name(), p.elements());
        }
        Set<String> placed = new HashSet<>();
        for (int u = 0; u < units.count(); u++) {
            Map<String, Long> offsets = new LinkedHashMap<>(), sizes = new LinkedHashMap<>();
            long length = 0;
            for (String name : units.names(u)) {
                if (placed.add(name)) {
                    offsets.put(name, length);
                    sizes.put(name, shapes.get(name));
                    length += shapes.get(name);
                    groupOf.put(name, u);
                }
            }
            groups.add(new Group(u, offsets, sizes, length, (length + ranks - 1) / ranks));
        }
    }

    public int ranks() { return ranks; }

    public ModelConfig config() { return config; }

    /** Unit u's own parameters (empty for a head whose only matrix is the tied embedding's, besides its norm). */
    public Group group(int unit) { return groups.get(unit); }

    /** The units whose groups a unit's computation needs: its own, and the embedding's for a tied head. */
    public List<Integer> groupsOf(int unit) {
        Set<Integer> out = new java.util.TreeSet<>();
        for (String name : units.names(unit)) {
            out.add(groupOf.get(name));
        }
        return List.copyOf(out);
    }

    /** What {@code rank} owns of a group's parameters, in flat order. */
    public List<Slice> slices(int unit, int rank) {
        Group g = groups.get(unit);
        long lo = rank * g.chunk(), hi = Math.min(g.length(), lo + g.chunk());
        List<Slice> out = new ArrayList<>();
        for (var e : g.offsets().entrySet()) {
            long start = e.getValue(), end = start + g.sizes().get(e.getKey());
            long from = Math.max(lo, start), to = Math.min(hi, end);
            if (from < to) {
                out.add(new Slice(e.getKey(), from - start, to - start, from - lo));
            }
        }
        return out;
    }

    /** Every slice {@code rank} owns, by parameter name (a name appears once per rank: groups do not share names). */
    public Map<String, int[]> shardShapes(int rank) {
        Map<String, int[]> out = new LinkedHashMap<>();
        for (int u = 0; u < groups.size(); u++) {
            for (Slice s : slices(u, rank)) {
                out.put(s.name(), new int[] {s.length()});
            }
        }
        return out;
    }

    /** Where a rank's slice of {@code name} starts in the parameter (to cut a full tensor's values). */
    public Slice sliceOf(String name, int rank) {
        for (Slice s : slices(groupOf.get(name), rank)) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }
}
