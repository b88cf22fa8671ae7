package dev.longtune.plan;

import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryLocation;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** Bytes by category for one place (a GPU or the host) at one moment, with the terms behind them. */
public final class Breakdown {
    private final List<Term> terms = new ArrayList<>();
    private final MemoryLocation defaultLocation;

    Breakdown(MemoryLocation defaultLocation) { this.defaultLocation = defaultLocation; }

    Breakdown add(MemoryCategory category, String name, long bytes, String formula) {
        return add(category, defaultLocation, name, bytes, formula);
    }

    Breakdown add(MemoryCategory category, MemoryLocation location, String name, long bytes, String formula) {
        if (bytes > 0) {
            terms.add(new Term(category, location, name, bytes, formula));
        }
        return this;
    }

    public long bytes(MemoryLocation location) {
        return terms.stream().filter(t -> t.location() == location).mapToLong(Term::bytes).sum();
    }

    public List<Term> terms() { return Collections.unmodifiableList(terms); }

    public long total() { return terms.stream().mapToLong(Term::bytes).sum(); }

    public long bytes(MemoryCategory category) {
        return terms.stream().filter(t -> t.category() == category).mapToLong(Term::bytes).sum();
    }

    /** Every category, zero where nothing is held, in MemoryCategory order (docs/architecture.md). */
    public Map<MemoryCategory, Long> byCategory() {
        Map<MemoryCategory, Long> out = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            out.put(c, bytes(c));
        }
        return out;
    }
}
