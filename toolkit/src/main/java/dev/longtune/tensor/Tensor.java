package dev.longtune.tensor;

import java.util.Arrays;

/**
 * A dense row-major tensor with one memory category. On the CPU, floating types are stored as floats
 * rounded to their dtype (see {@link DType}) and INT32 as ints; on a GPU it is a {@link DeviceStorage}
 * holding the dtype's own bytes, read and written only through its device. Closing it returns its bytes to
 * the tracker (and a GPU block to its allocator).
 */
public final class Tensor implements AutoCloseable {
    private final String name;
    private final int[] shape;
    private final DType dtype;
    private final MemoryCategory category;
    private final MemoryTracker tracker;
    private float[] floats;
    private int[] ints;
    private DeviceStorage storage;

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

    private Tensor(String name, int[] shape, DType dtype, MemoryCategory category, MemoryTracker tracker,
                   DeviceStorage storage) {
        this.name = name;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.category = category;
        this.tracker = tracker;
        this.storage = storage;
        tracker.allocated(category, bytes());
    }

    /** A tensor in a device's own memory; its bytes are counted in {@code tracker} until it is closed. */
    public static Tensor onDevice(String name, DType dtype, MemoryCategory category, MemoryTracker tracker,
                                  DeviceStorage storage, int... shape) {
        numel(shape);
        return new Tensor(name, shape, dtype, category, tracker, storage);
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

    /** Where the bytes live: a GPU, pinned host memory (a GPU machine's host tensors), or the JVM/host. */
    public MemoryLocation location() { return tracker.location(); }

    /** Whether the values live in a device's memory (read them with {@code Device.read}). */
    public boolean onDevice() { return storage != null; }

    /** The device address of a GPU tensor. */
    public long address() {
        if (storage == null) {
            throw new IllegalStateException(name + " is " + (closed() ? "closed" : "a CPU tensor, with no device address"));
        }
        return storage.address();
    }

    /** The backing floats (row-major). Writers should call {@link #roundToDtype()} after writing. */
    public float[] floats() {
        if (storage != null) {
            throw new IllegalStateException(name + " lives in GPU memory: read it with Device.read(tensor) "
                    + "or copy it to a host tensor with Device.copy");
        }
        if (floats == null) {
            throw new IllegalStateException(name + " is " + (closed() ? "closed" : dtype.id + ", not a floating tensor"));
        }
        return floats;
    }

    public int[] ints() {
        if (storage != null) {
            throw new IllegalStateException(name + " lives in GPU memory");
        }
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

    public boolean closed() { return floats == null && ints == null && storage == null; }

    @Override
    public void close() {
        if (!closed()) {
            tracker.freed(category, bytes());
            floats = null;
            ints = null;
            if (storage != null) {
                DeviceStorage s = storage;
                storage = null;
                s.release();
            }
        }
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + " " + dtype.id + " " + category;
    }
}
