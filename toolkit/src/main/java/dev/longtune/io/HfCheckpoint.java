package dev.longtune.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.longtune.config.ModelConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * A Hugging Face checkpoint folder: {@code config.json} plus either one {@code model.safetensors} or shards listed
 * by {@code model.safetensors.index.json} (the single file wins when both are there, as in transformers).
 *
 * <p>Opening maps every shard and checks the checkpoint against the config: every parameter the config calls for
 * is present, with the shape {@link ParameterShapes} gives it and a floating-point dtype. Tensors the config does
 * not know (such as the {@code rotary_emb.inv_freq} buffers older exports carry, or an {@code lm_head.weight}
 * beside tied embeddings) are kept and listed by {@link #extraTensors()}.
 *
 * <pre>{@code
 * HfCheckpoint ckpt = HfCheckpoint.open(Path.of("Llama-3.1-8B"));
 * float[] norm = ckpt.readFloats("model.norm.weight");
 * }</pre>
 */
public final class HfCheckpoint {

    public static final String CONFIG = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";

    private final Path folder;
    private final ModelConfig config;
    private final Map<String, TensorEntry> tensors;
    private final List<SafetensorsFile> shards;

    private HfCheckpoint(Path folder, ModelConfig config, Map<String, TensorEntry> tensors,
                         List<SafetensorsFile> shards) {
        this.folder = folder;
        this.config = config;
        this.tensors = tensors;
        this.shards = shards;
    }

    /** Opens {@code folder} and checks it against its own {@code config.json}. */
    public static HfCheckpoint open(Path folder) throws IOException {
        Path configFile = folder.resolve(CONFIG);
        if (!Files.isRegularFile(configFile)) {
            throw new MalformedCheckpointException(configFile, null,
                    "missing: a Hugging Face checkpoint folder keeps its config.json beside the safetensors files");
        }
        ModelConfig config;
        try {
            config = ModelConfig.read(configFile);
        } catch (IllegalArgumentException | JsonProcessingException e) {
            throw new MalformedCheckpointException(configFile, null, "not a usable model config: " + e.getMessage(), e);
        }
        return open(folder, config);
    }

    /** Opens {@code folder} and checks it against {@code config} (its own config.json is not read). */
    public static HfCheckpoint open(Path folder, ModelConfig config) throws IOException {
        Path single = folder.resolve(SINGLE_FILE);
        Path indexFile = folder.resolve(CheckpointIndex.FILE_NAME);
        Map<String, TensorEntry> tensors = new TreeMap<>();
        List<SafetensorsFile> shards = new ArrayList<>();
        Path listing;
        if (Files.isRegularFile(single)) {
            SafetensorsFile file = SafetensorsFile.open(single);
            shards.add(file);
            file.tensors().forEach(t -> tensors.put(t.name(), t));
            listing = single;
        } else if (Files.isRegularFile(indexFile)) {
            CheckpointIndex index = CheckpointIndex.read(indexFile);
            openShards(folder, index, tensors, shards);
            listing = indexFile;
        } else {
            throw new MalformedCheckpointException(folder, null, "holds neither " + SINGLE_FILE + " nor "
                    + CheckpointIndex.FILE_NAME + "; a Hugging Face checkpoint needs one of them");
        }
        checkAgainstConfig(listing, config, tensors);
        return new HfCheckpoint(folder, config, Collections.unmodifiableMap(tensors), List.copyOf(shards));
    }

    private static void openShards(Path folder, CheckpointIndex index, Map<String, TensorEntry> tensors,
                                   List<SafetensorsFile> shards) throws IOException {
        Map<String, List<String>> byShard = new LinkedHashMap<>();
        index.weightMap().forEach((name, shard) -> byShard.computeIfAbsent(shard, s -> new ArrayList<>()).add(name));
        for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
            Path shardPath = folder.resolve(e.getKey());
            List<String> names = e.getValue();
            if (!Files.isRegularFile(shardPath)) {
                throw new MalformedCheckpointException(index.file(), names.get(0), "points to shard '" + e.getKey()
                        + "', which does not exist in " + folder + " (" + names.size() + " tensor"
                        + (names.size() == 1 ? "" : "s") + " map to it)");
            }
            SafetensorsFile shard = SafetensorsFile.open(shardPath);
            shards.add(shard);
            for (String name : names) {
                if (!shard.contains(name)) {
                    throw new MalformedCheckpointException(shardPath, name, "missing: " + CheckpointIndex.FILE_NAME
                            + " places it in this shard, which holds " + shard.names().size() + " other tensors");
                }
                tensors.put(name, shard.tensor(name));
            }
        }
    }

    private static void checkAgainstConfig(Path listing, ModelConfig config, Map<String, TensorEntry> tensors)
            throws MalformedCheckpointException {
        Map<String, long[]> expected = ParameterShapes.of(config);
        List<String> missing = expected.keySet().stream().filter(n -> !tensors.containsKey(n)).toList();
        if (!missing.isEmpty()) {
            String more = missing.size() == 1 ? "" : " (" + missing.size() + " tensors missing: "
                    + missing.stream().limit(6).collect(Collectors.joining(", "))
                    + (missing.size() > 6 ? ", …" : "") + ")";
            throw new MalformedCheckpointException(listing, missing.get(0), "missing, but the config (" + describe(config)
                    + ") requires it" + more);
        }
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            TensorEntry t = tensors.get(e.getKey());
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new MalformedCheckpointException(t.file(), t.name(), "shape mismatch against the config ("
                        + describe(config) + "): expected " + Shapes.format(e.getValue()) + ", found "
                        + Shapes.format(t.shape()));
            }
            if (!t.dtype().isFloat()) {
                throw new MalformedCheckpointException(t.file(), t.name(), "dtype " + t.dtype()
                        + " is not a floating-point type; model weights are F32, BF16, F16 or F64");
            }
        }
    }

    private static String describe(ModelConfig c) {
        return c.name() + ": " + c.modelType() + ", hidden " + c.hiddenSize() + ", " + c.numLayers() + " layers, vocab "
                + c.vocabSize() + (c.tieWordEmbeddings() ? ", tied embeddings" : "");
    }

    public Path folder() { return folder; }

    public ModelConfig config() { return config; }

    /** Every tensor name, sorted. */
    public List<String> names() { return List.copyOf(tensors.keySet()); }

    /** Every tensor, sorted by name. */
    public List<TensorEntry> tensors() { return List.copyOf(tensors.values()); }

    /** Tensors present that the config does not call for, sorted. */
    public List<String> extraTensors() {
        Map<String, long[]> expected = ParameterShapes.of(config);
        return tensors.keySet().stream().filter(n -> !expected.containsKey(n)).toList();
    }

    /** The opened safetensors files: one, or every shard in index order. */
    public List<SafetensorsFile> shards() { return shards; }

    public boolean contains(String name) { return tensors.containsKey(name); }

    /** The tensor called {@code name}; {@link IllegalArgumentException} naming the folder when there is none. */
    public TensorEntry tensor(String name) {
        TensorEntry t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(folder + ": no tensor '" + name + "' in this checkpoint");
        }
        return t;
    }

    /** The file that holds {@code name}. */
    public Path fileOf(String name) { return tensor(name).file(); }

    /** Shorthand for {@code tensor(name).toFloats()}. */
    public float[] readFloats(String name) { return tensor(name).toFloats(); }

    /** Bytes of tensor data over all files. */
    public long totalSize() { return tensors.values().stream().mapToLong(TensorEntry::byteSize).sum(); }
}
