package dev.longtune.dist;

import dev.longtune.tensor.Tensor;

/**
 * The collectives data parallelism needs, between the ranks of one training run (one rank per GPU, or per thread
 * standing in for one): ZeRO-3 gathers each layer's weight shards before the layer runs and reduce-scatters its
 * gradients after its backward; the loss and the gradient norm are all-reduced. Every rank calls every collective
 * in the same order with the same sizes. Sums run in rank order, so a run is reproducible bit for bit where the
 * implementation allows it ({@link LocalCommunicator}); NCCL sums within fp32 round-off.
 */
public interface Communicator extends AutoCloseable {
    /** This rank, 0 … size-1. */
    int rank();

    /** The number of ranks. */
    int size();

    /** recv (size × n elements) = every rank's send (n elements), in rank order; same dtype. */
    void allGather(Tensor send, Tensor recv);

    /**
     * recv (n elements) = the sum over ranks of their send's block {@code rank} (send is size × n), added in rank
     * order and rounded to the dtype after each addition.
     */
    void reduceScatter(Tensor send, Tensor recv);

    /** Each value summed over the ranks in rank order; every rank gets the sums (losses, norms, token counts). */
    double[] allReduceSum(double... values);

    /**
     * Tells this rank that {@code cause} stopped rank {@code failedRank} of its group: its pending and later collectives
     * end and throw a {@link PeerFailedException} instead of waiting for a rank that will not come. Safe from any
     * thread; called on every rank of the process that failed. The run cannot go on after it.
     */
    default void abort(int failedRank, Throwable cause) { }

    @Override
    void close();

    /** The one rank of a run without data parallelism: every collective is a copy. */
    static Communicator single() { return LocalCommunicator.group(1).get(0); }
}
