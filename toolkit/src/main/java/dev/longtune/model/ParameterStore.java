package dev.longtune.model;

import dev.longtune.device.Device;
import dev.longtune.tensor.Tensor;

import java.util.Map;
import java.util.concurrent.Future;

/**
 * Where the model's parameters live between uses, and how a unit's weights and gradients reach the device
 * around its forward, recompute and backward (docs/architecture.md, "Parameter stores"). A unit is the
 * embedding (0), one decoder layer (1…L) or the head (L+1: final norm and LM head); see {@link ParameterUnits}.
 *
 * <p>The model brackets every use of a unit with {@link #acquire} and {@link #release}; between them
 * {@link #weight} and {@link #grad} give the device tensors to compute with. {@link #weights()} and
 * {@link #grads()} are the authoritative copies the optimizer, checkpoints and inspection read: the device's
 * own tensors when parameters stay resident, host tensors when they are offloaded.
 */
public interface ParameterStore extends AutoCloseable {
    /** The authoritative weights (compute precision). */
    Parameters weights();

    /**
     * The authoritative gradients, as accumulated over the micro-batches since {@link #zeroGrads}; complete
     * once {@link #finishBackward} has returned.
     */
    Parameters grads();

    /** Gradients = 0 (start of a step). */
    void zeroGrads();

    /** Sets one parameter's weights from its whole values (row-major); a sharded store keeps its own slice. */
    void load(String name, float[] values);

    /** The elements [from, to) of a parameter of {@code numel} that {@link #load} keeps: all of them, or a rank's slice. */
    default long[] keeps(String name, long numel) { return new long[] {0, numel}; }

    /**
     * Makes {@code unit}'s weights (and, with {@code withGrads}, its accumulated gradients) usable by compute
     * queued from now on, and starts bringing {@code next} (−1: none) over while this unit computes.
     */
    void acquire(int unit, boolean withGrads, int next, boolean nextWithGrads);

    /** The device tensor of an acquired unit's weight. */
    Tensor weight(String name);

    /** The device tensor of an acquired unit's gradient (acquired with gradients). */
    Tensor grad(String name);

    /**
     * Compute queued so far is the unit's last use for now; with {@code gradientsDone} its gradients are
     * complete for this micro-batch and go back to {@link #grads()}.
     */
    void release(int unit, boolean gradientsDone);

    /** Waits until every gradient released so far has reached {@link #grads()}. */
    void finishBackward();

    /**
     * Seconds the compute stream waited for collectives since the last call: the part of them not overlapped
     * (data parallelism; 0 for a store of its own).
     */
    default double takeCollectiveSeconds() { return 0; }

    /**
     * Seconds the communication stream spent in collectives (gathers and reduce-scatters with their packing copies)
     * since the last call, overlapped or not (data parallelism; 0 for a store of its own).
     */
    default double takeCommunicationSeconds() { return 0; }

    /**
     * Seconds the calling thread waited, since the last call, for the host optimizer's background update of weights
     * it was about to read (offloaded parameters; 0 where the update is never in the background).
     */
    default double takeUpdateWaitSeconds() { return 0; }

    /**
     * Forgets a forward/backward that threw halfway (called with the device idle): every unit counts as released,
     * no copy is pending, and the step's gradients count as zero again.
     */
    void abandonPass();

    /** Told when a unit's gradients, complete for the micro-batch, are queued back to {@link #grads()}. */
    interface GradientsListener {
        /** {@code grads} by name (the authoritative tensors); {@code copied} passes once they hold the values. */
        void arrived(Map<String, Tensor> grads, Device.Event copied);
    }

    /** Where to report gradients as they reach {@link #grads()} (null: nowhere); stores that never copy them do not call it. */
    void setGradientsListener(GradientsListener listener);

    /**
     * The optimizer is writing {@code unit}'s weights in {@link #weights()} in the background: nothing reads them
     * (a copy to the device, {@link #weights()} itself) before {@code done} completes.
     */
    void weightsUpdating(int unit, Future<?> done);

    /** {@link #weights()} were written (optimizer step, load): copies of them elsewhere are stale. */
    void weightsChanged();

    @Override
    void close();
}
