package dev.longtune.tensor;

/**
 * Allocates CPU tensors, each tagged with its category and counted by one {@link MemoryTracker}; optionally under a
 * cap on the logical bytes held (numel × dtype size, as on a GPU), so that the CPU engine can stand in for a GPU of
 * that size (the measured max-context search runs on it in CI).
 */
public final class CpuMemory {
    private final MemoryTracker tracker;
    private final long cap;

    public CpuMemory() { this(new MemoryTracker(MemoryLocation.HOST_PAGEABLE)); }

    /** Counting into an existing tracker (a GPU device's host tracker, say). */
    public CpuMemory(MemoryTracker tracker) { this(tracker, Long.MAX_VALUE); }

    /** With at most {@code cap} logical bytes held at once. */
    public CpuMemory(MemoryTracker tracker, long cap) {
        if (cap <= 0) {
            throw new IllegalArgumentException("memory cap must be positive, got " + cap);
        }
        this.tracker = tracker;
        this.cap = cap;
    }

    public MemoryTracker tracker() { return tracker; }

    /** The cap on logical bytes held (Long.MAX_VALUE: none). */
    public long cap() { return cap; }

    public Tensor allocate(String name, DType dtype, MemoryCategory category, int... shape) {
        if (cap != Long.MAX_VALUE) {
            long bytes = Tensor.numel(shape) * dtype.bytes, held = tracker.currentTotal();
            if (held + bytes > cap) {
                throw new OutOfMemoryException(String.format(java.util.Locale.ROOT, "out of memory: %s (%s, %,d bytes) "
                        + "does not fit the CPU engine's %,d-byte cap with %,d bytes held %s: lower the context, "
                        + "tile the MLP, or offload more", name, category.id, bytes, cap, held, tracker.currentByCategory()), bytes);
            }
        }
        return new Tensor(name, shape, dtype, category, tracker);
    }
}
