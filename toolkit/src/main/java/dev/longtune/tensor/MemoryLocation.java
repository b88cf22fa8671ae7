package dev.longtune.tensor;

/** Where bytes live (docs/architecture.md, "Memory"): on the GPU, or in host memory that is pinned (page-locked) or pageable. */
public enum MemoryLocation {
    GPU("gpu"), HOST_PINNED("host-pinned"), HOST_PAGEABLE("host-pageable");

    public final String id;

    MemoryLocation(String id) { this.id = id; }

    @Override
    public String toString() { return id; }
}
