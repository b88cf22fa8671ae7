package dev.longtune.train;

import dev.longtune.device.Device;
import dev.longtune.ops.nativecpu.NativeAdamW;
import dev.longtune.ops.nativecpu.NativeCpuKernels;
import dev.longtune.tensor.MemoryLocation;
import dev.longtune.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The host optimizer's background thread (offloaded parameters): gradient sums of squares as each unit's gradients
 * reach the host, and the AdamW update unit by unit, in submission order. One thread, so tasks never overlap each
 * other; each native call spreads over OpenMP threads, one fewer than the cores, leaving one to the thread that
 * queues the GPU's work. Ranks that share a process share its cores ({@link #shareCores}): two OpenMP teams of all
 * the cores each, running at once, oversubscribe the host and starve the threads that feed the GPUs.
 */
final class BackgroundUpdate implements AutoCloseable {
    private ExecutorService thread;
    private volatile int ranksSharingCores = 1;
    private final Map<String, Future<NativeAdamW.SumOfSquares>> sums = new HashMap<>();
    private final List<Future<?>> submitted = new ArrayList<>();

    private ExecutorService thread() {
        if (thread == null) {
            thread = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(() -> {
                    NativeCpuKernels.setThreads(threadsPerRank(NativeCpuKernels.maxThreads(), ranksSharingCores));
                    r.run();
                }, "longtune-host-optimizer");
                t.setDaemon(true);
                return t;
            });
        }
        return thread;
    }

    /**
     * OpenMP threads for one rank's optimizer when {@code ranks} ranks share {@code cores}: each rank's thread that
     * queues GPU work keeps a core, the rest are split evenly (at least one each).
     */
    static int threadsPerRank(int cores, int ranks) {
        return Math.max(1, (cores - ranks) / ranks);
    }

    /** Splits the host's cores with the other ranks of this process; call before the first task. */
    void shareCores(int ranks) {
        if (ranks < 1) {
            throw new IllegalArgumentException("ranks sharing the host's cores: " + ranks + " (at least 1)");
        }
        if (thread != null) {
            throw new IllegalStateException("shareCores after the optimizer's thread started");
        }
        ranksSharingCores = ranks;
    }

    /** Queues work; {@link #awaitAll} waits for it. */
    Future<?> submit(Runnable work) {
        Future<?> f = thread().submit(work);
        submitted.add(f);
        return f;
    }

    /** Starts Σ (g·unscale)² of each gradient once {@code copied} has passed; a later arrival of a name replaces an earlier one. */
    void sumSquares(Map<String, Tensor> grads, Device.Event copied, float unscale) {
        Map<String, Tensor> mine = new LinkedHashMap<>(grads);
        Future<Map<String, NativeAdamW.SumOfSquares>> all = thread().submit(() -> {
            copied.synchronize();
            Map<String, NativeAdamW.SumOfSquares> out = new HashMap<>();
            mine.forEach((name, g) -> out.put(name, sumSquares(g, unscale)));
            return out;
        });
        submitted.add(all);
        for (String name : mine.keySet()) {
            sums.put(name, new Future<>() {
                public boolean cancel(boolean b) { return all.cancel(b); }
                public boolean isCancelled() { return all.isCancelled(); }
                public boolean isDone() { return all.isDone(); }
                public NativeAdamW.SumOfSquares get() throws InterruptedException, ExecutionException {
                    return all.get().get(name);
                }
                public NativeAdamW.SumOfSquares get(long t, java.util.concurrent.TimeUnit u) {
                    throw new UnsupportedOperationException();
                }
            });
        }
    }

    /** The sums started since the last call, by name, once they are done. */
    Map<String, NativeAdamW.SumOfSquares> takeSums() {
        Map<String, NativeAdamW.SumOfSquares> out = new HashMap<>();
        try {
            for (var e : sums.entrySet()) {
                out.put(e.getKey(), join(e.getValue()));
            }
        } finally {
            sums.clear();
        }
        return out;
    }

    /** Σ (g·unscale)² of a gradient where it is: floats of a CPU tensor, or 16-bit bits in pinned host memory. */
    static NativeAdamW.SumOfSquares sumSquares(Tensor g, float unscale) {
        return g.location() == MemoryLocation.HOST_PINNED
                ? NativeAdamW.sumSquaresScaled(g.address(), g.dtype(), g.numel(), unscale)
                : NativeAdamW.sumSquaresScaled(g.floats(), unscale);
    }

    /** Forgets the sums of squares started for a step that was abandoned (after they finish: they read its gradients). */
    void discardSums() {
        awaitAll();
        sums.clear();
    }

    /** Waits for everything submitted so far; the first failure is thrown (after all have finished). */
    void awaitAll() {
        RuntimeException failure = null;
        for (Future<?> f : submitted) {
            try {
                join(f);
            } catch (RuntimeException e) {
                failure = failure == null ? e : failure;
            }
        }
        submitted.clear();
        if (failure != null) {
            throw failure;
        }
    }

    private static <T> T join(Future<T> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the host optimizer", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("the host optimizer's background work failed", e.getCause());
        }
    }

    @Override
    public void close() {
        try {
            awaitAll();
        } finally {
            if (thread != null) {
                thread.shutdown();
            }
        }
    }
}
