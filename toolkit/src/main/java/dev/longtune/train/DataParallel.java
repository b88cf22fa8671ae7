package dev.longtune.train;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.dist.Communicator;
import dev.longtune.dist.PeerFailedException;
import dev.longtune.dist.LocalCommunicator;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;

/**
 * ZeRO-3 data parallelism driven from one process: one thread per rank, each with its own device, its model's shard
 * of the weights and gradients and its optimizer over that shard (see {@link LlamaModel}'s sharded constructor). A
 * step hands each rank its own micro-batches and runs all ranks at once; what it returns (loss, norm, tokens) is
 * the same on every rank and is rank 0's. Each thread owns its device: a GPU's streams and handles, or a CPU device.
 *
 * <pre>{@code
 * try (DataParallel dp = DataParallel.onCpu(config, Precision.BF16, Checkpointing.DEVICE, training, 2, seed)) {
 *     StepResult r = dp.step(batches); // 2 ranks × micro-batches
 * }
 * }</pre>
 */
public final class DataParallel implements AutoCloseable {
    private final List<Trainer> trainers;
    private final List<Device> devices;
    private final List<Communicator> communicators;
    private final List<ExecutorService> threads = new ArrayList<>();

    /** What one rank runs on: its device and its end of the collectives; made on the rank's own thread. */
    public record Rank(Device device, Communicator communicator) {}

    /**
     * What every rank trains: the model, its precision and checkpointing, where the shards live (the device, or the
     * host with AdamW there too), the training settings, the initialisation seed, and where the starting weights
     * come from: a Hugging Face folder ({@code initFrom}, its config the job's), or random from the seed (null).
     * With the shards on the host, each rank's shards of the first {@code residentLayers} decoder layers (and of the
     * embedding, {@code residentEmbedding}) can stay on its device, updated there.
     */
    public record Job(ModelConfig config, Precision precision, Checkpointing checkpointing,
                      dev.longtune.model.ParameterPlacement shards, TrainingConfig training, long seed,
                      java.nio.file.Path initFrom, int residentLayers, boolean residentEmbedding) {
        public Job(ModelConfig config, Precision precision, Checkpointing checkpointing,
                   dev.longtune.model.ParameterPlacement shards, TrainingConfig training, long seed) {
            this(config, precision, checkpointing, shards, training, seed, null, 0, false);
        }

        public Job(ModelConfig config, Precision precision, Checkpointing checkpointing, TrainingConfig training, long seed) {
            this(config, precision, checkpointing, dev.longtune.model.ParameterPlacement.DEVICE, training, seed);
        }

        /** The same job starting from the weights in a Hugging Face folder (config.json + safetensors). */
        public Job withInitFrom(java.nio.file.Path folder) {
            return new Job(config, precision, checkpointing, shards, training, seed, folder, residentLayers, residentEmbedding);
        }

        /** The same job with each rank's shards of the first {@code layers} layers (and the embedding) on its device. */
        public Job withResident(int layers, boolean embedding) {
            return new Job(config, precision, checkpointing, shards, training, seed, initFrom, layers, embedding);
        }
    }

    private final int firstRank, worldSize;

    private final Job job;

    private DataParallel(Job job, int n, IntFunction<Rank> rankSetup) { this(job, n, 0, n, rankSetup, null); }

    /** {@code resumeFrom}: a folder {@link #save} (or one GPU's {@code train --save}) wrote, else null for a new run. */
    private DataParallel(Job job, int n, int firstRank, int worldSize, IntFunction<Rank> rankSetup, java.nio.file.Path resumeFrom) {
        this.job = job;
        this.firstRank = firstRank;
        this.worldSize = worldSize;
        if (n < 1) {
            throw new IllegalArgumentException("data parallelism needs at least one rank, asked for " + n);
        }
        for (int r = 0; r < n; r++) {
            int rank = r;
            // one thread per rank for the whole run: a GPU is current per thread, and a device's handles belong to it
            threads.add(Executors.newSingleThreadExecutor(work -> {
                Thread t = new Thread(work, "longtune rank " + rank);
                t.setDaemon(true);
                return t;
            }));
        }
        Trainer[] byRank = new Trainer[n];
        Device[] deviceByRank = new Device[n];
        Communicator[] commByRank = new Communicator[n];
        this.trainers = java.util.Arrays.asList(byRank);
        this.devices = java.util.Arrays.asList(deviceByRank);
        this.communicators = java.util.Arrays.asList(commByRank);
        try {
            onEveryRank(n, rank -> {
                Rank setup = rankSetup.apply(rank);
                deviceByRank[rank] = setup.device();
                commByRank[rank] = setup.communicator();
                LlamaModel m = new LlamaModel(job.config(), setup.device(), job.precision(), job.checkpointing(),
                        job.shards(), setup.communicator(), job.residentLayers(), job.residentEmbedding());
                try {
                    if (resumeFrom == null && job.initFrom() != null) {
                        TrainingCheckpoint.loadWeights(m, job.initFrom()); // each rank keeps its slices of every tensor
                    } else if (resumeFrom == null) {
                        m.initialize(job.seed()); // before the trainer, which takes its FP32 master copy from these weights
                    }
                    byRank[rank] = new Trainer(m, job.training(), job.precision());
                } catch (Exception | Error e) {
                    m.close(); // no trainer holds it, so close() below would not
                    throw e;
                }
                byRank[rank].optimizer().shareHostCores(n); // the ranks' host AdamWs run at once
                if (resumeFrom != null) {
                    TrainingCheckpoint.resumeRank(byRank[rank], resumeFrom,
                            new dev.longtune.model.ShardLayout(job.config(), worldSize), firstRank + rank);
                }
                return null;
            });
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** {@code ranks} threads standing in for GPUs, each with its own CPU device, meeting through a {@link LocalCommunicator}. */
    public static DataParallel onCpu(Job job, int ranks) {
        List<Communicator> group = LocalCommunicator.group(ranks);
        return new DataParallel(job, ranks, rank -> new Rank(new dev.longtune.device.CpuDevice(), group.get(rank)));
    }

    /**
     * One node of a run over several: its ranks firstRank … firstRank + node.size() − 1 of {@code worldSize}, CPU
     * devices meeting through {@code node}, this node's part of a {@link LocalCommunicator} group of worldSize (so
     * one process can stand in for several nodes; each node's calls must then come from their own threads). With
     * {@code resumeFrom}, continues that folder instead of starting from the job's weights.
     */
    public static DataParallel onCpuNode(Job job, List<Communicator> node, int firstRank, int worldSize,
                                         java.nio.file.Path resumeFrom) throws java.io.IOException {
        return new DataParallel(resumeFrom != null ? jobOf(resumeFrom) : job, node.size(), firstRank, worldSize,
                local -> new Rank(new dev.longtune.device.CpuDevice(), node.get(local)), resumeFrom);
    }

    public static DataParallel onCpu(ModelConfig config, Precision precision, Checkpointing checkpointing,
                                     TrainingConfig training, int ranks, long seed) {
        return onCpu(new Job(config, precision, checkpointing, training, seed), ranks);
    }

    /** The first {@code gpus} GPUs of this machine (CUDA indices 0 … gpus-1), one rank each, over NCCL. */
    public static DataParallel onGpus(Job job, int gpus, dev.longtune.cuda.CudaOptions options) {
        return onGpus(job, gpus, options, dev.longtune.cuda.NcclCommunicator.newId(), 0, gpus);
    }

    /**
     * This node's {@code gpus} GPUs as global ranks firstRank … firstRank+gpus-1 of {@code worldSize}, meeting the
     * other nodes' ranks through {@code id} (node 0 made it and handed it out: {@link dev.longtune.dist.Rendezvous}).
     */
    public static DataParallel onGpus(Job job, int gpus, dev.longtune.cuda.CudaOptions options,
                                      org.bytedeco.cuda.nccl.ncclUniqueId id, int firstRank, int worldSize) {
        return new DataParallel(job, gpus, firstRank, worldSize, local -> {
            dev.longtune.cuda.CudaDevice d = new dev.longtune.cuda.CudaDevice(options.withDevice(local));
            return new Rank(d, dev.longtune.cuda.NcclCommunicator.join(d, id, worldSize, firstRank + local));
        }, null);
    }

    /**
     * Continues a run saved by {@link #save} (or by one GPU's {@code train --save}) on {@code ranks} CPU ranks: the
     * count may differ from the saving run's, as each rank cuts its slices from the whole tensors.
     */
    public static DataParallel resumeOnCpu(java.nio.file.Path dir, int ranks) throws java.io.IOException {
        return resumeOnCpu(dir, ranks, jobOf(dir));
    }

    /**
     * As above, with each rank's shards of the first {@code residentLayers} layers (and of the embedding) kept on its
     * device, whatever the saved run kept (residency changes where state lives, not the results; a two-GPU run's
     * resident shards are sized for two GPUs, so a folder saved with --gpus carries none).
     */
    public static DataParallel resumeOnCpu(java.nio.file.Path dir, int ranks, int residentLayers, boolean residentEmbedding)
            throws java.io.IOException {
        return resumeOnCpu(dir, ranks, jobOf(dir).withResident(residentLayers, residentEmbedding));
    }

    private static DataParallel resumeOnCpu(java.nio.file.Path dir, int ranks, Job job) {
        List<Communicator> group = LocalCommunicator.group(ranks);
        return new DataParallel(job, ranks, 0, ranks, rank -> new Rank(new dev.longtune.device.CpuDevice(), group.get(rank)), dir);
    }

    /** As {@link #resumeOnCpu}, on this machine's first {@code gpus} GPUs over NCCL. */
    public static DataParallel resumeOnGpus(java.nio.file.Path dir, int gpus, dev.longtune.cuda.CudaOptions options)
            throws java.io.IOException {
        return resumeOnGpus(dir, gpus, options, dev.longtune.cuda.NcclCommunicator.newId(), 0, gpus);
    }

    /** As above, this node's GPUs as global ranks firstRank … of {@code worldSize} (every node resumes the folder). */
    public static DataParallel resumeOnGpus(java.nio.file.Path dir, int gpus, dev.longtune.cuda.CudaOptions options,
                                            org.bytedeco.cuda.nccl.ncclUniqueId id, int firstRank, int worldSize)
            throws java.io.IOException {
        return resumeOnGpus(dir, gpus, options, id, firstRank, worldSize, jobOf(dir));
    }

    /** As above, with the resident shards given (see {@link #resumeOnCpu(java.nio.file.Path, int, int, boolean)}). */
    public static DataParallel resumeOnGpus(java.nio.file.Path dir, int gpus, dev.longtune.cuda.CudaOptions options,
                                            org.bytedeco.cuda.nccl.ncclUniqueId id, int firstRank, int worldSize,
                                            int residentLayers, boolean residentEmbedding) throws java.io.IOException {
        return resumeOnGpus(dir, gpus, options, id, firstRank, worldSize, jobOf(dir).withResident(residentLayers, residentEmbedding));
    }

    private static DataParallel resumeOnGpus(java.nio.file.Path dir, int gpus, dev.longtune.cuda.CudaOptions options,
                                             org.bytedeco.cuda.nccl.ncclUniqueId id, int firstRank, int worldSize, Job job) {
        return new DataParallel(job, gpus, firstRank, worldSize, local -> {
            dev.longtune.cuda.CudaDevice d = new dev.longtune.cuda.CudaDevice(options.withDevice(local));
            return new Rank(d, dev.longtune.cuda.NcclCommunicator.join(d, id, worldSize, firstRank + local));
        }, dir);
    }

    private static Job jobOf(java.nio.file.Path dir) throws java.io.IOException {
        var state = TrainingCheckpoint.state(dir);
        return new Job(dev.longtune.io.HfCheckpoint.open(dir).config(), Precision.parse(state.path("precision").asText()),
                Checkpointing.parse(state.path("checkpointing").asText()),
                dev.longtune.model.ParameterPlacement.parse(state.path("parameter_placement").asText("device")),
                TrainingCheckpoint.trainingOf(state), 0).withResident(state.path("resident_layers").asInt(0),
                state.path("resident_embedding").asBoolean(false));
    }

    /** The training step every rank has reached. */
    public int step() { return trainers.get(0).step(); }

    /**
     * Saves the run as one GPU's {@code train --save} would: a Hugging Face folder with whole tensors, the optimizer
     * state and the trainer's counters, the same bytes. Each rank writes the slices it owns, on its own thread, at
     * their places in the files; no tensor is assembled whole.
     */
    public void save(java.nio.file.Path dir) throws java.io.IOException {
        requireNotFailed();
        dev.longtune.model.ShardLayout layout = new dev.longtune.model.ShardLayout(job.config(), worldSize);
        // several nodes: every node calls save at once, on a filesystem they share; node 0 creates and completes the files
        TrainingCheckpoint.Nodes nodes = worldSize == ranks() ? TrainingCheckpoint.Nodes.ONE : new TrainingCheckpoint.Nodes() {
            @Override public boolean creator() { return firstRank == 0; }

            @Override public double[] sum(double... values) { return sumOverNodes(values); }
        };
        TrainingCheckpoint.saveSharded(trainers.get(0), job.precision(), worldSize, (weights, optimizer) ->
                onEveryRank(ranks(), local -> {
                    int rank = firstRank + local;
                    Trainer t = trainers.get(local);
                    Map<String, dev.longtune.model.Parameters> states = Map.of("", t.model().weights(),
                            "master.", t.optimizer().master(), "exp_avg.", t.optimizer().exp_avg(),
                            "exp_avg_sq.", t.optimizer().exp_avg_sq());
                    for (ModelConfig.ParameterTensor p : job.config().parameterTensors()) {
                        dev.longtune.model.ShardLayout.Slice s = layout.sliceOf(p.name(), rank);
                        if (s == null) {
                            continue;
                        }
                        for (var state : states.entrySet()) {
                            dev.longtune.model.Parameters from = state.getValue();
                            float[] part = from.device().read(from.get(p.name()));
                            (state.getKey().isEmpty() ? weights : optimizer).writeFloats(state.getKey() + p.name(), s.from(), part);
                        }
                    }
                    return null;
                }), dir, nodes);
    }

    /** Whether {@code flag} holds on any node (every node gets the same answer): for decisions all nodes must share. */
    public boolean onAnyNode(boolean flag) {
        return worldSize == ranks() ? flag : sumOverNodes(flag ? 1 : 0)[0] > 0;
    }

    /** Whether this node's ranks include global rank 0 (it writes a run's log and moves shared files into place). */
    public boolean firstNode() { return firstRank == 0; }

    /**
     * {@code values} (this node's) summed over every node, through the ranks' communicators (a node's first rank
     * contributes them, its others zeros); also a barrier: it returns once every rank of every node has called it.
     */
    private double[] sumOverNodes(double... values) {
        double[] v = values.length == 0 ? new double[1] : values; // an empty collective might not wait for anyone
        double[] sums = onEveryRank(ranks(), local -> communicators.get(local).allReduceSum(local == 0 ? v.clone()
                : new double[v.length])).get(0);
        return values.length == 0 ? new double[0] : sums;
    }

    public static DataParallel onGpus(ModelConfig config, Precision precision, Checkpointing checkpointing,
                                      TrainingConfig training, int gpus, dev.longtune.cuda.CudaOptions options, long seed) {
        return onGpus(new Job(config, precision, checkpointing, training, seed), gpus, options);
    }

    public int ranks() { return trainers.size(); }

    /** Rank r's trainer (its model holds rank r's shard). */
    public Trainer rank(int r) { return trainers.get(r); }

    /**
     * One optimizer step of every rank: {@code batches} holds ranks × micro-batches sequences, rank r taking the
     * r-th block of micro-batches in order (the same data as one rank taking them all as micro-batches).
     */
    public StepResult step(List<Batch> batches) { return stepAll(batches).get(0); }

    /**
     * {@link #step}, with every local rank's result (the same loss, norm and tokens; each rank's own memory peaks).
     * On several nodes {@code batches} is the whole step's, for all ranks of all nodes (every node builds the same
     * list), and this node's ranks take their blocks.
     */
    public List<StepResult> stepAll(List<Batch> batches) {
        int world = worldSize;
        if (batches.isEmpty() || batches.size() % world != 0) {
            throw new IllegalArgumentException(batches.size() + " sequences do not split evenly over " + world
                    + " ranks: give a multiple of " + world + " (ranks × micro-batches)");
        }
        requireVocabulary(batches);
        int per = batches.size() / world;
        return onEveryRank(ranks(), local -> {
            int rank = firstRank + local;
            return trainers.get(local).step(batches.subList(rank * per, (rank + 1) * per));
        });
    }

    /**
     * The mean loss over {@code batches} (held-out data), forward only: rank r takes batches r, r + N, …; a rank with
     * fewer runs one of them again and drops its value, so that every rank gathers the same units in the same order.
     * The ranks' sums are added in rank order (deterministic; within round-off of one rank's mean).
     */
    public double meanLoss(List<Batch> batches) {
        if (batches.isEmpty()) {
            throw new IllegalArgumentException("no held-out sequences to evaluate");
        }
        requireVocabulary(batches);
        int world = worldSize, rounds = (batches.size() + world - 1) / world;
        List<Double> totals = onEveryRank(ranks(), local -> {
            int rank = firstRank + local;
            double sum = 0;
            for (int i = 0; i < rounds; i++) {
                int at = i * world + rank;
                double loss = trainers.get(local).model().loss(batches.get(at < batches.size() ? at : at % batches.size()));
                if (at < batches.size()) {
                    sum += loss;
                }
            }
            return communicators.get(local).allReduceSum(sum)[0]; // every node's ranks, in rank order
        });
        return totals.get(0) / batches.size();
    }

    /**
     * Greedy generation on the sharded model: every rank runs the same {@link dev.longtune.model.Generator} on its
     * own thread (each forward gathers the weights with its peers, on every node), so all ranks choose the same
     * tokens; returns them (this node's ranks checked equal).
     * Stops at the Llama 3 chat stop tokens or after {@code maxNewTokens}.
     */
    public int[] generate(int[] prompt, int maxNewTokens) {
        if (prompt.length > 0) {
            requireVocabulary(List.of(Batch.ofDocument(prompt)));
        }
        List<int[]> byRank = onEveryRank(ranks(), local ->
                dev.longtune.model.Generator.forChat(trainers.get(local).model()).generate(prompt, maxNewTokens).tokens());
        for (int r = 1; r < byRank.size(); r++) {
            if (!java.util.Arrays.equals(byRank.get(r), byRank.get(0))) {
                throw new IllegalStateException("ranks 0 and " + r + " generated different tokens from the same weights");
            }
        }
        return byRank.get(0);
    }

    /** All ranks of the run, on every node. */
    public int worldSize() { return worldSize; }

    /** The whole weights, assembled from every rank's shard (for checks and small models: every value is read). */
    public Map<String, float[]> weights() {
        if (worldSize != ranks()) {
            throw new IllegalStateException("the weights are spread over " + worldSize + " ranks on several nodes; this "
                    + "node holds " + ranks());
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        ModelConfig c = trainers.get(0).model().config();
        dev.longtune.model.ShardLayout layout = new dev.longtune.model.ShardLayout(c, ranks());
        for (ModelConfig.ParameterTensor p : c.parameterTensors()) {
            float[] whole = new float[Math.toIntExact(p.elements())];
            // each rank reads its shard on its own thread: its GPU is current there, its streams and events valid
            List<float[]> parts = onEveryRank(ranks(), r -> {
                if (layout.sliceOf(p.name(), r) == null) {
                    return null;
                }
                LlamaModel m = trainers.get(r).model();
                return m.device().read(m.weights().get(p.name()));
            });
            for (int r = 0; r < parts.size(); r++) {
                if (parts.get(r) != null) {
                    System.arraycopy(parts.get(r), 0, whole, (int) layout.sliceOf(p.name(), r).from(), parts.get(r).length);
                }
            }
            out.put(p.name(), whole);
        }
        return out;
    }

    interface RankWork<T> {
        T run(int rank) throws Exception;
    }

    /** Bad data fails the call here, before any rank starts, rather than one rank mid-way (which ends the run). */
    private void requireVocabulary(List<Batch> batches) {
        int vocab = job.config().vocabSize();
        for (Batch b : batches) {
            b.requireVocabulary(vocab);
        }
    }

    /** The failure that ended this run's ranks' meeting (their states may differ since), or null. */
    private volatile RuntimeException failed;

    private void requireNotFailed() {
        RuntimeException f = failed;
        if (f != null) {
            throw new IllegalStateException("an earlier call failed on a rank (" + f + "): the ranks' states may differ "
                    + "and they cannot meet again; close this run and start again from its last save", f);
        }
    }

    /**
     * Runs {@code work} on every rank's thread at once and returns the results in rank order. A rank that fails tells
     * its peers at once ({@link Communicator#abort}), so they stop at their next collective instead of waiting for
     * it; what is thrown is the first rank's own failure, with every other rank's attached as suppressed.
     */
    <T> List<T> onEveryRank(int n, RankWork<T> work) {
        requireNotFailed();
        AtomicReference<Throwable> first = new AtomicReference<>();
        List<Future<T>> futures = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            int rank = r;
            futures.add(threads.get(r).submit(() -> {
                try {
                    return work.run(rank);
                } catch (Exception | Error e) {
                    if (!(e instanceof PeerFailedException) && first.compareAndSet(null, e)) {
                        for (Communicator c : communicators) { // every rank of this process, whatever it waits on
                            if (c != null) {
                                c.abort(firstRank + rank, e);
                            }
                        }
                    }
                    throw e;
                }
            }));
        }
        List<T> out = new ArrayList<>();
        List<Throwable> failures = new ArrayList<>();
        for (Future<T> f : futures) {
            try {
                out.add(f.get());
            } catch (ExecutionException e) {
                failures.add(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the ranks ran", e);
            }
        }
        if (failures.isEmpty()) {
            return out;
        }
        Throwable root = first.get() != null ? first.get() : failures.get(0);
        RuntimeException thrown = root instanceof RuntimeException re ? re
                : root instanceof Error err ? new IllegalStateException(err.toString(), err) : new IllegalStateException(root);
        for (Throwable f : failures) {
            if (f != root) {
                thrown.addSuppressed(f);
            }
        }
        if (first.get() != null) {
            failed = thrown; // the group was aborted: no later call may run collectives, nor save mixed states
        }
        throw thrown;
    }

    @Override
    public void close() {
        // each rank's resources are closed on its own thread (its GPU current there)
        for (int r = 0; r < threads.size(); r++) {
            int rank = r;
            try {
                threads.get(r).submit(() -> {
                    Trainer t = trainers.get(rank);
                    if (t != null) {
                        t.close();
                        t.model().close();
                    }
                    if (communicators.get(rank) != null) {
                        communicators.get(rank).close();
                    }
                    if (devices.get(rank) != null) {
                        devices.get(rank).close();
                    }
                    return null;
                }).get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException e) {
                // closing goes on for the other ranks
            } finally {
                threads.get(r).shutdownNow();
            }
        }
    }
}
