package dev.longtune.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Safetensors files whose tensors are written in slices, each at its place, by several writers at once: the ranks
 * of a sharded run each write the element ranges they own, and nobody assembles a whole tensor. The files are byte
 * for byte what {@link CheckpointWriter} (a Hugging Face folder: shards and index) or {@link SafetensorsWriter}
 * (one file) write for the same tensors: the layout and headers are theirs, fixed before any data is written.
 * Files are written under hidden partial names and moved into place by {@link #finish}, once every byte was
 * written; {@link #writeFloats} may be called from any thread. Several processes (the nodes of a run, on a shared
 * filesystem) write one set of files: one creates them ({@link #checkpoint}, {@link #file}), the others join them
 * once they exist ({@link #joinCheckpoint}, {@link #joinFile}); each writes its slices and {@link #flush}es, and the
 * creator moves the files into place with {@link #finishAcrossNodes} once every node's bytes are there.
 *
 * <pre>{@code
 * try (SliceWriter w = SliceWriter.checkpoint(folder, tensors)) {   // tensors: name -> (dtype, shape), in order
 *     w.writeFloats("model.norm.weight", 0, firstHalf);             // any thread, any order
 *     w.writeFloats("model.norm.weight", 2048, secondHalf);
 *     w.finish();
 * }
 * }</pre>
 */
public final class SliceWriter implements AutoCloseable {
    /** A tensor's dtype and shape. */
    public record Spec(SafetensorsDType dtype, long[] shape) {}

    private record Place(FileChannel channel, long position, SafetensorsDType dtype, long elements) {}

    private final Map<String, Place> places = new HashMap<>();
    private final Map<Path, FileChannel> partial = new LinkedHashMap<>();
    private final Map<Path, Path> finalNames = new LinkedHashMap<>();
    private final Map<Path, Long> written = new HashMap<>(), expected = new HashMap<>();
    private final List<Runnable> afterFinish = new ArrayList<>();
    private final boolean creator;
    private boolean finished;

    private SliceWriter(boolean creator) { this.creator = creator; }

    /** A Hugging Face checkpoint folder's tensors, sharded as {@link CheckpointWriter} shards (5 GB shards). */
    public static SliceWriter checkpoint(Path folder, Map<String, Spec> tensors) throws IOException {
        return checkpoint(folder, tensors, CheckpointWriter.DEFAULT_MAX_SHARD_SIZE);
    }

    /** The same with shards of at most {@code maxShardSize} bytes of tensor data. */
    public static SliceWriter checkpoint(Path folder, Map<String, Spec> tensors, long maxShardSize) throws IOException {
        return checkpoint(folder, tensors, maxShardSize, true);
    }

    /** Joins the partial files another process made with {@link #checkpoint} for the same tensors, to write slices. */
    public static SliceWriter joinCheckpoint(Path folder, Map<String, Spec> tensors) throws IOException {
        return checkpoint(folder, tensors, CheckpointWriter.DEFAULT_MAX_SHARD_SIZE, false);
    }

    private static SliceWriter checkpoint(Path folder, Map<String, Spec> tensors, long maxShardSize, boolean create)
            throws IOException {
        CheckpointWriter layout = CheckpointWriter.to(folder).maxShardSize(maxShardSize);
        tensors.forEach((name, s) -> layout.addPlaceholder(name, s.dtype(), s.shape()));
        SliceWriter w = new SliceWriter(create);
        try {
            List<List<PendingTensor>> shards = layout.split();
            Files.createDirectories(folder);
            if (shards.size() == 1) {
                w.open(folder.resolve(HfCheckpoint.SINGLE_FILE), shards.get(0), layout.metadataMap());
                w.afterFinish.add(() -> deleteQuietly(folder.resolve(CheckpointIndex.FILE_NAME)));
                return w;
            }
            Map<String, String> weightMap = new java.util.TreeMap<>();
            long total = 0;
            for (int i = 0; i < shards.size(); i++) {
                String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                w.open(folder.resolve(name), shards.get(i), layout.metadataMap());
                for (PendingTensor t : shards.get(i)) {
                    weightMap.put(t.name, name);
                    total += t.byteSize();
                }
            }
            CheckpointIndex index = new CheckpointIndex(folder.resolve(CheckpointIndex.FILE_NAME), total, weightMap);
            w.afterFinish.add(() -> {
                try {
                    index.write();
                    Files.deleteIfExists(folder.resolve(HfCheckpoint.SINGLE_FILE));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            return w;
        } catch (IOException | RuntimeException e) {
            w.abandon();
            throw e;
        }
    }

    /** One safetensors file with these tensors, laid out as {@link SafetensorsWriter} lays them out. */
    public static SliceWriter file(Path path, Map<String, Spec> tensors) throws IOException {
        return file(path, tensors, true);
    }

    /** Joins the partial file another process made with {@link #file} for the same tensors, to write slices. */
    public static SliceWriter joinFile(Path path, Map<String, Spec> tensors) throws IOException {
        return file(path, tensors, false);
    }

    private static SliceWriter file(Path path, Map<String, Spec> tensors, boolean create) throws IOException {
        SliceWriter w = new SliceWriter(create);
        List<PendingTensor> all = new ArrayList<>();
        tensors.forEach((name, s) -> all.add(PendingTensor.placeholder(name, s.dtype(), s.shape())));
        try {
            w.open(path, all, Map.of());
            return w;
        } catch (IOException | RuntimeException e) {
            w.abandon();
            throw e;
        }
    }

    private void open(Path path, List<PendingTensor> tensors, Map<String, String> metadata) throws IOException {
        SafetensorsWriter header = new SafetensorsWriter().metadata(metadata);
        List<PendingTensor> order = new ArrayList<>(tensors);
        order.sort(SafetensorsWriter.LAYOUT_ORDER);
        byte[] json = header.header(order);
        Path parent = path.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path temp = parent.resolve("." + path.getFileName() + ".partial");
        if (!creator && !Files.isRegularFile(temp)) {
            throw new IOException(temp + ": no partial file to join (the creating node makes it first)");
        }
        FileChannel out = creator ? FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING) : FileChannel.open(temp, StandardOpenOption.WRITE);
        partial.put(temp, out);
        finalNames.put(temp, path);
        if (creator) {
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).flip();
            PendingTensor.writeAll(out, length);
            PendingTensor.writeAll(out, ByteBuffer.wrap(json));
        }
        long position = 8 + json.length, data = 0;
        for (PendingTensor t : order) {
            places.put(t.name, new Place(out, position, t.dtype, Shapes.elementCount(t.shape)));
            position += t.byteSize();
            data += t.byteSize();
        }
        written.put(temp, 0L);
        expected.put(temp, data);
    }

    /**
     * Writes {@code values} as tensor {@code name}'s elements {@code from} … {@code from + values.length} (row-major),
     * converted to its dtype (BF16 and F16 rounded to nearest even).
     */
    public void writeFloats(String name, long from, float[] values) throws IOException {
        Place p = places.get(name);
        if (p == null) {
            throw new IllegalArgumentException("tensor '" + name + "' is not in this file's layout");
        }
        if (from < 0 || from + values.length > p.elements()) {
            throw new IllegalArgumentException("tensor '" + name + "': elements " + from + "…" + (from + values.length)
                    + " lie outside its " + p.elements());
        }
        int bytes = p.dtype().byteSize();
        int chunk = 1 << 18;
        ByteBuffer buffer = ByteBuffer.allocate(Math.min(values.length, chunk) * bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < values.length; at += chunk) {
            int n = Math.min(chunk, values.length - at);
            buffer.clear();
            FloatCodec.encode(values, at, n, p.dtype(), buffer);
            buffer.flip();
            long position = p.position() + (from + at) * bytes;
            while (buffer.hasRemaining()) {
                position += p.channel().write(buffer, position); // positional: safe from several threads
            }
        }
        Path file = partialOf(p.channel());
        synchronized (written) {
            written.merge(file, (long) values.length * bytes, Long::sum);
        }
    }

    private Path partialOf(FileChannel channel) {
        for (var e : partial.entrySet()) {
            if (e.getValue() == channel) {
                return e.getKey();
            }
        }
        throw new IllegalStateException("a channel of no file");
    }

    /** Checks that every byte was written once, then moves the files into place (and writes the index, if any). */
    public void finish() throws IOException {
        for (var e : expected.entrySet()) {
            long got = written.get(e.getKey());
            if (got != e.getValue()) {
                throw new IllegalStateException(finalNames.get(e.getKey()) + ": " + got + " bytes of tensor data were "
                        + "written, the layout has " + e.getValue() + " (a slice missing or written twice)");
            }
        }
        moveIntoPlace();
    }

    /** Bytes of tensor data this writer wrote (this process's share when several write the files). */
    public long writtenBytes() {
        synchronized (written) {
            return written.values().stream().mapToLong(Long::longValue).sum();
        }
    }

    /** Writes this process's bytes through to the files, so that another node's {@link #finishAcrossNodes} sees them. */
    public void flush() throws IOException {
        for (FileChannel c : partial.values()) {
            c.force(false);
        }
    }

    /**
     * The creating writer, once every node has flushed: checks that all nodes together wrote every byte once
     * ({@code writtenByAllNodes}, their {@link #writtenBytes} summed), then moves the files into place.
     */
    public void finishAcrossNodes(long writtenByAllNodes) throws IOException {
        if (!creator) {
            throw new IllegalStateException("only the writer that created the files moves them into place");
        }
        long layout = expected.values().stream().mapToLong(Long::longValue).sum();
        if (writtenByAllNodes != layout) {
            throw new IllegalStateException(finalNames.values() + ": the nodes wrote " + writtenByAllNodes + " bytes of "
                    + "tensor data, the layout has " + layout + " (a slice missing or written twice)");
        }
        moveIntoPlace();
    }

    private void moveIntoPlace() throws IOException {
        if (!creator) {
            throw new IllegalStateException("only the writer that created the files moves them into place");
        }
        for (var e : partial.entrySet()) {
            e.getValue().force(false);
            e.getValue().close();
            Files.move(e.getKey(), finalNames.get(e.getKey()), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        partial.clear();
        afterFinish.forEach(Runnable::run);
        finished = true;
    }

    /**
     * Without {@link #finish}: the creator removes the partial files, and nothing is left in place of the old ones; a
     * joining writer only closes its channels (the files are the creator's).
     */
    @Override
    public void close() {
        if (!finished) {
            abandon();
        }
    }

    private void abandon() {
        for (var e : partial.entrySet()) {
            try {
                e.getValue().close();
            } catch (IOException ignored) {
                // removing it is what matters
            }
            if (creator) {
                deleteQuietly(e.getKey());
            }
        }
        partial.clear();
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a leftover partial file is hidden and replaced by the next save
        }
    }
}
