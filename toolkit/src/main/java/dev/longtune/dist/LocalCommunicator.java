package dev.longtune.dist;

import dev.longtune.tensor.Tensor;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Ranks as threads of one process sharing CPU tensors: what CI tests data parallelism with, no GPU needed. Each
 * collective is two barriers: every rank posts its input, each computes its own output from all the inputs in rank
 * order (so results are bit-for-bit reproducible), and none posts the next input before all have read. A rank that
 * does not arrive within the timeout fails every rank with an error naming the collective; a rank that fails
 * elsewhere ({@link #abort}) stops its peers at once.
 */
public final class LocalCommunicator implements Communicator {
    /** What the ranks of one group share. */
    private static final class Group {
        final int size;
        int arrived;       // ranks at the barrier now (guarded by the group)
        long generation;   // barriers passed so far
        final Object[] posted;
        final Duration timeout;
        /** The first rank that failed and why (set by {@link #abort}); every collective after it fails too. */
        volatile Throwable failure;
        volatile int failedRank = -1;

        Group(int size, Duration timeout) {
            this.size = size;
            this.posted = new Object[size];
            this.timeout = timeout;
        }
    }

    private final Group group;
    private final int rank;

    private LocalCommunicator(Group group, int rank) {
        this.group = group;
        this.rank = rank;
    }

    /** {@code size} ranks, each to be used by its own thread; a peer missing for 10 minutes fails the collective. */
    public static List<Communicator> group(int size) { return group(size, Duration.ofMinutes(10)); }

    public static List<Communicator> group(int size, Duration timeout) {
        if (size < 1) {
            throw new IllegalArgumentException("a group needs at least one rank, asked for " + size);
        }
        Group g = new Group(size, timeout);
        List<Communicator> out = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            out.add(new LocalCommunicator(g, r));
        }
        return out;
    }

    @Override public int rank() { return rank; }

    @Override public int size() { return group.size; }

    @Override
    public void allGather(Tensor send, Tensor recv) {
        requireSizes("allGather", recv, send.numel() * group.size, send, recv);
        Tensor[] all = exchange("allGather", send, Tensor.class);
        int n = (int) send.numel();
        for (int r = 0; r < group.size; r++) {
            requireSizes("allGather", all[r], n, send, recv);
            System.arraycopy(all[r].floats(), 0, recv.floats(), r * n, n);
        }
        done("allGather");
    }

    @Override
    public void reduceScatter(Tensor send, Tensor recv) {
        requireSizes("reduceScatter", send, recv.numel() * group.size, send, recv);
        Tensor[] all = exchange("reduceScatter", send, Tensor.class);
        int n = (int) recv.numel();
        float[] out = recv.floats();
        java.util.Arrays.fill(out, 0f);
        for (int r = 0; r < group.size; r++) {
            requireSizes("reduceScatter", all[r], (long) n * group.size, send, recv);
            float[] in = all[r].floats();
            for (int i = 0; i < n; i++) {
                out[i] += in[rank * n + i];
            }
            recv.roundToDtype(); // each addition rounded to the dtype, as a sum in that dtype would be
        }
        done("reduceScatter");
    }

    @Override
    public double[] allReduceSum(double... values) {
        double[][] all = exchange("allReduceSum", values.clone(), double[].class);
        double[] out = new double[values.length];
        for (int r = 0; r < group.size; r++) {
            if (all[r].length != values.length) {
                throw new IllegalStateException("allReduceSum: rank " + r + " sent " + all[r].length + " values, rank "
                        + rank + " " + values.length + ": the ranks disagree on the collective");
            }
            for (int i = 0; i < out.length; i++) {
                out[i] += all[r][i];
            }
        }
        done("allReduceSum");
        return out;
    }

    private void requireSizes(String op, Tensor t, long expected, Tensor send, Tensor recv) {
        if (t.numel() != expected || t.onDevice()) {
            throw new IllegalArgumentException(op + " on rank " + rank + ": send " + send + " and recv " + recv
                    + " need CPU tensors of n and " + group.size + " × n elements (" + t + " has " + t.numel() + ")");
        }
        if (send.dtype() != recv.dtype()) {
            throw new IllegalArgumentException(op + ": send is " + send.dtype() + ", recv " + recv.dtype());
        }
    }

    /** Posts this rank's input and returns everyone's, once all have posted. */
    private <T> T[] exchange(String op, Object mine, Class<T> type) {
        group.posted[rank] = mine;
        await(op);
        @SuppressWarnings("unchecked")
        T[] all = (T[]) java.lang.reflect.Array.newInstance(type, group.size);
        for (int r = 0; r < group.size; r++) {
            all[r] = type.cast(group.posted[r]);
        }
        return all;
    }

    /** Holds every rank until all have read the inputs, so no input is replaced while another rank reads it. */
    private void done(String op) { await(op); }

    /**
     * A barrier over the group's ranks that also ends when a rank aborts (then every waiting rank throws a
     * {@link PeerFailedException}) or after the timeout (then the waiting ranks fail, and so do the late ones).
     */
    private void await(String op) {
        long deadline = System.nanoTime() + group.timeout.toNanos();
        synchronized (group) {
            requireNoFailure(op);
            long generation = group.generation;
            if (++group.arrived == group.size) {
                group.arrived = 0;
                group.generation++;
                group.notifyAll();
                return;
            }
            while (generation == group.generation) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    IllegalStateException e = new IllegalStateException(op + ": rank " + rank + " waited "
                            + group.timeout.toSeconds() + " s for the other ranks of " + group.size + "; one of them failed or stopped");
                    fail(e, -1); // not this rank's failure: one that did not arrive
                    throw e;
                }
                try {
                    group.wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    IllegalStateException stop = new IllegalStateException(op + ": rank " + rank + " was interrupted", e);
                    fail(stop, rank); // the peers fail too instead of waiting for the timeout
                    throw stop;
                }
                requireNoFailure(op);
            }
        }
    }

    private void requireNoFailure(String op) {
        Throwable f = group.failure;
        if (f != null) {
            throw new PeerFailedException(op, rank, group.failedRank, f);
        }
    }

    private void fail(Throwable cause, int failedRank) {
        synchronized (group) {
            if (group.failure == null) {
                group.failedRank = failedRank;
                group.failure = cause;
            }
            group.notifyAll();
        }
    }

    @Override
    public void abort(int failedRank, Throwable cause) { fail(cause, failedRank); }

    @Override
    public void close() { }
}
