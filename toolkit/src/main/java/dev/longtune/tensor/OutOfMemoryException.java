package dev.longtune.tensor;

/**
 * A device's memory (a GPU's allocator under its cap, or the CPU engine's tensors under a byte cap) cannot hold a
 * request. The message names the request, what is held by category, and what to do; a training step that meets
 * it gives back everything it allocated, so the caller may try again smaller.
 */
public class OutOfMemoryException extends RuntimeException {
    private final long requested;

    public OutOfMemoryException(String message, long requested) {
        super(message);
        this.requested = requested;
    }

    /** The bytes the failed request asked for. */
    public long requested() { return requested; }
}
