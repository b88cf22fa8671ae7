package dev.longtune.model;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/**
 * The units whose weights an optimizer is still writing in the background ({@link ParameterStore#weightsUpdating}),
 * each with the future that completes when its update has: a reader of a unit's weights joins it first. A failed
 * update surfaces as the exception of the first reader. It keeps the time its callers spent waiting for updates
 * that had not finished: what the host optimizer cost the thread that queues the GPU's work.
 */
final class PendingUpdates {
    private final Map<Integer, Future<?>> byUnit = new HashMap<>();
    private long waitedNanos;

    void put(int unit, Future<?> done) { byUnit.put(unit, done); }

    /** Whether reading the unit's weights would not wait. */
    boolean ready(int unit) {
        Future<?> f = byUnit.get(unit);
        return f == null || f.isDone();
    }

    /** Waits for the unit's update, if one is pending. */
    void await(int unit) {
        Future<?> f = byUnit.remove(unit);
        if (f != null) {
            timedJoin(f);
        }
    }

    /** Waits for every pending update. */
    void awaitAll() {
        Collection<Future<?>> all = byUnit.values();
        try {
            all.forEach(this::timedJoin);
        } finally {
            byUnit.clear();
        }
    }

    /** Seconds spent waiting for unfinished updates since the last call. */
    double takeWaitSeconds() {
        double s = waitedNanos / 1e9;
        waitedNanos = 0;
        return s;
    }

    private void timedJoin(Future<?> f) {
        if (f.isDone()) {
            join(f);
            return;
        }
        long start = System.nanoTime();
        try {
            join(f);
        } finally {
            waitedNanos += System.nanoTime() - start;
        }
    }

    /** Waits for every pending update, ignoring failures (closing: the buffers they write are about to go). */
    void drain() {
        for (Future<?> f : byUnit.values()) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | CancellationException ignored) {
                // reported to whoever reads the weights next; nobody will
            }
        }
        byUnit.clear();
    }

    static void join(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the optimizer's update", e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException("the optimizer's background update failed", cause);
        }
    }
}
