package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.device.Device.Stream;
import dev.longtune.ops.Rope;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Future;

import static dev.longtune.tensor.MemoryCategory.ACTIVATIONS;
import static dev.longtune.tensor.MemoryCategory.CHECKPOINTS;

/**
 * A Llama 3.x decoder written out layer by layer (llm.c style): {@link #forwardBackward} runs the forward,
 * the fused linear cross-entropy and the backward, adding (+=) into {@link #grads()}. Weights and
 * activations are in the compute precision; gradients too (the optimizer keeps the FP32 master copy).
 * Gradient checkpointing at layer boundaries: keep every layer's tensors, keep only layer inputs on the
 * device and recompute, or move layer inputs to host memory and bring them back for the recompute. All
 * three give identical gradients.
 */
public final class LlamaModel implements AutoCloseable {
    /** Told of each layer as forward and backward pass it, e.g. to drive a progress bar. */
    public interface LayerListener {
        void layerDone(String pass, int layer, int layers);
    }

    private final ModelConfig config;
    private final Device device;
    private final DType e;
    private final ParameterStore store;
    private final ParameterUnits units;
    private final Device.BusyClock busy;
    private final double[] invFreq;
    private final int h, f, q, kv, heads, kvHeads, headDim, layers, vocab;
    private Checkpointing checkpointing;
    private int sequenceTile;
    private LayerListener listener = (pass, layer, n) -> { };

    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing) {
        this(config, device, precision, checkpointing, ParameterPlacement.DEVICE);
    }

    /**
     * With the parameters {@link ParameterPlacement#DEVICE resident} on the device, or offloaded to
     * {@link ParameterPlacement#HOST host} memory and brought over a unit at a time (ZeRO-3-style).
     */
    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                      ParameterPlacement placement) {
        this(config, device, precision, checkpointing, placement, null, false, 0, false);
    }

    /**
     * Parameters offloaded to host memory except the first {@code residentLayers} decoder layers, whose weights and
     * gradients stay on the device (and whose optimizer state the {@code Trainer} keeps there too): see
     * {@link OffloadedParameters}.
     */
    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                      int residentLayers) {
        this(config, device, precision, checkpointing, residentLayers, false);
    }

    /** The same, with the embedding matrix resident on the device too ({@code residentEmbedding}; untied embeddings). */
    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                      int residentLayers, boolean residentEmbedding) {
        this(config, device, precision, checkpointing, ParameterPlacement.HOST, null, false, residentLayers, residentEmbedding);
    }

    private LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                       ParameterPlacement placement, dev.longtune.dist.Communicator ranks, boolean sharded,
                       int residentLayers, boolean residentEmbedding) {
        requireSupported(config);
        this.config = config;
        this.device = device;
        this.e = dtypeOf(precision);
        this.checkpointing = checkpointing;
        this.h = config.hiddenSize();
        this.f = config.intermediateSize();
        this.q = (int) config.queryDim();
        this.kv = (int) config.kvDim();
        this.heads = config.numHeads();
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        this.layers = config.numLayers();
        this.vocab = config.vocabSize();
        this.units = new ParameterUnits(config);
        this.busy = device.busyClock();
        this.store = sharded ? new ShardedParameters(new ShardLayout(config, ranks.size()), ranks, device, e,
                placement == ParameterPlacement.HOST, residentLayers, residentEmbedding)
                : placement == ParameterPlacement.HOST ? new OffloadedParameters(config, device, e, 2, residentLayers, residentEmbedding)
                : new ResidentParameters(config, device, e);
        ModelConfig.RopeScaling rs = config.ropeScaling();
        this.invFreq = Rope.inverseFrequencies(headDim, config.ropeTheta(), rs == null ? null
                : new Rope.Llama3Scaling(rs.factor(), rs.lowFreqFactor(), rs.highFreqFactor(), rs.originalMaxPositions()));
    }

    /** Fails, naming what to do instead, unless the engine trains models of this architecture (Llama 3.x layers). */
    public static void requireSupported(ModelConfig config) {
        if (config.qkvBias() || config.outputProjectionBias() || config.mlpBias()) {
            throw new IllegalArgumentException(config.name() + " has attention or MLP biases (Qwen2): the engine "
                    + "trains Llama 3.x layers (no biases); plan it with the planner instead");
        }
    }

    /**
     * One rank of ZeRO-3 data parallelism: this rank keeps its slices of the weights and gradients on {@code device};
     * each unit is all-gathered before it runs and its gradients reduce-scattered after its backward, through
     * {@code ranks} (see {@link ShardedParameters}).
     */
    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                      dev.longtune.dist.Communicator ranks) {
        this(config, device, precision, checkpointing, ParameterPlacement.DEVICE, ranks);
    }

    /** The same with the shards on the device or ({@link ParameterPlacement#HOST}) in host memory. */
    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                      ParameterPlacement shards, dev.longtune.dist.Communicator ranks) {
        this(config, device, precision, checkpointing, shards, ranks, 0, false);
    }

    /**
     * The same with the shards in host memory except this rank's shards of the first {@code residentLayers} decoder
     * layers (and of the embedding, {@code residentEmbedding}), which stay on the device with their optimizer state.
     */
    public LlamaModel(ModelConfig config, Device device, Precision precision, Checkpointing checkpointing,
                      ParameterPlacement shards, dev.longtune.dist.Communicator ranks, int residentLayers,
                      boolean residentEmbedding) {
        this(config, device, precision, checkpointing, shards, java.util.Objects.requireNonNull(ranks, "ranks"), true,
                residentLayers, residentEmbedding);
    }

    /** Tensors larger than this (elements) are initialised in parallel blocks of this size. */
    static final int PARALLEL_INIT = 1 << 20;

    public static DType dtypeOf(Precision p) {
        return switch (p) {
            case FP32 -> DType.FP32;
            case BF16 -> DType.BF16;
            case FP16 -> DType.FP16;
        };
    }

    /**
     * Normal(0, 0.02) for matrices, ones for norms (Hugging Face's initialisation), seeded. Tensors of more than
     * {@link #PARALLEL_INIT} elements are filled in parallel blocks, each from its own generator split off the
     * seed (an 8B model would take minutes from one generator: with blocks of 2^24 elements its set-up spent
     * 121 s here on 32 cores); smaller ones from the one sequential generator.
     */
    public void initialize(long seed) {
        Random r = new Random(seed);
        long tensorIndex = 0;
        for (ModelConfig.ParameterTensor entry : config.parameterTensors()) {
            float[] w = new float[Math.toIntExact(entry.elements())];
            tensorIndex++;
            if (entry.name().endsWith("norm.weight")) {
                Arrays.fill(w, 1f);
            } else if (w.length > PARALLEL_INIT) {
                long tensorSeed = seed * 0x9E3779B97F4A7C15L + tensorIndex;
                // only the blocks the store keeps (a rank of data parallelism keeps its slice): the others stay zero
                long[] kept = store.keeps(entry.name(), w.length);
                int firstBlock = (int) (kept[0] / PARALLEL_INIT), endBlock = (int) ((kept[1] + PARALLEL_INIT - 1) / PARALLEL_INIT);
                java.util.stream.IntStream.range(firstBlock, endBlock).parallel().forEach(block -> {
                    java.util.SplittableRandom g = new java.util.SplittableRandom(tensorSeed * 31 + block);
                    for (int i = block * PARALLEL_INIT, end = Math.min(w.length, i + PARALLEL_INIT); i < end; i++) {
                        w[i] = (float) (0.02 * g.nextGaussian());
                    }
                });
            } else {
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) (0.02 * r.nextGaussian());
                }
            }
            store.load(entry.name(), w);
        }
        store.weightsChanged();
    }

    public ModelConfig config() { return config; }

    public Device device() { return device; }

    public DType dtype() { return e; }

    /** The authoritative weights: on the device, or in host memory when parameters are offloaded. */
    public Parameters weights() { return store.weights(); }

    /** The accumulated gradients, where {@link #weights()} are. */
    public Parameters grads() { return store.grads(); }

    /** Gradients = 0, before the first micro-batch of a step. */
    public void zeroGrads() { store.zeroGrads(); }

    /** Sets one parameter from its whole values (row-major); a rank of data parallelism keeps its own slice. */
    public void load(String name, float[] values) { store.load(name, values); }

    /** Tells the model its {@link #weights()} were written (optimizer step, load): device copies are stale. */
    public void weightsChanged() { store.weightsChanged(); }

    /** The ranks this model's parameters are sharded over (ZeRO-3 data parallelism), or null for a model of its own. */
    public dev.longtune.dist.Communicator communicator() {
        return store instanceof ShardedParameters s ? s.communicator() : null;
    }

    public ParameterPlacement parameterPlacement() {
        return store instanceof OffloadedParameters || store instanceof ShardedParameters s && s.onHost()
                ? ParameterPlacement.HOST : ParameterPlacement.DEVICE;
    }

    public Checkpointing checkpointing() { return checkpointing; }

    public void setCheckpointing(Checkpointing c) { this.checkpointing = c; }

    /** Tokens the MLP sees at once (0: all of them): see {@link #setSequenceTile}. */
    public int sequenceTile() { return sequenceTile; }

    /**
     * Runs each layer's MLP over tiles of {@code tokens} tokens (0: untiled), forward and backward, so that its
     * wide tensors (gate, up, their product and their gradients: T × intermediate each) exist for one tile at a
     * time: the Arctic Long Sequence Training idea. Forward outputs and the gradients of the activations equal the
     * untiled ones (the MLP is row by row); the weights' gradients add the tiles' products one after another, so
     * they differ from one product over all tokens in rounding only. The backward recomputes each tile's gate and
     * up from the saved norm output instead of keeping them.
     */
    public LlamaModel setSequenceTile(int tokens) {
        if (tokens < 0) {
            throw new IllegalArgumentException("sequence tile must be 0 (untiled) or a positive number of tokens, was "
                    + tokens);
        }
        this.sequenceTile = tokens;
        return this;
    }

    private boolean tiled(int t) { return sequenceTile > 0 && sequenceTile < t; }

    private int keptAttentionLayers;
    private boolean prefetchCheckpoints;
    private boolean keepLastLayer;

    /** Whether the last layer's saved tensors stay on the GPU for its backward: {@link #setKeepLastLayer}. */
    public boolean keepLastLayer() { return keepLastLayer; }

    /**
     * Under checkpointing (device or offload), the last layer saves its tensors as it would without checkpointing:
     * they and its input stay on the device through the loss, and its backward, which starts right after the loss,
     * uses them instead of recomputing the layer from its input. The recompute would make the same tensors at that
     * moment, so the backward's peak is unchanged; the loss holds one layer's saved tensors more (the planner's
     * loss phase). Saves one layer's forward in every step; the results are bit for bit the same.
     */
    public LlamaModel setKeepLastLayer(boolean keep) {
        if (keep && checkpointing == Checkpointing.NONE) {
            throw new IllegalArgumentException("keeping the last layer's saved tensors is for checkpointed runs: with "
                    + "checkpointing none every layer keeps them already");
        }
        this.keepLastLayer = keep;
        return this;
    }

    /** Whether layer {@code i} keeps its saved tensors on the device from its forward to its backward. */
    private boolean keptWhole(int i) { return keepLastLayer && checkpointing != Checkpointing.NONE && i == layers - 1; }

    /** Whether backward brings the layer below's offloaded checkpoint back while a layer computes: {@link #setPrefetchCheckpoints}. */
    public boolean prefetchCheckpoints() { return prefetchCheckpoints; }

    /**
     * With offloaded checkpoints, backward copies the layer below's checkpoint (input; attention output and lse where
     * kept) back on the host-to-device stream while a layer computes, instead of on the compute stream when that layer
     * starts: the copies leave the critical path, and one more checkpoint is on the device at the backward's peak
     * (T·h·e, and T·q·e + 4·heads·T with kept attention). Same results.
     */
    public LlamaModel setPrefetchCheckpoints(boolean prefetch) {
        this.prefetchCheckpoints = prefetch;
        return this;
    }

    /** Whether any layer's attention output and lse go to host memory with its input: see {@link #setKeepAttention}. */
    public boolean keepAttention() { return keptAttentionLayers > 0; }

    /** How many layers (the first ones) keep their attention output and lse: see {@link #setKeptAttentionLayers}. */
    public int keptAttentionLayers() { return keptAttentionLayers; }

    /**
     * With offloaded checkpoints, also offloads each layer's attention output (T × heads·head dim) and log-sum-exp
     * (heads × T) in forward and brings them back for its backward, whose recompute then skips attention's forward:
     * at long context that is the costliest kernel of the recompute, traded for host memory and PCIe copies.
     * Results are bit-identical (the recomputed attention would be the same numbers).
     */
    public LlamaModel setKeepAttention(boolean keep) { return setKeptAttentionLayers(keep ? config.numLayers() : 0); }

    /**
     * {@link #setKeepAttention} for the first {@code layers} layers only (0 … the model's layers): each kept layer
     * costs T·(q·e + 4·heads) bytes of host memory and saves its attention forward in the backward, so a host that
     * cannot hold every layer's can still hold some.
     */
    public LlamaModel setKeptAttentionLayers(int layers) {
        if (layers < 0 || layers > config.numLayers()) {
            throw new IllegalArgumentException("layers keeping their attention output: " + layers + " (0 to "
                    + config.numLayers() + ", the model's layers)");
        }
        if (layers > 0 && checkpointing != Checkpointing.OFFLOAD) {
            throw new IllegalArgumentException("keeping attention outputs offloads them with the layer inputs: it needs "
                    + "checkpointing offload, not " + checkpointing.id);
        }
        this.keptAttentionLayers = layers;
        return this;
    }

    /** Rows of the MLP's wide tensors: the tile, or every token. */
    private int mlpRows(int t) { return tiled(t) ? sequenceTile : t; }

    private LayerActivations activations(int t) {
        return new LayerActivations(device, e, t, mlpRows(t), h, q, kv, f, heads);
    }

    public void setLayerListener(LayerListener l) { this.listener = l; }

    /** The listener told of each layer's forward and backward (a no-op one unless set). */
    public LayerListener layerListener() { return listener; }

    /**
     * With LONGTUNE_IDLE_BY_LAYER set, the step's idle time is summed per decoder layer ("forward layer 17") instead of
     * over all of them: where in a pass the device waits (a benchmark's diagnosis; the step JSON grows by 64 keys).
     */
    private static final boolean IDLE_BY_LAYER = System.getenv("LONGTUNE_IDLE_BY_LAYER") != null;

    // every unit's compute lies between its acquire and release: the busy clock times exactly that
    private void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads) {
        store.acquire(unit, withGrads, next, nextWithGrads);
        busy.begin((withGrads ? "backward " : "forward ") + (unit == ParameterUnits.embedding() ? "embedding"
                : unit == units.head() ? "head" : IDLE_BY_LAYER ? "layer " + unit : "layers"));
    }

    private void release(int unit, boolean gradientsDone) {
        busy.end();
        store.release(unit, gradientsDone);
    }

    /**
     * Seconds the device spent computing (forward, recompute, loss and backward kernels, no copies or waits for
     * them) since the last call: set against a step's wall time, it is what offloading costs.
     */
    public double takeBusySeconds() { return busy.takeSeconds(); }

    /**
     * Seconds the device sat idle, since the last {@link #takeBusySeconds}'s, before units' work, by what came next
     * ("forward layers", "backward embedding", …): the time before "forward embedding" spans from the previous step's
     * last kernel (the optimizer step, the host's update of the embedding), the others are waits inside the pass.
     */
    public Map<String, Double> takeIdleSeconds() { return busy.takeIdleSeconds(); }

    /** Seconds the device spent in data parallelism's collectives since the last call (0 without it). */
    public double takeCollectiveSeconds() { return store.takeCollectiveSeconds(); }

    /** Seconds the communication stream spent in those collectives since the last call, overlapped or not. */
    public double takeCommunicationSeconds() { return store.takeCommunicationSeconds(); }

    /**
     * Seconds this thread waited, since the last call, for the host optimizer to finish updating weights a unit was
     * about to load (offloaded parameters: the previous step's update racing this step's forward).
     */
    public double takeUpdateWaitSeconds() { return store.takeUpdateWaitSeconds(); }

    /** How many decoder layers (the first ones) stay on the device out of offloaded parameters (0: none or not offloaded). */
    public int residentLayers() {
        return store instanceof OffloadedParameters o ? o.residentLayers() : store instanceof ShardedParameters sp ? sp.residentLayers() : 0;
    }

    /** Whether a parameter belongs to a resident layer (see {@link #residentLayers}), so that its weights are device tensors. */
    public boolean isResident(String name) {
        return store instanceof OffloadedParameters o ? o.isResidentName(name) : store instanceof ShardedParameters sp && sp.isResidentName(name);
    }

    /** Whether the embedding matrix stays on the device out of offloaded parameters. */
    public boolean residentEmbedding() {
        return store instanceof OffloadedParameters o ? o.residentEmbedding() : store instanceof ShardedParameters sp && sp.residentEmbedding();
    }

    /** The parameter names of each unit the parameters move in, in forward order (embedding, layers, head). */
    public List<List<String>> parameterUnits() {
        List<List<String>> out = new ArrayList<>();
        for (int u = 0; u < units.count(); u++) {
            out.add(units.names(u));
        }
        return out;
    }

    /** See {@link ParameterStore#setGradientsListener}. */
    public void setGradientsListener(ParameterStore.GradientsListener l) { store.setGradientsListener(l); }

    /** See {@link ParameterStore#weightsUpdating}; {@code unit} indexes {@link #parameterUnits()}. */
    public void weightsUpdating(int unit, Future<?> done) { store.weightsUpdating(unit, done); }

    private Tensor w(String name) { return store.weight(name); }

    private Tensor g(String name) { return store.grad(name); }

    private int head() { return units.head(); }

    private static int unit(int layer) { return ParameterUnits.layer(layer); }

    private static String layer(int i, String rest) { return "model.layers." + i + "." + rest; }

    private Tensor lmHead() { return config.tieWordEmbeddings() ? w("model.embed_tokens.weight") : w("lm_head.weight"); }

    private Tensor lmHeadGrad() { return config.tieWordEmbeddings() ? g("model.embed_tokens.weight") : g("lm_head.weight"); }

    private Tensor zeros(String name, MemoryCategory c, int... shape) { return device.allocate(name, e, c, shape); }

    /**
     * The hidden state after the embedding and the first {@code n} layers (T, h), for inspecting the model
     * step by step; the caller closes it.
     */
    public Tensor hiddenAfter(int n, Batch b) {
        b.requireVocabulary(vocab);
        if (n < 0 || n > layers) {
            throw new IllegalArgumentException("the model has " + layers + " layers; asked for the state after " + n);
        }
        Tensor x = embed(b, ACTIVATIONS, n > 0 ? unit(0) : -1);
        for (int i = 0; i < n; i++) {
            try (LayerActivations a = activations(b.tokens())) {
                acquire(unit(i), false, i + 1 < n ? unit(i + 1) : -1, false);
                Tensor out = layerForward(i, x, a, b, ACTIVATIONS);
                release(unit(i), false);
                x.close();
                x = out;
            }
        }
        return x;
    }

    /**
     * Logits (V) of the token after {@code context}: every layer forward, then the final norm and the LM head on the
     * last position, with the weights reached as in training (a rank of data parallelism gathers them with its
     * peers, which must run the same call). In the compute precision the LM-head GEMM leaves them.
     */
    public float[] lastLogits(int[] context) {
        int t = context.length;
        try (Tensor hidden = hiddenAfter(layers, Batch.ofDocument(context));
             Tensor last = device.allocate("generation last hidden", e, ACTIVATIONS, 1, h);
             Tensor normed = device.allocate("generation final norm", e, ACTIVATIONS, 1, h);
             Tensor rstd = device.allocate("generation final rstd", DType.FP32, ACTIVATIONS, 1);
             Tensor logits = device.allocate("generation logits", e, ACTIVATIONS, 1, vocab)) {
            // the last row of the (T, h) state (generation here has no KV cache anyway)
            device.copyRange(last, 0, hidden, (long) (t - 1) * h, h);
            acquire(head(), false, -1, false);
            try {
                device.rmsNormForward(normed, rstd, last, w("model.norm.weight"), 1, h, (float) config.rmsNormEps());
                device.matmul(logits, normed, lmHead(), 1, vocab, h, false, true, 0f);
            } finally {
                release(head(), false);
            }
            return device.read(logits);
        }
    }

    /** Mean loss over the batch's valid targets, without gradients and without keeping activations. */
    public double loss(Batch b) {
        b.requireVocabulary(vocab);
        int t = b.tokens();
        Tensor x = embed(b, ACTIVATIONS, layers > 0 ? unit(0) : head());
        for (int i = 0; i < layers; i++) {
            try (LayerActivations a = activations(t)) {
                acquire(unit(i), false, i + 1 < layers ? unit(i + 1) : head(), false);
                Tensor out = layerForward(i, x, a, b, ACTIVATIONS);
                release(unit(i), false);
                x.close();
                x = out;
            }
        }
        acquire(head(), false, -1, false);
        try (Tensor nf = zeros("final norm", ACTIVATIONS, t, h);
             Tensor rstd = device.allocate("final rstd", DType.FP32, ACTIVATIONS, t)) {
            device.rmsNormForward(nf, rstd, x, w("model.norm.weight"), t, h, (float) config.rmsNormEps());
            x.close();
            return device.linearCrossEntropy(null, null, nf, lmHead(), b.targets(), t, h, vocab, 1f);
        } finally {
            release(head(), false);
        }
    }

    /**
     * Forward, loss and backward of one micro-batch: returns the mean loss over its valid targets and adds
     * {@code gradientScale} × its gradients into {@link #grads()} (the scale carries loss scaling and
     * 1/micro-batches).
     */
    public double forwardBackward(Batch b, float gradientScale) {
        b.requireVocabulary(vocab);
        Pass p = new Pass(layers);
        try {
            return forwardBackward(b, gradientScale, p);
        } catch (Throwable failure) {
            abandon(p, failure);
            throw failure;
        }
    }

    /** What one forward/backward holds, so that a pass that fails or is interrupted can give it all back. */
    private static final class Pass {
        final Tensor[] inputs, attentions, lses;  // offloaded checkpoints: layer inputs, kept attention outputs and lse
        final LayerActivations[] kept;
        Tensor x, dx, input;
        LayerActivations a;
        // the previous layer's tensors whose copy to the host (offloaded checkpoints) may still run, and its end
        final List<Tensor> offloading = new ArrayList<>();
        Device.Event offloaded;
        // in backward, the next layer's checkpoint brought back ahead (offloaded checkpoints): input, attention, lse
        Tensor nextInput, nextAtt, nextLse, att, lse; // att, lse: the current layer's, once brought back
        Device.Event broughtBack;

        Pass(int layers) {
            inputs = new Tensor[layers];
            attentions = new Tensor[layers];
            lses = new Tensor[layers];
            kept = new LayerActivations[layers];
        }

        void close() {
            for (Tensor[] held : new Tensor[][] {inputs, attentions, lses}) {
                for (Tensor t : held) {
                    if (t != null) {
                        t.close();
                    }
                }
            }
            for (LayerActivations k : kept) {
                if (k != null) {
                    k.close();
                }
            }
            offloading.forEach(Tensor::close);
            offloading.clear();
            if (offloaded != null) {
                offloaded.discard();
                offloaded = null;
            }
            for (Tensor t : new Tensor[] {nextInput, nextAtt, nextLse, att, lse}) {
                if (t != null) {
                    t.close();
                }
            }
            nextInput = nextAtt = nextLse = att = lse = null;
            if (broughtBack != null) {
                broughtBack.discard();
                broughtBack = null;
            }
            for (AutoCloseable c : new AutoCloseable[] {x, dx, input, a}) {
                if (c instanceof Tensor t) {
                    t.close();
                } else if (c instanceof LayerActivations l) {
                    l.close();
                }
            }
        }
    }

    /**
     * Ends a pass that threw (an interrupt at a layer boundary, an out-of-memory error, Thread.stop): waits for the
     * device, frees every activation and checkpoint the pass made, and clears the gradients it had started, so
     * that memory is as it was before the step. The interrupt status is kept for the caller.
     */
    private void abandon(Pass p, Throwable failure) {
        FailedStep.cleanUp(failure, () -> {
            device.synchronize();
            // the checkpoint copies still queued on the copy streams write into tensors freed below
            device.record(Stream.HOST_TO_DEVICE).synchronize();
            device.record(Stream.DEVICE_TO_HOST).synchronize();
            p.close();
            store.abandonPass();
            busy.takeSeconds();
        });
    }

    /**
     * Stops the pass at a layer boundary when its thread was interrupted (a notebook's interrupt, a training loop's
     * cancel): forward and backward check between layers, so a step ends within one layer's time.
     */
    private static void stopIfInterrupted(String where) {
        if (Thread.currentThread().isInterrupted()) {
            throw new StepInterruptedException("interrupted " + where + ": the step was abandoned; model, optimizer "
                    + "and memory are as they were before it");
        }
    }

    private double forwardBackward(Batch b, float gradientScale, Pass p) {
        int t = b.tokens();
        MemoryCategory inputCategory = checkpointing == Checkpointing.NONE ? ACTIVATIONS : CHECKPOINTS;
        p.x = embed(b, inputCategory, layers > 0 ? unit(0) : head());
        for (int i = 0; i < layers; i++) {
            stopIfInterrupted("before layer " + i + "'s forward");
            p.a = activations(t);
            int layer = i;
            List<Tensor> reading = new ArrayList<>();
            boolean whole = keptWhole(i);
            if (checkpointing == Checkpointing.OFFLOAD && !whole) {
                // the input goes to the host on its own stream while this layer computes (it is complete: the layer
                // before wrote it; queued before the acquire, so it does not also wait for the layer's weights), and,
                // where kept, the attention output and lse once the attention half has made them, under the MLP half;
                // what the copies read is given back during the next layer (settleOffload)
                p.inputs[i] = device.allocateHostForOverwrite("layer " + i + " input", e, CHECKPOINTS, t, h);
                device.waitFor(Device.Stream.DEVICE_TO_HOST, device.record(Device.Stream.COMPUTE));
                device.copyAsync(p.inputs[i], p.x, Device.Stream.DEVICE_TO_HOST);
                reading.add(p.x);
            }
            acquire(unit(i), false, i + 1 < layers ? unit(i + 1) : head(), i + 1 == layers);
            // the layer before's checkpoint copies end before this layer's output is allocated: at most two layer
            // inputs (this one's and the one before, or this one's and its output) at once
            Tensor out = layerForward(i, p.x, p.a, b, inputCategory, () -> {
                settleOffload(p);
                if (checkpointing == Checkpointing.OFFLOAD && layer < keptAttentionLayers && !whole) {
                    offloadAttention(p, layer, t);
                    reading.add(p.a.att);
                    reading.add(p.a.lse);
                }
            });
            release(unit(i), false);
            if (whole) {
                // its input and saved tensors stay here for its backward, which follows the loss
                p.inputs[i] = p.x;
                p.kept[i] = p.a;
                p.a = null;
                p.x = out;
                listener.layerDone("forward", i, layers);
                continue;
            }
            switch (checkpointing) {
                case NONE -> {
                    p.inputs[i] = p.x;
                    p.kept[i] = p.a;
                }
                case DEVICE -> {
                    p.inputs[i] = p.x;
                    p.a.close();
                }
                case OFFLOAD -> {
                    if (i < keptAttentionLayers) {
                        p.a.closeExcept(p.a.att, p.a.lse);
                    } else {
                        p.a.close();
                    }
                    p.offloading.addAll(reading);
                    p.offloaded = device.record(Device.Stream.DEVICE_TO_HOST);
                }
            }
            p.a = null;
            p.x = out;
            listener.layerDone("forward", i, layers);
        }
        if (checkpointing == Checkpointing.OFFLOAD && prefetchCheckpoints && layers > 0 && !keptWhole(layers - 1)) {
            // where the GPU has the room, the last layer's checkpoint (its input; attention output and lse where kept)
            // stays on the device for that layer's backward, through the loss, instead of coming back from the host;
            // its copy to the host still ends here, as every layer's does
            p.nextInput = p.offloading.remove(0);
            if (!p.offloading.isEmpty()) {
                p.nextAtt = p.offloading.remove(0);
                p.nextLse = p.offloading.remove(0);
            }
            settleOffload(p);
            p.broughtBack = device.record(Stream.COMPUTE);
        } else {
            // the last layer's copies end before the loss: what they read is not held through the loss's peak
            settleOffload(p);
        }
        stopIfInterrupted("before the loss");

        double loss;
        p.dx = zeros("d final", ACTIVATIONS, t, h);
        acquire(head(), true, layers > 0 ? unit(layers - 1) : ParameterUnits.embedding(), true);
        try (Tensor nf = zeros("final norm", ACTIVATIONS, t, h);
             Tensor rstd = device.allocate("final rstd", DType.FP32, ACTIVATIONS, t);
             Tensor dnf = zeros("d final norm", ACTIVATIONS, t, h)) {
            device.rmsNormForward(nf, rstd, p.x, w("model.norm.weight"), t, h, (float) config.rmsNormEps());
            loss = device.linearCrossEntropy(dnf, lmHeadGrad(), nf, lmHead(), b.targets(), t, h, vocab, gradientScale);
            device.rmsNormBackward(p.dx, g("model.norm.weight"), dnf, p.x, w("model.norm.weight"), rstd, t, h);
        }
        release(head(), true);
        p.x.close();

        for (int i = layers - 1; i >= 0; i--) {
            stopIfInterrupted("before layer " + i + "'s backward");
            boolean attentionKept = p.attentions[i] != null;
            if (keptWhole(i)) {
                p.input = p.inputs[i]; // on the device since its forward, with its saved tensors (p.kept)
                p.inputs[i] = null;
            } else if (checkpointing == Checkpointing.OFFLOAD && !prefetchCheckpoints) {
                // brought back as the layer starts, on the compute stream: one checkpoint on the device at a time
                Tensor back = device.allocateForOverwrite("layer " + i + " input", e, CHECKPOINTS, t, h);
                device.copy(back, p.inputs[i]);
                p.inputs[i].close();
                p.inputs[i] = null;
                p.input = back;
            } else if (checkpointing == Checkpointing.OFFLOAD) {
                if (p.broughtBack == null) {
                    bringBack(p, i, t); // the last layer's, without the room to keep it on the device through the loss
                }
                device.waitFor(Stream.COMPUTE, p.broughtBack);
                p.broughtBack = null;
                p.input = p.nextInput;
                p.att = p.nextAtt;
                p.lse = p.nextLse;
                p.nextInput = p.nextAtt = p.nextLse = null;
                p.inputs[i].close();
                p.inputs[i] = null;
            } else {
                p.input = p.inputs[i];
                p.inputs[i] = null;
            }
            p.a = p.kept[i];
            p.kept[i] = null;
            acquire(unit(i), true, i > 0 ? unit(i - 1) : ParameterUnits.embedding(), true);
            if (checkpointing == Checkpointing.OFFLOAD && i > 0 && prefetchCheckpoints) {
                bringBack(p, i - 1, t); // the layer below's checkpoint comes over while this one computes
            }
            if (p.a == null) {
                // recompute what the layer's backward reads from its checkpoint; its output is not needed again
                p.a = activations(t);
                if (attentionKept && !prefetchCheckpoints) { // attention's output and lse come back from the host
                    device.copy(p.a.att, p.attentions[i]);
                    device.copy(p.a.lse, p.lses[i]);
                } else if (attentionKept) { // they came back ahead, into tensors of their own
                    device.copy(p.a.att, p.att);
                    device.copy(p.a.lse, p.lse);
                    p.att.close();
                    p.lse.close();
                    p.att = p.lse = null;
                }
                if (attentionKept) {
                    p.attentions[i].close();
                    p.lses[i].close();
                    p.attentions[i] = null;
                    p.lses[i] = null;
                }
                recompute(i, p.input, p.a, b, attentionKept);
            }
            Tensor dPrev = layerBackward(i, p.dx, p.input, p.a, b);
            release(unit(i), true);
            p.dx.close();
            p.a.close();
            p.input.close();
            p.a = null;
            p.input = null;
            p.dx = dPrev;
            listener.layerDone("backward", i, layers);
        }
        acquire(ParameterUnits.embedding(), true, -1, false);
        device.embeddingBackward(g("model.embed_tokens.weight"), p.dx, b.ids(), t, h);
        release(ParameterUnits.embedding(), true);
        p.dx.close();
        store.finishBackward();
        return loss;
    }

    /** Queues the copies of layer {@code i}'s attention output and lse (made by the compute queued so far) to the host. */
    private void offloadAttention(Pass p, int i, int t) {
        p.attentions[i] = device.allocateHostForOverwrite("layer " + i + " attention output", e, CHECKPOINTS, t, q);
        p.lses[i] = device.allocateHostForOverwrite("layer " + i + " attention lse", DType.FP32, CHECKPOINTS, heads, t);
        device.waitFor(Device.Stream.DEVICE_TO_HOST, device.record(Device.Stream.COMPUTE));
        device.copyAsync(p.attentions[i], p.a.att, Device.Stream.DEVICE_TO_HOST);
        device.copyAsync(p.lses[i], p.a.lse, Device.Stream.DEVICE_TO_HOST);
    }

    /**
     * The previous offload's copies are done before anything queued from now on runs on compute: compute waits for
     * them, and the tensors they read go back to the allocator (whose next user is queued after that wait).
     */
    private void settleOffload(Pass p) {
        if (p.offloaded != null) {
            device.waitFor(Device.Stream.COMPUTE, p.offloaded);
            p.offloaded = null;
        }
        p.offloading.forEach(Tensor::close);
        p.offloading.clear();
    }

    /**
     * Queues the copies that bring layer {@code i}'s offloaded checkpoint (input; attention output and lse where kept)
     * back to the device on the host-to-device stream, after the compute queued so far (whose freed blocks the new
     * tensors may reuse); the layer's backward waits for {@code p.broughtBack}. With the attention kept, it arrives in
     * tensors of its own, copied on the device into the layer's recomputed activations (a fraction of a millisecond).
     */
    private void bringBack(Pass p, int i, int t) {
        p.nextInput = device.allocateForOverwrite("layer " + i + " input", e, CHECKPOINTS, t, h);
        if (p.attentions[i] != null) {
            p.nextAtt = device.allocateForOverwrite("layer " + i + " attention output", e, ACTIVATIONS, t, q);
            p.nextLse = device.allocateForOverwrite("layer " + i + " attention lse", DType.FP32, ACTIVATIONS, heads, t);
        }
        device.waitFor(Stream.HOST_TO_DEVICE, device.record(Stream.COMPUTE));
        device.copyAsync(p.nextInput, p.inputs[i], Stream.HOST_TO_DEVICE);
        if (p.attentions[i] != null) {
            device.copyAsync(p.nextAtt, p.attentions[i], Stream.HOST_TO_DEVICE);
            device.copyAsync(p.nextLse, p.lses[i], Stream.HOST_TO_DEVICE);
        }
        p.broughtBack = device.record(Stream.HOST_TO_DEVICE);
    }

    /** The embedding of the batch's ids; {@code next} is the unit to start bringing over meanwhile. */
    private Tensor embed(Batch b, MemoryCategory category, int next) {
        Tensor x = device.allocate("embeddings", e, category, b.tokens(), h);
        try {
            acquire(ParameterUnits.embedding(), false, next, false);
            device.embeddingForward(x, b.ids(), w("model.embed_tokens.weight"), b.tokens(), h);
            release(ParameterUnits.embedding(), false);
            return x;
        } catch (Throwable failure) {
            x.close();
            throw failure;
        }
    }

    // x (T, h) -> returns the layer output (T, h); fills a with what backward needs
    private Tensor layerForward(int i, Tensor x, LayerActivations a, Batch b, MemoryCategory outCategory) {
        return layerForward(i, x, a, b, outCategory, () -> { });
    }

    // beforeOutput runs between the attention half and the output's allocation
    private Tensor layerForward(int i, Tensor x, LayerActivations a, Batch b, MemoryCategory outCategory, Runnable beforeOutput) {
        int t = b.tokens();
        attentionForward(i, x, a, b, false);
        beforeOutput.run();
        Tensor out = device.allocate("layer " + (i + 1) + " input", e, outCategory, t, h);
        try {
            if (tiled(t)) {
                mlpForwardTiled(i, out, a, t);
            } else {
                mlpWide(i, a, a.n2, t);
                try (Tensor down = zeros("down_proj out", ACTIVATIONS, t, h)) {
                    device.matmul(down, a.act, w(layer(i, "mlp.down_proj.weight")), t, h, f, false, true, 0f);
                    device.add(out, a.h1, down);
                }
            }
        } catch (Throwable failure) {
            out.close();
            throw failure;
        }
        return out;
    }

    /**
     * The forward again, from the layer's checkpoint, for what its backward reads: the attention half, and the MLP's
     * wide tensors unless the MLP is tiled (its backward recomputes them tile by tile). The layer's output is not
     * needed again, so down_proj is skipped.
     */
    private void recompute(int i, Tensor x, LayerActivations a, Batch b, boolean attentionKept) {
        attentionForward(i, x, a, b, attentionKept);
        if (!tiled(b.tokens())) {
            mlpWide(i, a, a.n2, b.tokens());
        }
    }

    // the attention half: n1, q, k, v, att, lse, h1 = x + o_proj(att), n2 = norm(h1); with attentionKept, att and lse
    // already hold this layer's values (brought back from the host) and attention itself is not run again
    private void attentionForward(int i, Tensor x, LayerActivations a, Batch b, boolean attentionKept) {
        int t = b.tokens();
        device.rmsNormForward(a.n1, a.rstd1, x, w(layer(i, "input_layernorm.weight")), t, h, (float) config.rmsNormEps());
        device.matmul(a.q, a.n1, w(layer(i, "self_attn.q_proj.weight")), t, q, h, false, true, 0f);
        device.matmul(a.k, a.n1, w(layer(i, "self_attn.k_proj.weight")), t, kv, h, false, true, 0f);
        device.matmul(a.v, a.n1, w(layer(i, "self_attn.v_proj.weight")), t, kv, h, false, true, 0f);
        device.ropeForward(a.q, a.k, b.positions(), invFreq, t, heads, kvHeads, headDim);
        if (!attentionKept) {
            device.attentionForward(a.att, a.lse, a.q, a.k, a.v, b.cuSeqlens(), t, heads, kvHeads, headDim);
        }
        try (Tensor o = zeros("o_proj out", ACTIVATIONS, t, h)) {
            device.matmul(o, a.att, w(layer(i, "self_attn.o_proj.weight")), t, h, q, false, true, 0f);
            device.add(a.h1, x, o);
        }
        device.rmsNormForward(a.n2, a.rstd2, a.h1, w(layer(i, "post_attention_layernorm.weight")), t, h,
                (float) config.rmsNormEps());
    }

    // gate, up and act = silu(gate)·up for the first `rows` rows of n2 (all tokens, or one tile)
    private void mlpWide(int i, LayerActivations a, Tensor n2, int rows) {
        device.matmul(a.gate, n2, w(layer(i, "mlp.gate_proj.weight")), rows, f, h, false, true, 0f);
        device.matmul(a.up, n2, w(layer(i, "mlp.up_proj.weight")), rows, f, h, false, true, 0f);
        device.swigluForward(a.act, a.gate, a.up, rows, f);
    }

    // out = h1 + down_proj(act), one tile of tokens at a time: the tile's rows of n2 are copied into a tile-sized
    // buffer (the ops take whole tensors), its wide tensors computed in the layer's tile-sized ones, and
    // down_proj's rows added into out
    private void mlpForwardTiled(int i, Tensor out, LayerActivations a, int t) {
        int tile = mlpRows(t);
        device.copy(out, a.h1);
        try (Tensor n2 = zeros("n2 tile", ACTIVATIONS, tile, h); Tensor down = zeros("down_proj tile", ACTIVATIONS, tile, h)) {
            for (int from = 0; from < t; from += tile) {
                int rows = Math.min(tile, t - from);
                device.copyRange(n2, 0, a.n2, (long) from * h, (long) rows * h);
                mlpWide(i, a, n2, rows);
                device.matmul(down, a.act, w(layer(i, "mlp.down_proj.weight")), rows, h, f, false, true, 0f);
                device.accumulateRange(out, (long) from * h, down, 0, (long) rows * h, Stream.COMPUTE);
            }
        }
    }

    // the MLP's backward one tile at a time: each tile's gate, up and act recomputed from n2, its wide gradients
    // formed and used, d(n2) written row by row; then dh1 = dout + the post-attention norm's backward over all rows
    private void mlpBackwardTiled(int i, Tensor dout, Tensor dh1, LayerActivations a, int t) {
        int tile = mlpRows(t);
        try (Tensor dn2 = zeros("d n2", ACTIVATIONS, t, h)) {
            try (Tensor n2 = zeros("n2 tile", ACTIVATIONS, tile, h); Tensor dy = zeros("d out tile", ACTIVATIONS, tile, h);
                 Tensor dgate = zeros("d gate", ACTIVATIONS, tile, f); Tensor dup = zeros("d up", ACTIVATIONS, tile, f)) {
                for (int from = 0; from < t; from += tile) {
                    int rows = Math.min(tile, t - from);
                    device.copyRange(n2, 0, a.n2, (long) from * h, (long) rows * h);
                    device.copyRange(dy, 0, dout, (long) from * h, (long) rows * h);
                    mlpWide(i, a, n2, rows);
                    try (Tensor dn2Tile = mlpBackwardRows(i, a, n2, dy, dgate, dup, rows, tile)) {
                        device.copyRange(dn2, (long) from * h, dn2Tile, 0, (long) rows * h);
                    }
                }
            }
            device.copy(dh1, dout); // the residual branch
            device.rmsNormBackward(dh1, g(layer(i, "post_attention_layernorm.weight")), dn2, a.h1,
                    w(layer(i, "post_attention_layernorm.weight")), a.rstd2, t, h);
        }
    }

    /**
     * The MLP's backward for the first {@code rows} rows (every token, or one tile): {@code dy} is the gradient of
     * its output and {@code n2} its input, {@code a}'s gate, up and act hold those rows' forward; the weights'
     * gradients are added, {@code dgate} and {@code dup} receive (are overwritten with) the wide gradients, and the returned
     * tensor ({@code capacity} × h, allocated once d(act) is freed) the gradient of n2.
     */
    private Tensor mlpBackwardRows(int i, LayerActivations a, Tensor n2, Tensor dy, Tensor dgate, Tensor dup, int rows,
                                   int capacity) {
        try (Tensor dact = zeros("d act", ACTIVATIONS, capacity, f)) {
            device.matmul(dact, dy, w(layer(i, "mlp.down_proj.weight")), rows, f, h, false, false, 0f);
            device.matmul(g(layer(i, "mlp.down_proj.weight")), dy, a.act, h, f, rows, true, false, 1f);
            device.swigluBackward(dgate, dup, dact, a.gate, a.up, rows, f, false); // written, not added
        }
        Tensor dn2 = zeros("d n2", ACTIVATIONS, capacity, h);
        try {
            device.matmul(dn2, dgate, w(layer(i, "mlp.gate_proj.weight")), rows, h, f, false, false, 0f);
            device.matmul(dn2, dup, w(layer(i, "mlp.up_proj.weight")), rows, h, f, false, false, 1f);
            device.matmul(g(layer(i, "mlp.gate_proj.weight")), dgate, n2, f, h, rows, true, false, 1f);
            device.matmul(g(layer(i, "mlp.up_proj.weight")), dup, n2, f, h, rows, true, false, 1f);
            return dn2;
        } catch (Throwable failure) {
            dn2.close();
            throw failure;
        }
    }

    // dout (T, h) is the gradient of the layer output; returns the gradient of its input x
    private Tensor layerBackward(int i, Tensor dout, Tensor x, LayerActivations a, Batch b) {
        int t = b.tokens();
        Tensor dh1 = zeros("d h1", ACTIVATIONS, t, h);
        try {
            if (tiled(t)) {
                mlpBackwardTiled(i, dout, dh1, a, t);
            } else {
                try (Tensor dgate = zeros("d gate", ACTIVATIONS, t, f); Tensor dup = zeros("d up", ACTIVATIONS, t, f);
                     Tensor dn2 = mlpBackwardRows(i, a, a.n2, dout, dgate, dup, t, t)) {
                    device.copy(dh1, dout); // the residual branch
                    device.rmsNormBackward(dh1, g(layer(i, "post_attention_layernorm.weight")), dn2, a.h1,
                            w(layer(i, "post_attention_layernorm.weight")), a.rstd2, t, h);
                }
            }
            try (Tensor dq = zeros("d q", ACTIVATIONS, t, q); Tensor dk = zeros("d k", ACTIVATIONS, t, kv);
                 Tensor dv = zeros("d v", ACTIVATIONS, t, kv)) {
                try (Tensor datt = zeros("d att", ACTIVATIONS, t, q)) {
                    device.matmul(datt, dh1, w(layer(i, "self_attn.o_proj.weight")), t, q, h, false, false, 0f);
                    device.matmul(g(layer(i, "self_attn.o_proj.weight")), dh1, a.att, h, q, t, true, false, 1f);
                    device.attentionBackward(dq, dk, dv, datt, a.q, a.k, a.v, a.att, a.lse, b.cuSeqlens(), t, heads,
                            kvHeads, headDim);
                }
                device.ropeBackward(dq, dk, b.positions(), invFreq, t, heads, kvHeads, headDim);
                try (Tensor dn1 = zeros("d n1", ACTIVATIONS, t, h)) {
                    device.matmul(dn1, dq, w(layer(i, "self_attn.q_proj.weight")), t, h, q, false, false, 0f);
                    device.matmul(dn1, dk, w(layer(i, "self_attn.k_proj.weight")), t, h, kv, false, false, 1f);
                    device.matmul(dn1, dv, w(layer(i, "self_attn.v_proj.weight")), t, h, kv, false, false, 1f);
                    device.matmul(g(layer(i, "self_attn.q_proj.weight")), dq, a.n1, q, h, t, true, false, 1f);
                    device.matmul(g(layer(i, "self_attn.k_proj.weight")), dk, a.n1, kv, h, t, true, false, 1f);
                    device.matmul(g(layer(i, "self_attn.v_proj.weight")), dv, a.n1, kv, h, t, true, false, 1f);
                    // dx = dh1 (residual) + the input norm's backward, accumulated in place
                    device.rmsNormBackward(dh1, g(layer(i, "input_layernorm.weight")), dn1, x,
                            w(layer(i, "input_layernorm.weight")), a.rstd1, t, h);
                }
            }
        } catch (Throwable failure) {
            dh1.close();
            throw failure;
        }
        return dh1;
    }

    @Override
    public void close() { store.close(); }
}
