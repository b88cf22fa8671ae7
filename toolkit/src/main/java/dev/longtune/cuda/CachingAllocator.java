package dev.longtune.cuda;

import dev.longtune.plan.Units;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryTracker;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * A caching allocator over raw device (or pinned host) memory, in the spirit of PyTorch's: freed blocks are
 * kept by size class and handed out again, because cudaMalloc and cudaFree synchronise the GPU and a
 * training step frees and reallocates the same shapes every layer. Sizes round up to 512 B below 1 MiB
 * and to 2 MiB above, so a block fits every request of its class.
 *
 * <p>An optional cap bounds the reserved bytes (what was taken from the raw memory), so a big GPU can stand
 * in for a small one. When a request would pass the cap or the raw allocation fails, the cache is given back
 * and the request retried once; if it still does not fit, a {@link GpuOutOfMemoryException} names the
 * request, what is held by category, and the advice. Exact current and peak bytes per category are kept by
 * the tensors' {@link MemoryTracker}; this class adds reserved bytes and fragmentation. Thread-safe.
 */
public final class CachingAllocator implements AutoCloseable {
    /** Where blocks come from: cudaMalloc / cudaHostAlloc, or a fake in tests. */
    public interface RawMemory {
        /** An address, or 0 when the memory is exhausted. */
        long allocate(long bytes);

        void free(long address);
    }

    static final long SMALL = 1L << 20, SMALL_ROUND = 512, LARGE_ROUND = 2L << 20;

    private final String name;
    private final RawMemory raw;
    private final long cap;
    private final MemoryTracker tracker;
    private Supplier<String> advice = () -> "";
    private final TreeMap<Long, ArrayDeque<Long>> cached = new TreeMap<>();
    private final Map<Long, Long> live = new HashMap<>(); // address -> block size
    private long reserved, peakReserved, cachedBytes, requested, rawAllocations;

    /**
     * @param cap at most this many bytes reserved (Long.MAX_VALUE for none)
     * @param tracker the per-category counts of the same memory, quoted in out-of-memory messages
     */
    public CachingAllocator(String name, RawMemory raw, long cap, MemoryTracker tracker) {
        if (cap <= 0) {
            throw new IllegalArgumentException("memory cap must be positive, got " + cap);
        }
        this.name = name;
        this.raw = raw;
        this.cap = cap;
        this.tracker = tracker;
    }

    /** What the planner suggests when a request does not fit (set by whoever knows the run). */
    public void setAdvice(Supplier<String> advice) { this.advice = advice; }

    static long roundUp(long bytes) {
        long unit = bytes < SMALL ? SMALL_ROUND : LARGE_ROUND;
        return Math.max(unit, (bytes + unit - 1) / unit * unit);
    }

    /** A block of at least {@code bytes}; {@code what} names the tensor in an out-of-memory message. */
    public synchronized long allocate(long bytes, MemoryCategory category, String what) {
        long size = roundUp(bytes);
        ArrayDeque<Long> free = cached.get(size);
        long address;
        if (free != null && !free.isEmpty()) {
            address = free.pop();
            cachedBytes -= size;
        } else {
            address = allocateRaw(size, bytes, category, what);
        }
        live.put(address, size);
        requested += bytes;
        return address;
    }

    private long allocateRaw(long size, long bytes, MemoryCategory category, String what) {
        for (int attempt = 0; attempt < 2; attempt++) {
            if (reserved + size <= cap) {
                long address = raw.allocate(size);
                if (address != 0) {
                    reserved += size;
                    rawAllocations++;
                    peakReserved = Math.max(peakReserved, reserved);
                    return address;
                }
            }
            if (attempt == 0) {
                releaseCached();
            }
        }
        throw new GpuOutOfMemoryException(outOfMemoryMessage(bytes, category, what), bytes);
    }

    private String outOfMemoryMessage(long bytes, MemoryCategory category, String what) {
        StringBuilder held = new StringBuilder();
        tracker.currentByCategory().forEach((c, b) -> {
            if (b > 0) {
                held.append(held.isEmpty() ? "" : ", ").append(c).append(' ').append(Units.human(b));
            }
        });
        String limit = cap == Long.MAX_VALUE ? "the GPU's free memory" : "the cap of " + Units.human(cap);
        String tip = advice.get();
        return name + " out of memory: " + what + " needs " + Units.human(bytes) + " of " + category + " and "
                + Units.human(reserved) + " is reserved under " + limit + " (held: "
                + (held.isEmpty() ? "nothing" : held) + "; fragmentation " + Units.human(fragmentation()) + "). "
                + (tip.isEmpty() ? "Lower the context, checkpoint with offload, or ask the planner: "
                + "./longtune max-context --model <model> --gpu <gpu>" : tip);
    }

    public synchronized void free(long address, long bytes) {
        Long size = live.remove(address);
        if (size == null) {
            throw new IllegalStateException(name + ": block 0x" + Long.toHexString(address) + " freed twice or never allocated");
        }
        requested -= bytes;
        cached.computeIfAbsent(size, s -> new ArrayDeque<>()).push(address);
        cachedBytes += size;
    }

    /** Gives every cached (free) block back to the raw memory. */
    public synchronized void releaseCached() {
        for (var e : cached.entrySet()) {
            for (long address : e.getValue()) {
                raw.free(address);
                reserved -= e.getKey();
            }
        }
        cached.clear();
        cachedBytes = 0;
    }

    public synchronized long reserved() { return reserved; }

    public synchronized long peakReserved() { return peakReserved; }

    /** Starts a new reserved peak from what is reserved now (e.g. after a warm-up step). */
    public synchronized void resetPeakReserved() { peakReserved = reserved; }

    /** Bytes asked for by live blocks (before rounding). */
    public synchronized long requested() { return requested; }

    /** Reserved but not asked for: rounding inside live blocks plus cached free blocks. */
    public synchronized long fragmentation() { return reserved - requested; }

    public synchronized long cachedBytes() { return cachedBytes; }

    public synchronized int liveBlocks() { return live.size(); }

    /** How many times raw memory was asked for (a steady training loop stops asking). */
    public synchronized long rawAllocations() { return rawAllocations; }

    public long cap() { return cap; }

    /** Frees everything, live blocks included (their tensors must not be used afterwards). */
    @Override
    public synchronized void close() {
        releaseCached();
        List<Long> addresses = new ArrayList<>(live.keySet());
        for (long a : addresses) {
            raw.free(a);
            reserved -= live.remove(a);
        }
        requested = 0;
    }
}
