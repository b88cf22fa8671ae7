package dev.longtune.train;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.dist.Communicator;
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
    private final ExecutorService threads;

    private DataParallel(ModelConfig config, Precision precision, Checkpointing checkpointing, TrainingConfig training,
                         List<Communicator> ranks, IntFunction<Device> deviceOfRank, long seed) {
        int n = ranks.size();
        this.threads = Executors.newFixedThreadPool(n, r -> {
            Thread t = new Thread(r, "longtune rank");
            t.setDaemon(true);
            return t;
        });
        Trainer[] byRank = new Trainer[n];
        Device[] deviceByRank = new Device[n];
        this.trainers = java.util.Arrays.asList(byRank);
        this.devices = java.util.Arrays.asList(deviceByRank);
        try {
            // each rank's device is made and used on that rank's thread
            onEveryRank(n, rank -> {
                deviceByRank[rank] = deviceOfRank.apply(rank);
                LlamaModel m = new LlamaModel(config, deviceByRank[rank], precision, checkpointing, ranks.get(rank));
                m.initialize(seed);
                byRank[rank] = new Trainer(m, training, precision);
                return null;
            });
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** {@code ranks} threads standing in for GPUs, each with its own CPU device, meeting through a {@link LocalCommunicator}. */
    public static DataParallel onCpu(ModelConfig config, Precision precision, Checkpointing checkpointing,
                                     TrainingConfig training, int ranks, long seed) {
        return new DataParallel(config, precision, checkpointing, training, LocalCommunicator.group(ranks),
                rank -> new dev.longtune.device.CpuDevice(), seed);
    }

    public int ranks() { return trainers.size(); }

    /** Rank r's trainer (its model holds rank r's shard). */
    public Trainer rank(int r) { return trainers.get(r); }

    /**
     * One optimizer step of every rank: {@code batches} holds ranks × micro-batches sequences, rank r taking the
     * r-th block of micro-batches in order (the same data as one rank taking them all as micro-batches).
     */
    public StepResult step(List<Batch> batches) {
        int n = ranks();
        if (batches.isEmpty() || batches.size() % n != 0) {
            throw new IllegalArgumentException(batches.size() + " sequences do not split evenly over " + n
                    + " ranks: give a multiple of " + n + " (ranks × micro-batches)");
        }
        int per = batches.size() / n;
        List<StepResult> results = onEveryRank(n, rank -> trainers.get(rank).step(batches.subList(rank * per, (rank + 1) * per)));
        return results.get(0);
    }

    /** The whole weights, assembled from every rank's shard (for checks and small models: every value is read). */
    public Map<String, float[]> weights() {
        Map<String, float[]> out = new LinkedHashMap<>();
        ModelConfig c = trainers.get(0).model().config();
        dev.longtune.model.ShardLayout layout = new dev.longtune.model.ShardLayout(c, ranks());
        for (ModelConfig.ParameterTensor p : c.parameterTensors()) {
            float[] whole = new float[Math.toIntExact(p.elements())];
            for (int r = 0; r < ranks(); r++) {
                dev.longtune.model.ShardLayout.Slice s = layout.sliceOf(p.name(), r);
                if (s != null) {
                    LlamaModel m = trainers.get(r).model();
                    float[] part = m.device().read(m.weights().get(p.name()));
                    System.arraycopy(part, 0, whole, (int) s.from(), part.length);
                }
            }
            out.put(p.name(), whole);
        }
        return out;
    }

    private interface RankWork<T> {
        T run(int rank) throws Exception;
    }

    /** Runs {@code work} on every rank's thread at once and returns the results in rank order; a failure is rethrown. */
    private <T> List<T> onEveryRank(int n, RankWork<T> work) {
        List<Future<T>> futures = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            int rank = r;
            futures.add(threads.submit(() -> work.run(rank)));
        }
        List<T> out = new ArrayList<>();
        RuntimeException failure = null;
        for (Future<T> f : futures) {
            try {
                out.add(f.get());
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (failure == null) {
                    failure = cause instanceof RuntimeException re ? re : new IllegalStateException(cause);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the ranks ran", e);
            }
        }
        if (failure != null) {
            throw failure;
        }
        return out;
    }

    @Override
    public void close() {
        for (Trainer t : trainers) {
            if (t != null) {
                t.close();
                t.model().close();
            }
        }
        for (Device d : devices) {
            if (d != null) {
                d.close();
            }
        }
        threads.shutdownNow();
    }
}
