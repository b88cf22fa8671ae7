package dev.longtune.cuda;

/**
 * A GPU allocation that did not fit under the cap (or in the GPU): the message names the tensor, its
 * category and size, what is held by category, the cap, and what the planner suggests instead.
 */
public final class GpuOutOfMemoryException extends RuntimeException {
    private final long requested;

    public GpuOutOfMemoryException(String message, long requested) {
        super(message);
        this.requested = requested;
    }

    public long requested() { return requested; }
}
