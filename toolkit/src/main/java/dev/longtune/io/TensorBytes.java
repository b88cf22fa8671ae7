package dev.longtune.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The stored bytes of one tensor: read-only, little-endian views into a memory-mapped file.
 *
 * <p>A {@link ByteBuffer} holds at most 2 GiB − 1 bytes, yet one tensor can be bigger (Llama 3.1 8B's embedding
 * in F32 is 2.1 GB), so the bytes are a list of windows: one for any tensor that fits, several of
 * {@link #windowSize()} bytes (a multiple of 8, so no element straddles two windows) for one that does not.
 */
public final class TensorBytes {

    private final ByteBuffer[] windows;
    private final long size;
    private final int windowSize;

    TensorBytes(ByteBuffer[] windows, int windowSize) {
        this.windows = windows;
        this.windowSize = windowSize;
        long total = 0;
        for (ByteBuffer w : windows) {
            total += w.remaining();
        }
        this.size = total;
    }

    /** A tensor held in one buffer (from the buffer's position to its limit). */
    static TensorBytes of(ByteBuffer buffer) {
        return new TensorBytes(new ByteBuffer[] {buffer}, Math.max(buffer.remaining(), 8));
    }

    /** Total bytes. */
    public long size() { return size; }

    public int windowCount() { return windows.length; }

    /** Bytes in every window but the last. */
    public int windowSize() { return windowSize; }

    /** Window {@code i}: a fresh read-only little-endian view, position 0. */
    public ByteBuffer window(int i) {
        return windows[i].slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The whole tensor as one buffer; only for tensors of one window (under 2 GiB). */
    public ByteBuffer buffer() {
        if (windows.length != 1) {
            throw new IllegalStateException("these " + size + " bytes span " + windows.length
                    + " windows of at most 2 GiB; read them with window(i) or copyTo(offset, dst)");
        }
        return window(0);
    }

    /** A view of {@code length} bytes starting at {@code offset}, when they lie in one window. */
    public ByteBuffer slice(long offset, int length) {
        int w = (int) (offset / windowSize);
        int at = (int) (offset % windowSize);
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new IndexOutOfBoundsException("bytes [" + offset + ", " + (offset + length) + ") of " + size);
        }
        if (length == 0) {
            return ByteBuffer.allocate(0).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        if (at + length > windows[w].remaining()) {
            throw new IllegalArgumentException("bytes [" + offset + ", " + (offset + length)
                    + ") cross a window boundary; use copyTo(offset, dst)");
        }
        return window(w).slice(at, length).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Copies {@code dst.remaining()} bytes starting at {@code offset} into {@code dst}, across windows. */
    public void copyTo(long offset, ByteBuffer dst) {
        if (offset < 0 || offset + dst.remaining() > size) {
            throw new IndexOutOfBoundsException("bytes [" + offset + ", " + (offset + dst.remaining()) + ") of " + size);
        }
        long at = offset;
        while (dst.hasRemaining()) {
            int w = (int) (at / windowSize);
            ByteBuffer src = window(w);
            src.position((int) (at % windowSize));
            int n = Math.min(src.remaining(), dst.remaining());
            src.limit(src.position() + n);
            dst.put(src);
            at += n;
        }
    }
}
