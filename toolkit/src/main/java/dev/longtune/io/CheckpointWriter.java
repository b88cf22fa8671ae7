package dev.longtune.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes the tensors of a Hugging Face checkpoint folder, sharded the way transformers' {@code save_pretrained}
 * shards ({@code split_torch_state_dict_into_shards}): tensors in the order they were added fill a shard until the
 * next would take it past {@link #maxShardSize(long)}; a tensor bigger than that gets a shard of its own. One shard
 * is written as {@code model.safetensors}; several as {@code model-00001-of-00003.safetensors}, … with
 * {@code model.safetensors.index.json}. Every shard carries the metadata {@code {"format": "pt"}}, which
 * transformers requires.
 *
 * <p>The config is not written here: copy {@code config.json} beside the shards.
 *
 * <pre>{@code
 * CheckpointWriter.to(folder).maxShardSize(5_000_000_000L)
 *         .addFloats("model.norm.weight", SafetensorsDType.BF16, new long[] {4096}, norm)
 *         .write();
 * }</pre>
 */
public final class CheckpointWriter {

    /** transformers' default {@code max_shard_size="5GB"}, in bytes. */
    public static final long DEFAULT_MAX_SHARD_SIZE = 5_000_000_000L;

    private final Path folder;
    private long maxShardSize = DEFAULT_MAX_SHARD_SIZE;
    private final Map<String, String> metadata = new TreeMap<>(Map.of("format", "pt"));
    private final Map<String, PendingTensor> tensors = new LinkedHashMap<>();

    private CheckpointWriter(Path folder) { this.folder = folder; }

    public static CheckpointWriter to(Path folder) { return new CheckpointWriter(folder); }

    /** Largest shard in bytes of tensor data (the header comes on top, as in transformers). */
    public CheckpointWriter maxShardSize(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("max shard size must be positive, was " + bytes);
        }
        this.maxShardSize = bytes;
        return this;
    }

    /** Metadata written into every shard, beside {@code "format": "pt"}. */
    public CheckpointWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public CheckpointWriter add(String name, SafetensorsDType dtype, long[] shape, ByteBuffer data) {
        return add(PendingTensor.raw(name, dtype, shape, data));
    }

    public CheckpointWriter addFloats(String name, SafetensorsDType dtype, long[] shape, float[] values) {
        return add(PendingTensor.floats(name, dtype, shape, values));
    }

    /** A tensor of another file, copied unchanged (to reshard or convert a checkpoint). */
    public CheckpointWriter add(TensorEntry tensor) {
        return add(PendingTensor.copyOf(tensor.name(), tensor));
    }

    /** A tensor written later in slices ({@link SliceWriter}): only its place in the layout is fixed here. */
    CheckpointWriter addPlaceholder(String name, SafetensorsDType dtype, long[] shape) {
        return add(PendingTensor.placeholder(name, dtype, shape));
    }

    Map<String, String> metadataMap() { return metadata; }

    private CheckpointWriter add(PendingTensor tensor) {
        if (tensors.putIfAbsent(tensor.name, tensor) != null) {
            throw new IllegalArgumentException("tensor '" + tensor.name + "' was added twice");
        }
        return this;
    }

    /**
     * Writes the shards, and the index when there are several; returns the files written, shards first. A
     * {@code model.safetensors} or index left from an earlier save in the other form is removed, since a loader
     * would otherwise pick the stale one.
     */
    public List<Path> write() throws IOException {
        Files.createDirectories(folder);
        List<List<PendingTensor>> shards = split();
        List<Path> written = new ArrayList<>();
        if (shards.size() == 1) {
            Path path = folder.resolve(HfCheckpoint.SINGLE_FILE);
            writeShard(shards.get(0), path);
            written.add(path);
            Files.deleteIfExists(folder.resolve(CheckpointIndex.FILE_NAME));
            return written;
        }
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            Path path = folder.resolve(name);
            writeShard(shards.get(i), path);
            written.add(path);
            for (PendingTensor t : shards.get(i)) {
                weightMap.put(t.name, name);
                total += t.byteSize();
            }
        }
        Files.deleteIfExists(folder.resolve(HfCheckpoint.SINGLE_FILE));
        CheckpointIndex index = new CheckpointIndex(folder.resolve(CheckpointIndex.FILE_NAME), total, weightMap);
        index.write();
        written.add(index.file());
        return written;
    }

    /** Greedy, in insertion order: a new shard starts when the next tensor would overflow the current one. */
    List<List<PendingTensor>> split() {
        List<List<PendingTensor>> shards = new ArrayList<>();
        List<PendingTensor> current = new ArrayList<>();
        long size = 0;
        for (PendingTensor t : tensors.values()) {
            if (!current.isEmpty() && size + t.byteSize() > maxShardSize) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(t);
            size += t.byteSize();
        }
        shards.add(current);
        return shards;
    }

    private void writeShard(List<PendingTensor> shard, Path path) throws IOException {
        SafetensorsWriter writer = new SafetensorsWriter().metadata(metadata);
        shard.forEach(writer::add);
        writer.write(path);
    }
}
