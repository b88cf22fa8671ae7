package dev.longtune.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;

/**
 * A tensor waiting to be written: name, dtype, shape and a way to stream its bytes. Floats are converted in
 * chunks while writing, so a writer never holds a second copy of a model.
 */
abstract class PendingTensor {

    /** Floats are converted this many at a time. */
    private static final int CHUNK_ELEMENTS = 1 << 18;

    final String name;
    final SafetensorsDType dtype;
    final long[] shape;

    private PendingTensor(String name, SafetensorsDType dtype, long[] shape) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("a tensor needs a non-empty name");
        }
        if (name.equals(SafetensorsHeader.METADATA_KEY)) {
            throw new IllegalArgumentException("'" + name + "' is reserved for the metadata and cannot name a tensor");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor '" + name + "': shape " + Shapes.format(shape)
                        + " has a negative dimension");
            }
        }
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
    }

    long byteSize() { return Shapes.elementCount(shape) * dtype.byteSize(); }

    abstract void writeTo(WritableByteChannel out) throws IOException;

    /** Raw little-endian bytes, from the buffer's position to its limit. */
    static PendingTensor raw(String name, SafetensorsDType dtype, long[] shape, ByteBuffer data) {
        ByteBuffer bytes = data.slice();
        PendingTensor t = new PendingTensor(name, dtype, shape) {
            @Override
            void writeTo(WritableByteChannel out) throws IOException {
                writeAll(out, bytes.duplicate());
            }
        };
        requireSize(t, bytes.remaining());
        return t;
    }

    /** Floats stored as F32, BF16, F16 or F64; the array is read when writing, not copied now. */
    static PendingTensor floats(String name, SafetensorsDType dtype, long[] shape, float[] values) {
        if (!dtype.isFloat()) {
            throw new IllegalArgumentException("tensor '" + name + "': floats cannot be stored as " + dtype
                    + "; use F32, BF16, F16 or F64");
        }
        PendingTensor t = new PendingTensor(name, dtype, shape) {
            @Override
            void writeTo(WritableByteChannel out) throws IOException {
                ByteBuffer chunk = ByteBuffer.allocate(Math.min(values.length, CHUNK_ELEMENTS) * dtype.byteSize())
                        .order(ByteOrder.LITTLE_ENDIAN);
                for (int at = 0; at < values.length; at += CHUNK_ELEMENTS) {
                    int n = Math.min(CHUNK_ELEMENTS, values.length - at);
                    chunk.clear();
                    FloatCodec.encode(values, at, n, dtype, chunk);
                    writeAll(out, chunk.flip());
                }
            }
        };
        if (Shapes.elementCount(shape) != values.length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + Shapes.format(shape) + " has "
                    + Shapes.elementCount(shape) + " elements but " + values.length + " values were given");
        }
        return t;
    }

    /** A tensor whose bytes are written elsewhere, in slices at their places ({@link SliceWriter}): only its size counts. */
    static PendingTensor placeholder(String name, SafetensorsDType dtype, long[] shape) {
        return new PendingTensor(name, dtype, shape) {
            @Override
            void writeTo(WritableByteChannel out) {
                throw new IllegalStateException("tensor '" + name + "' is written in slices, not streamed");
            }
        };
    }

    /** A tensor of another file, copied byte for byte under a (possibly new) name. */
    static PendingTensor copyOf(String name, TensorEntry source) {
        TensorBytes bytes = source.bytes();
        return new PendingTensor(name, source.dtype(), source.shape()) {
            @Override
            void writeTo(WritableByteChannel out) throws IOException {
                for (int w = 0; w < bytes.windowCount(); w++) {
                    writeAll(out, bytes.window(w));
                }
            }
        };
    }

    private static void requireSize(PendingTensor t, long bytes) {
        if (bytes != t.byteSize()) {
            throw new IllegalArgumentException("tensor '" + t.name + "': " + bytes + " bytes given but dtype "
                    + t.dtype + " × shape " + Shapes.format(t.shape) + " needs " + t.byteSize());
        }
    }

    static void writeAll(WritableByteChannel out, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            out.write(bytes);
        }
    }
}
