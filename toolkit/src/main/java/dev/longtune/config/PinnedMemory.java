package dev.longtune.config;

/** How host buffers for offloaded tensors are allocated. */
public enum PinnedMemory {
    /** Ordinary pageable memory: slow copies (6 GB/s host-to-device on the H200 machine), no rounding. */
    PAGEABLE("pageable"),
    /**
     * PyTorch's caching host allocator ({@code pin_memory()}): fast copies, but every block is rounded up to
     * a power of two, so a 1000 MiB checkpoint holds 1024 MiB and a 384 MiB one holds 512 MiB.
     */
    CACHING("caching"),
    /** One pinned pool carved at exact sizes (longtune's engine): fast copies, no rounding. */
    POOL("pool");

    public final String id;

    PinnedMemory(String id) { this.id = id; }

    public static PinnedMemory parse(String s) { return Names.parse(PinnedMemory.class, s, p -> p.id); }
}
