package dev.longtune.tensor;

import java.util.EnumMap;
import java.util.Map;

/**
 * Exact current and peak bytes per category and location, for one device. Every allocation reports here,
 * so a training step's measured memory uses the planner's vocabulary. Thread-safe.
 */
public final class MemoryTracker {
    private final MemoryLocation location;
    private final long[] current = new long[MemoryCategory.values().length];
    private final long[] peak = new long[MemoryCategory.values().length];
    private final long[] atTotalPeak = new long[MemoryCategory.values().length]; // each category when the total peaked
    private long total, totalPeak;
    private Listener listener;

    /** Told of every change, with the category's and the total's new bytes (e.g. a memory timeline). */
    public interface Listener {
        void changed(MemoryTracker tracker, MemoryCategory category, long categoryBytes, long totalBytes);
    }

    public MemoryTracker(MemoryLocation location) { this.location = location; }

    /** Where to report every change (null: nowhere); called inside the tracker's lock, so keep it short. */
    public synchronized void setListener(Listener l) { this.listener = l; }

    public MemoryLocation location() { return location; }

    public synchronized void allocated(MemoryCategory c, long bytes) {
        current[c.ordinal()] += bytes;
        peak[c.ordinal()] = Math.max(peak[c.ordinal()], current[c.ordinal()]);
        total += bytes;
        if (total > totalPeak) {
            totalPeak = total;
            System.arraycopy(current, 0, atTotalPeak, 0, current.length);
        }
        if (listener != null) {
            listener.changed(this, c, current[c.ordinal()], total);
        }
    }

    public synchronized void freed(MemoryCategory c, long bytes) {
        if (bytes > current[c.ordinal()]) {
            throw new IllegalStateException("freeing " + bytes + " B of " + c + " but only " + current[c.ordinal()]
                    + " B are held: a tensor was freed twice or under another category");
        }
        current[c.ordinal()] -= bytes;
        total -= bytes;
        if (listener != null) {
            listener.changed(this, c, current[c.ordinal()], total);
        }
    }

    public synchronized long current(MemoryCategory c) { return current[c.ordinal()]; }

    public synchronized long peak(MemoryCategory c) { return peak[c.ordinal()]; }

    public synchronized long currentTotal() { return total; }

    /** The largest total held at any moment (not the sum of per-category peaks). */
    public synchronized long peakTotal() { return totalPeak; }

    public synchronized Map<MemoryCategory, Long> currentByCategory() { return byCategory(current); }

    /**
     * Each category's bytes at the moment the total peaked (they add up to {@link #peakTotal()}): what a planner's
     * breakdown at its peak phase is to be compared with, unlike the per-category {@link #peak}s, which each
     * category may reach at a different moment.
     */
    public synchronized Map<MemoryCategory, Long> atPeakTotal() { return byCategory(atTotalPeak); }

    private static Map<MemoryCategory, Long> byCategory(long[] bytes) {
        Map<MemoryCategory, Long> m = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            m.put(c, bytes[c.ordinal()]);
        }
        return m;
    }

    /** Starts a new peak window at the current level (e.g. per training step). */
    public synchronized void resetPeaks() {
        System.arraycopy(current, 0, peak, 0, current.length);
        System.arraycopy(current, 0, atTotalPeak, 0, current.length);
        totalPeak = total;
    }
}
