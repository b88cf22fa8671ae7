package dev.longtune.plan;

import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryLocation;

/**
 * One line of a memory prediction: what it is, its category, its size, and how the size was computed
 * (the formula with the numbers put in), so every figure in a table can be traced by hand.
 */
public record Term(MemoryCategory category, MemoryLocation location, String name, long bytes, String formula) {
    public Term {
        if (bytes < 0) {
            throw new IllegalArgumentException(name + ": negative size " + bytes);
        }
    }
}
