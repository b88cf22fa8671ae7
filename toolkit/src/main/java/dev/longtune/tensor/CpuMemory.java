package dev.longtune.tensor;

/** Allocates CPU tensors, each tagged with its category and counted by one {@link MemoryTracker}. */
public final class CpuMemory {
    private final MemoryTracker tracker;

    public CpuMemory() { this(new MemoryTracker(MemoryLocation.HOST_PAGEABLE)); }

    /** Counting into an existing tracker (a GPU device's host tracker, say). */
    public CpuMemory(MemoryTracker tracker) { this.tracker = tracker; }

    public MemoryTracker tracker() { return tracker; }

    public Tensor allocate(String name, DType dtype, MemoryCategory category, int... shape) {
        return new Tensor(name, shape, dtype, category, tracker);
    }
}
