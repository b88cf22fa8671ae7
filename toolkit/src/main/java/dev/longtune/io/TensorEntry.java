package dev.longtune.io;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * One tensor of a safetensors file: its name, element type, shape (row-major, outermost first, as PyTorch
 * prints it) and stored bytes, with helpers that read it as {@code float}.
 *
 * @param file the file it was read from, for messages
 */
public record TensorEntry(Path file, String name, SafetensorsDType dtype, long[] shape, TensorBytes bytes) {

    public TensorEntry {
        shape = shape.clone();
    }

    @Override
    public long[] shape() { return shape.clone(); }

    public long elementCount() { return Shapes.elementCount(shape); }

    public long byteSize() { return bytes.size(); }

    /** The bytes as one read-only little-endian buffer (tensors under 2 GiB; see {@link TensorBytes}). */
    public ByteBuffer data() {
        if (bytes.windowCount() != 1) {
            throw new IllegalStateException(file + ": tensor '" + name + "': " + bytes.size()
                    + " bytes do not fit one ByteBuffer; use bytes().window(i) or readFloats(first, dst, offset, count)");
        }
        return bytes.buffer();
    }

    /** Every element as float (F16, BF16, F32, F64; widened exactly except F64). */
    public float[] toFloats() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException(file + ": tensor '" + name + "': " + n
                    + " elements do not fit one float[]; use readFloats(first, dst, offset, count)");
        }
        float[] out = new float[(int) n];
        readFloats(0, out, 0, out.length);
        return out;
    }

    /** Elements {@code [first, first+count)} as float into {@code dst[offset..offset+count)}. */
    public void readFloats(long first, float[] dst, int offset, int count) {
        if (!dtype.isFloat()) {
            throw new UnsupportedOperationException(file + ": tensor '" + name + "': dtype " + dtype
                    + " does not convert to float; only F16, BF16, F32 and F64 do");
        }
        if (first < 0 || count < 0 || first + count > elementCount()) {
            throw new IndexOutOfBoundsException(file + ": tensor '" + name + "': elements [" + first + ", "
                    + (first + count) + ") of " + elementCount());
        }
        int size = dtype.byteSize();
        long at = first * size;
        int done = 0;
        while (done < count) {
            int w = (int) (at / bytes.windowSize());
            ByteBuffer window = bytes.window(w);
            window.position((int) (at % bytes.windowSize()));
            int n = Math.min(count - done, window.remaining() / size);
            FloatCodec.decode(window, dtype, dst, offset + done, n);
            done += n;
            at += (long) n * size;
        }
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Shapes.format(shape);
    }
}
