package dev.longtune.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A safetensors file, opened and memory-mapped: an 8-byte little-endian header length N, N bytes of JSON
 * ({@code {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}}), then the
 * data buffer, which the offsets index. Tensors are row-major and little-endian.
 *
 * <p>Opening checks the whole layout (see {@link MalformedCheckpointException} for what is rejected) and maps the
 * data in windows of at most 2 GiB, each holding whole tensors where they fit; the mappings stay valid after the
 * channel is closed, so there is nothing to close. Pages are read from disk when first touched.
 */
public final class SafetensorsFile {

    /** The largest window one mapping holds: {@link Integer#MAX_VALUE} rounded down to a multiple of 8. */
    static final int MAX_WINDOW = Integer.MAX_VALUE & ~7;

    private final Path path;
    private final Map<String, String> metadata;
    private final Map<String, TensorEntry> tensors;
    private final long headerLength;

    private SafetensorsFile(Path path, Map<String, String> metadata, Map<String, TensorEntry> tensors,
                            long headerLength) {
        this.path = path;
        this.metadata = metadata;
        this.tensors = tensors;
        this.headerLength = headerLength;
    }

    public static SafetensorsFile open(Path path) throws IOException {
        return open(path, MAX_WINDOW);
    }

    /** {@code maxWindow} (a multiple of 8) is lowered by tests to exercise tensors that span windows. */
    static SafetensorsFile open(Path path, int maxWindow) throws IOException {
        if (maxWindow <= 0 || maxWindow % 8 != 0) {
            throw new IllegalArgumentException("window size must be a positive multiple of 8, was " + maxWindow);
        }
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new MalformedCheckpointException(path, null, "file is truncated: it holds " + fileSize
                        + " bytes, fewer than the 8-byte header length that starts a safetensors file");
            }
            long n = readFully(channel, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (n < 0 || n > fileSize - 8) {
                throw new MalformedCheckpointException(path, null, "file is truncated: header length "
                        + Long.toUnsignedString(n) + " bytes goes beyond the " + (fileSize - 8)
                        + " bytes that follow it (file size " + fileSize + ")");
            }
            if (n > SafetensorsHeader.MAX_HEADER_BYTES) {
                throw new MalformedCheckpointException(path, null, "header length " + n
                        + " bytes is over the 100 MB that safetensors allows; this is not a safetensors file");
            }
            byte[] json = new byte[(int) n];
            readFully(channel, 8, (int) n).get(json);
            SafetensorsHeader header = SafetensorsHeader.parse(path, json);
            long dataStart = 8 + n;
            header.checkDataLength(path, fileSize - dataStart);
            Map<String, TensorEntry> tensors = new TreeMap<>();
            for (TensorEntry t : map(path, channel, dataStart, header.entries, maxWindow)) {
                tensors.put(t.name(), t);
            }
            return new SafetensorsFile(path, header.metadata, Collections.unmodifiableMap(tensors), n);
        }
    }

    /**
     * Maps runs of consecutive tensors together while the run stays within {@code maxWindow} bytes; a tensor
     * larger than that gets its own mappings of {@code maxWindow} bytes each.
     */
    private static List<TensorEntry> map(Path path, FileChannel channel, long dataStart,
                                         List<SafetensorsHeader.Entry> entries, int maxWindow) throws IOException {
        List<TensorEntry> out = new ArrayList<>(entries.size());
        int i = 0;
        while (i < entries.size()) {
            SafetensorsHeader.Entry first = entries.get(i);
            if (first.length() > maxWindow) {
                int count = (int) ((first.length() + maxWindow - 1) / maxWindow);
                ByteBuffer[] windows = new ByteBuffer[count];
                for (int w = 0; w < count; w++) {
                    long begin = first.begin() + (long) w * maxWindow;
                    windows[w] = mapRange(channel, dataStart + begin, Math.min(maxWindow, first.end() - begin));
                }
                out.add(entry(path, first, new TensorBytes(windows, maxWindow)));
                i++;
                continue;
            }
            int j = i;
            while (j < entries.size() && entries.get(j).end() - first.begin() <= maxWindow) {
                j++;
            }
            long runEnd = entries.get(j - 1).end();
            ByteBuffer run = mapRange(channel, dataStart + first.begin(), runEnd - first.begin());
            for (int k = i; k < j; k++) {
                SafetensorsHeader.Entry e = entries.get(k);
                ByteBuffer view = run.slice((int) (e.begin() - first.begin()), (int) e.length());
                out.add(entry(path, e, TensorBytes.of(view)));
            }
            i = j;
        }
        return out;
    }

    private static TensorEntry entry(Path path, SafetensorsHeader.Entry e, TensorBytes bytes) {
        return new TensorEntry(path, e.name(), e.dtype(), e.shape(), bytes);
    }

    private static ByteBuffer mapRange(FileChannel channel, long position, long length) throws IOException {
        if (length == 0) {
            return ByteBuffer.allocate(0);
        }
        return channel.map(FileChannel.MapMode.READ_ONLY, position, length);
    }

    private static ByteBuffer readFully(FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new IOException("unexpected end of file at byte " + (position + buffer.position()));
            }
        }
        return buffer.flip();
    }

    public Path path() { return path; }

    /** The {@code __metadata__} strings, sorted by key; empty when the file has none. */
    public Map<String, String> metadata() { return metadata; }

    /** Every tensor, sorted by name. */
    public List<TensorEntry> tensors() { return List.copyOf(tensors.values()); }

    /** Tensor names, sorted. */
    public List<String> names() { return List.copyOf(tensors.keySet()); }

    public boolean contains(String name) { return tensors.containsKey(name); }

    /** The tensor called {@code name}; {@link IllegalArgumentException} naming this file when there is none. */
    public TensorEntry tensor(String name) {
        TensorEntry t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(path + ": no tensor '" + name + "' among its " + tensors.size());
        }
        return t;
    }

    /** Shorthand for {@code tensor(name).toFloats()}. */
    public float[] readFloats(String name) { return tensor(name).toFloats(); }

    /** Bytes of JSON header (padding included), as the first 8 bytes state. */
    public long headerLength() { return headerLength; }
}
