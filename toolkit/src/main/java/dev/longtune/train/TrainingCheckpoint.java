package dev.longtune.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.io.CheckpointWriter;
import dev.longtune.io.HfCheckpoint;
import dev.longtune.io.SafetensorsDType;
import dev.longtune.io.SafetensorsFile;
import dev.longtune.io.SafetensorsWriter;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.model.Parameters;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Saves and resumes training: a Hugging Face folder ({@code config.json}, {@code model.safetensors} in the
 * compute precision) that any HF tool can load, plus {@code optimizer.safetensors} (FP32 master weights and
 * Adam moments under {@code master.}, {@code exp_avg.}, {@code exp_avg_sq.} prefixes) and
 * {@code trainer_state.json} (step, loss scale, schedule, seed: data order is a function of seed and step).
 */
public final class TrainingCheckpoint {
    public static final String OPTIMIZER = "optimizer.safetensors", STATE = "trainer_state.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private TrainingCheckpoint() {}

    public static void save(Trainer trainer, Precision precision, Path dir) throws IOException {
        Files.createDirectories(dir);
        LlamaModel model = trainer.model();
        JSON.writeValue(dir.resolve(HfCheckpoint.CONFIG).toFile(), model.config().toHfJson());
        CheckpointWriter weights = CheckpointWriter.to(dir);
        SafetensorsDType stored = storedType(model.dtype());
        model.weights().byName().forEach((name, t) ->
                weights.addFloats(name, stored, longs(t.shape()), model.device().read(t)));
        weights.write();

        Optimizer o = trainer.optimizer();
        SafetensorsWriter opt = new SafetensorsWriter();
        add(opt, "master.", o.master());
        add(opt, "exp_avg.", o.exp_avg());
        add(opt, "exp_avg_sq.", o.exp_avg_sq());
        opt.write(dir.resolve(OPTIMIZER));

        JSON.writeValue(dir.resolve(STATE).toFile(), stateOf(trainer, precision));
    }

    private static Map<String, Object> stateOf(Trainer trainer, Precision precision) {
        LlamaModel model = trainer.model();
        Optimizer o = trainer.optimizer();
        Map<String, Object> state = new LinkedHashMap<>();
        state.put("step", trainer.step());
        state.put("optimizer_step", o.step());
        state.put("loss_scale", trainer.lossScaler().scale());
        state.put("loss_scale_good_steps", trainer.lossScaler().goodSteps());
        state.put("precision", precision.id);
        state.put("checkpointing", model.checkpointing().id);
        state.put("optimizer_placement", o.placement().id);
        state.put("parameter_placement", model.parameterPlacement().id);
        // one GPU's resident layers, sized for whole layers; a ZeRO-3 run's are its shards (1/P of a layer each), sized
        // for that GPU count: not carried into a resume that may run on another (DataParallel's resume takes its own)
        boolean sharded = model.communicator() != null;
        state.put("resident_layers", sharded ? 0 : model.residentLayers());
        state.put("resident_embedding", !sharded && model.residentEmbedding());
        state.put("training", trainer.config());
        return state;
    }

    /** What writes a sharded run's tensors: each rank its slices, into the weights' and the optimizer's files. */
    interface SliceSource {
        void write(dev.longtune.io.SliceWriter weights, dev.longtune.io.SliceWriter optimizer) throws IOException;
    }

    /**
     * The nodes of a run saving together: whether this one creates the files and moves them into place (node 0), and
     * a sum over all nodes that also waits for every node (a barrier with values).
     */
    interface Nodes {
        boolean creator();

        double[] sum(double... values);

        /** One node: it creates the files; the sums are its own values. */
        Nodes ONE = new Nodes() {
            @Override public boolean creator() { return true; }

            @Override public double[] sum(double... values) { return values.clone(); }
        };
    }

    /** The optimizer state's tensors in optimizer.safetensors: FP32 master, exp_avg, exp_avg_sq of every parameter. */
    static final List<String> OPTIMIZER_PREFIXES = List.of("master.", "exp_avg.", "exp_avg_sq.");

    /**
     * Saves a ZeRO-3 run as the same folder one GPU writes, byte for byte: the layout of every file is fixed first,
     * then {@code slices} has each rank write the elements it owns at their places (dev.longtune.io.SliceWriter), so
     * no whole tensor is assembled anywhere; any Hugging Face tool loads the folder and a resume may use another rank
     * count. The files appear only when every byte was written.
     */
    static void saveSharded(Trainer rank0, Precision precision, int ranks, SliceSource slices, Path dir) throws IOException {
        saveSharded(rank0, precision, ranks, slices, dir, Nodes.ONE);
    }

    /**
     * As above, from every node of a run at once (a shared filesystem): node 0 creates the files, the others join
     * them, each writes its ranks' slices, and node 0 moves the files into place once all nodes' bytes are there.
     * Every node returns once the folder is complete.
     */
    static void saveSharded(Trainer rank0, Precision precision, int ranks, SliceSource slices, Path dir, Nodes nodes)
            throws IOException {
        boolean creator = nodes.creator();
        LlamaModel model = rank0.model();
        if (creator) {
            Files.createDirectories(dir);
            JSON.writeValue(dir.resolve(HfCheckpoint.CONFIG).toFile(), model.config().toHfJson());
        }
        SafetensorsDType stored = storedType(model.dtype());
        Map<String, dev.longtune.io.SliceWriter.Spec> weights = new LinkedHashMap<>(), optimizer = new LinkedHashMap<>();
        for (ModelConfig.ParameterTensor p : model.config().parameterTensors()) {
            weights.put(p.name(), new dev.longtune.io.SliceWriter.Spec(stored, p.shape()));
        }
        for (String prefix : OPTIMIZER_PREFIXES) {
            for (ModelConfig.ParameterTensor p : model.config().parameterTensors()) {
                optimizer.put(prefix + p.name(), new dev.longtune.io.SliceWriter.Spec(SafetensorsDType.F32, p.shape()));
            }
        }
        if (nodes == Nodes.ONE) {
            try (var w = dev.longtune.io.SliceWriter.checkpoint(dir, weights);
                 var o = dev.longtune.io.SliceWriter.file(dir.resolve(OPTIMIZER), optimizer)) {
                slices.write(w, o);
                w.finish();
                o.finish();
            }
        } else {
            dev.longtune.io.SliceWriter w = null, o = null;
            try {
                if (creator) {
                    w = dev.longtune.io.SliceWriter.checkpoint(dir, weights);
                    o = dev.longtune.io.SliceWriter.file(dir.resolve(OPTIMIZER), optimizer);
                }
                nodes.sum(); // the partial files exist before the other nodes open them
                if (!creator) {
                    w = dev.longtune.io.SliceWriter.joinCheckpoint(dir, weights);
                    o = dev.longtune.io.SliceWriter.joinFile(dir.resolve(OPTIMIZER), optimizer);
                }
                slices.write(w, o);
                w.flush();
                o.flush();
                double[] written = nodes.sum(w.writtenBytes(), o.writtenBytes()); // and every node's bytes are on disk
                if (creator) {
                    w.finishAcrossNodes((long) written[0]);
                    o.finishAcrossNodes((long) written[1]);
                }
            } finally {
                if (w != null) {
                    w.close();
                }
                if (o != null) {
                    o.close();
                }
            }
        }
        if (creator) {
            Map<String, Object> state = stateOf(rank0, precision);
            state.put("ranks", ranks);
            JSON.writeValue(dir.resolve(STATE).toFile(), state);
        }
        nodes.sum(); // no node goes on before the folder is complete
    }

    /**
     * One rank's part of a resume from a folder {@link #save} or {@link #saveSharded} wrote: its slices of the weights
     * (the model keeps them from whole tensors), of the optimizer state, and the trainer's counters.
     */
    static void resumeRank(Trainer trainer, Path dir, dev.longtune.model.ShardLayout layout, int rank) throws IOException {
        JsonNode state = readState(dir);
        HfCheckpoint checkpoint = HfCheckpoint.open(dir);
        LlamaModel model = trainer.model();
        for (ModelConfig.ParameterTensor p : model.config().parameterTensors()) {
            model.load(p.name(), checkpoint.readFloats(p.name()));
        }
        model.weightsChanged();
        SafetensorsFile opt = SafetensorsFile.open(dir.resolve(OPTIMIZER));
        Optimizer o = trainer.optimizer();
        for (var prefixed : Map.of("master.", o.master(), "exp_avg.", o.exp_avg(), "exp_avg_sq.", o.exp_avg_sq()).entrySet()) {
            for (var e : prefixed.getValue().byName().entrySet()) {
                String key = prefixed.getKey() + e.getKey();
                if (!opt.contains(key)) {
                    throw new IOException(opt.path() + ": tensor '" + key + "' is missing");
                }
                dev.longtune.model.ShardLayout.Slice s = layout.sliceOf(e.getKey(), rank);
                float[] whole = opt.readFloats(key);
                prefixed.getValue().device().write(e.getValue(), java.util.Arrays.copyOfRange(whole, (int) s.from(), (int) s.to()));
            }
        }
        trainer.restore(state.path("step").asInt(), state.path("optimizer_step").asInt(),
                state.path("loss_scale").asDouble(), state.path("loss_scale_good_steps").asInt());
    }

    /**
     * Loads the weights of a Hugging Face folder into a model built for its config (resident, offloaded or one
     * rank's shard, which keeps only its slices), reading one tensor at a time.
     */
    static void loadWeights(LlamaModel model, Path folder) throws IOException {
        HfCheckpoint checkpoint = HfCheckpoint.open(folder);
        if (!checkpoint.config().equals(model.config())) {
            throw new IOException(folder + ": its config.json describes another model than the one being loaded into");
        }
        for (ModelConfig.ParameterTensor p : model.config().parameterTensors()) {
            model.load(p.name(), checkpoint.readFloats(p.name()));
        }
        model.weightsChanged();
    }

    /** What a folder's trainer_state.json says about precision, checkpointing, placement and training. */
    static JsonNode state(Path dir) throws IOException { return readState(dir); }

    static TrainingConfig trainingOf(JsonNode state) throws IOException {
        return JSON.treeToValue(state.path("training"), TrainingConfig.class);
    }

    /**
     * A model initialised from any Hugging Face folder ({@code config.json} + safetensors, sharded or not):
     * fine-tuning starts here, with a fresh optimizer.
     */
    public static LlamaModel loadModel(Path folder, Device device, Precision precision, Checkpointing checkpointing)
            throws IOException {
        return loadModel(folder, device, precision, checkpointing, ParameterPlacement.DEVICE);
    }

    /**
     * As below, with the first {@code residentLayers} decoder layers (and with {@code residentEmbedding} the embedding)
     * kept on the device out of offloaded parameters.
     */
    public static LlamaModel loadModel(Path folder, Device device, Precision precision, Checkpointing checkpointing,
                                       ParameterPlacement placement, int residentLayers, boolean residentEmbedding)
            throws IOException {
        HfCheckpoint checkpoint = HfCheckpoint.open(folder);
        return load(checkpoint, residentLayers > 0 || residentEmbedding
                ? new LlamaModel(checkpoint.config(), device, precision, checkpointing, residentLayers, residentEmbedding)
                : new LlamaModel(checkpoint.config(), device, precision, checkpointing, placement));
    }

    /** As above, with the parameters resident on the device or offloaded to the host. */
    public static LlamaModel loadModel(Path folder, Device device, Precision precision, Checkpointing checkpointing,
                                       ParameterPlacement placement) throws IOException {
        HfCheckpoint checkpoint = HfCheckpoint.open(folder);
        return load(checkpoint, new LlamaModel(checkpoint.config(), device, precision, checkpointing, placement));
    }

    private static LlamaModel load(HfCheckpoint checkpoint, LlamaModel model) throws IOException {
        try {
            for (var e : model.weights().byName().entrySet()) {
                model.device().write(e.getValue(), checkpoint.readFloats(e.getKey()));
            }
        } catch (RuntimeException e) {
            model.close(); // nothing held on the device after a failed load
            throw e;
        }
        model.weightsChanged();
        return model;
    }

    /** Rebuilds the model, optimizer and trainer exactly as saved. */
    public static Trainer resume(Path dir, Device device) throws IOException {
        JsonNode state = readState(dir);
        Precision precision = Precision.parse(state.path("precision").asText());
        LlamaModel model = loadModel(dir, device, precision, Checkpointing.parse(state.path("checkpointing").asText()),
                ParameterPlacement.parse(state.path("parameter_placement").asText("device")), state.path("resident_layers").asInt(0),
                state.path("resident_embedding").asBoolean(false));
        TrainingConfig training = JSON.treeToValue(state.path("training"), TrainingConfig.class);
        Trainer trainer = new Trainer(model, training, precision,
                Optimizer.Placement.parse(state.path("optimizer_placement").asText("host")));
        SafetensorsFile opt = SafetensorsFile.open(dir.resolve(OPTIMIZER));
        read(opt, "master.", trainer.optimizer().master());
        read(opt, "exp_avg.", trainer.optimizer().exp_avg());
        read(opt, "exp_avg_sq.", trainer.optimizer().exp_avg_sq());
        trainer.restore(state.path("step").asInt(), state.path("optimizer_step").asInt(),
                state.path("loss_scale").asDouble(), state.path("loss_scale_good_steps").asInt());
        return trainer;
    }

    private static JsonNode readState(Path dir) throws IOException {
        Path f = dir.resolve(STATE);
        if (!Files.isRegularFile(f)) {
            throw new IOException(dir + ": no " + STATE + "; is this a folder written by 'train --save'?");
        }
        return JSON.readTree(f.toFile());
    }

    private static void add(SafetensorsWriter w, String prefix, Parameters p) {
        p.byName().forEach((name, t) -> w.addFloats(prefix + name, SafetensorsDType.F32, longs(t.shape()), p.device().read(t)));
    }

    private static void read(SafetensorsFile f, String prefix, Parameters p) throws IOException {
        for (var e : p.byName().entrySet()) {
            if (!f.contains(prefix + e.getKey())) {
                throw new IOException(f.path() + ": tensor '" + prefix + e.getKey() + "' is missing");
            }
            float[] values = f.readFloats(prefix + e.getKey());
            Tensor t = e.getValue();
            if (values.length != t.numel()) {
                throw new IOException(f.path() + ": tensor '" + prefix + e.getKey() + "' has " + values.length
                        + " values, the model needs " + t.numel());
            }
            p.device().write(t, values);
        }
    }

    private static SafetensorsDType storedType(DType d) {
        return switch (d) {
            case BF16 -> SafetensorsDType.BF16;
            case FP16 -> SafetensorsDType.F16;
            default -> SafetensorsDType.F32;
        };
    }

    private static long[] longs(int[] shape) {
        long[] l = new long[shape.length];
        for (int i = 0; i < l.length; i++) {
            l[i] = shape[i];
        }
        return l;
    }
}
