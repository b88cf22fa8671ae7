package dev.longtune.model;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** The time a reader of weights waits for the host optimizer: counted only for updates that had not finished. */
class PendingUpdatesTest {
    @Test
    void waitsAreTimedOnlyForUnfinishedUpdates() throws Exception {
        PendingUpdates u = new PendingUpdates();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            u.put(0, CompletableFuture.completedFuture(null));
            u.await(0);
            assertThat(u.takeWaitSeconds()).as("a finished update costs nothing").isZero();

            CountDownLatch started = new CountDownLatch(1);
            u.put(1, pool.submit(() -> {
                started.countDown();
                TimeUnit.MILLISECONDS.sleep(200);
                return null;
            }));
            started.await();
            long t0 = System.nanoTime();
            u.await(1);
            double elapsed = (System.nanoTime() - t0) / 1e9;
            double waited = u.takeWaitSeconds();
            assertThat(waited).isGreaterThan(0.1).isLessThanOrEqualTo(elapsed + 1e-3);
            assertThat(u.takeWaitSeconds()).as("taken: the next call starts from zero").isZero();

            // two pending units on one thread run one after the other: awaitAll waits for both
            for (int unit = 2; unit < 4; unit++) {
                u.put(unit, pool.submit(() -> {
                    TimeUnit.MILLISECONDS.sleep(100);
                    return null;
                }));
            }
            u.awaitAll();
            assertThat(u.takeWaitSeconds()).isGreaterThan(0.15);
            assertThat(u.ready(2)).isTrue();
        } finally {
            pool.shutdownNow();
        }
    }
}
