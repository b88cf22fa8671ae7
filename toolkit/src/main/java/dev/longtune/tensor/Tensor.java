package dev.longtune.tensor;

import java.util.Arrays;

/**
 * A dense row-major tensor on the CPU with one memory category. Floating types are stored as floats
 * rounded to their dtype (see {@link DType}); INT32 as ints. Closing it returns its bytes to the tracker.
 */
public final class Tensor implements AutoCloseable {
    private final String name;
    private final int[] shape;
    private final DType dtype;
    private final MemoryCategory category;
    private final MemoryTracker tracker;
    private float[] floats;
    private int[] ints;

    Tensor(String name, int[] shape, DType dtype, MemoryCategory category, MemoryTracker tracker) {
        this.name = name;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.category = category;
        this.tracker = tracker;
        long n = numel(shape);
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(name + ": " + n + " elements exceed a CPU tensor's limit of 2^31");
        }
        if (dtype == DType.INT32) {
            ints = new int[(int) n];
        } else {
            floats = new float[(int) n];
        }
        tracker.allocated(category, bytes());
    }

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n *= d;
        }
        return n;
    }

    public String name() { return name; }

    public int[] shape() { return shape.clone(); }

    public int dim(int i) { return shape[i < 0 ? shape.length + i : i]; }

    public DType dtype() { return dtype; }

    public MemoryCategory category() { return category; }

    public long numel() { return numel(shape); }

    public long bytes() { return numel() * dtype.bytes; }

    /** The backing floats (row-major). Writers should call {@link #roundToDtype()} after writing. */
    public float[] floats() {
        if (floats == null) {
            throw new IllegalStateException(name + " is " + (closed() ? "closed" : dtype.id + ", not a floating tensor"));
        }
        return floats;
    }

    public int[] ints() {
        if (ints == null) {
            throw new IllegalStateException(name + " is " + (closed() ? "closed" : dtype.id + ", not int32"));
        }
        return ints;
    }

    /** Rounds the stored values to the dtype's precision (a no-op for FP32). */
    public Tensor roundToDtype() {
        dtype.roundInPlace(floats(), 0, floats.length);
        return this;
    }

    public boolean closed() { return floats == null && ints == null; }

    @Override
    public void close() {
        if (!closed()) {
            tracker.freed(category, bytes());
            floats = null;
            ints = null;
        }
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + " " + dtype.id + " " + category;
    }
}
