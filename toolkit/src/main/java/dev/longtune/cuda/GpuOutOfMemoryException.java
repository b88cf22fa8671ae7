package dev.longtune.cuda;

import dev.longtune.tensor.OutOfMemoryException;

/** The GPU allocator cannot hold a request under its cap (or the GPU is full). */
public final class GpuOutOfMemoryException extends OutOfMemoryException {
    public GpuOutOfMemoryException(String message, long requested) {
        super(message, requested);
    }
}
