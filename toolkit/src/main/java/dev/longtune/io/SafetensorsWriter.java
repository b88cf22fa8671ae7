package dev.longtune.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes one safetensors file, byte for byte as the reference implementation ({@code safetensors.torch.save_file})
 * would: tensors laid out by descending dtype (see {@link SafetensorsDType}), then by name, so a file of one dtype
 * is in name order; the header is compact JSON with {@code __metadata__} first (its keys sorted, which the
 * reference leaves to a hash map), padded with spaces to a multiple of 8 bytes.
 *
 * <pre>{@code
 * new SafetensorsWriter()
 *         .metadata("format", "pt")
 *         .addFloats("model.norm.weight", SafetensorsDType.BF16, new long[] {4096}, values)
 *         .write(path);
 * }</pre>
 *
 * Tensors are kept by reference until {@link #write}: arrays and buffers must not change before then.
 */
public final class SafetensorsWriter {

    private static final JsonFactory JSON = new JsonFactory();

    /** The reference's order: larger (later-declared) dtypes first, then names. */
    static final Comparator<PendingTensor> LAYOUT_ORDER = Comparator
            .comparing((PendingTensor t) -> t.dtype, Comparator.reverseOrder())
            .thenComparing(t -> t.name);

    private final Map<String, String> metadata = new TreeMap<>();
    private final Map<String, PendingTensor> tensors = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter metadata(Map<String, String> entries) {
        metadata.putAll(entries);
        return this;
    }

    /** Raw little-endian bytes (the buffer's remaining bytes, which must match dtype × shape). */
    public SafetensorsWriter add(String name, SafetensorsDType dtype, long[] shape, ByteBuffer data) {
        return add(PendingTensor.raw(name, dtype, shape, data));
    }

    /** Floats stored as {@code dtype} (F32 exactly; BF16 and F16 rounded to nearest even; or F64). */
    public SafetensorsWriter addFloats(String name, SafetensorsDType dtype, long[] shape, float[] values) {
        return add(PendingTensor.floats(name, dtype, shape, values));
    }

    /** A tensor read from another file, copied unchanged under its own name. */
    public SafetensorsWriter add(TensorEntry tensor) {
        return add(PendingTensor.copyOf(tensor.name(), tensor));
    }

    SafetensorsWriter add(PendingTensor tensor) {
        if (tensors.putIfAbsent(tensor.name, tensor) != null) {
            throw new IllegalArgumentException("tensor '" + tensor.name + "' was added twice");
        }
        return this;
    }

    /** Total bytes of tensor data added so far. */
    public long dataSize() {
        return tensors.values().stream().mapToLong(PendingTensor::byteSize).sum();
    }

    /**
     * Writes the file: first to a temporary file beside it, then moved into place, so a reader never sees half a
     * file.
     */
    public void write(Path path) throws IOException {
        List<PendingTensor> order = new ArrayList<>(tensors.values());
        order.sort(LAYOUT_ORDER);
        byte[] header = header(order);
        Path parent = path.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path temp = parent.resolve("." + path.getFileName() + ".partial");
        try {
            try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length);
                PendingTensor.writeAll(out, length.flip());
                PendingTensor.writeAll(out, ByteBuffer.wrap(header));
                for (PendingTensor t : order) {
                    long before = out.position();
                    t.writeTo(out);
                    if (out.position() - before != t.byteSize()) {
                        throw new IllegalStateException("tensor '" + t.name + "' wrote " + (out.position() - before)
                                + " bytes, expected " + t.byteSize());
                    }
                }
            }
            Files.move(temp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Compact JSON header, padded with spaces to a multiple of 8 bytes. */
    byte[] header(List<PendingTensor> order) {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.createGenerator(buffer)) {
            g.writeStartObject();
            if (!metadata.isEmpty()) {
                g.writeObjectFieldStart(SafetensorsHeader.METADATA_KEY);
                for (Map.Entry<String, String> e : metadata.entrySet()) {
                    g.writeStringField(e.getKey(), e.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (PendingTensor t : order) {
                g.writeObjectFieldStart(t.name);
                g.writeStringField("dtype", t.dtype.name());
                g.writeArrayFieldStart("shape");
                for (long d : t.shape) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(offset + t.byteSize());
                g.writeEndArray();
                g.writeEndObject();
                offset += t.byteSize();
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int padding = (8 - buffer.size() % 8) % 8;
        buffer.writeBytes(" ".repeat(padding).getBytes(StandardCharsets.US_ASCII));
        return buffer.toByteArray();
    }
}
