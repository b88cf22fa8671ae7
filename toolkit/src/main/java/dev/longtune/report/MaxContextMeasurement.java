package dev.longtune.report;

import dev.longtune.cuda.CudaDevice;
import dev.longtune.device.Device;
import dev.longtune.model.Batch;
import dev.longtune.tensor.OutOfMemoryException;
import dev.longtune.train.Trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/**
 * The longest context that trains, measured: real training steps on one model, set up once, bisected between a
 * context that trains and one that does not. A step that runs out of device memory gives back everything it held
 * (model/FailedStep) and is not counted; the allocator's cache is emptied after it, so the next trial starts as a
 * fresh process would. Memory never shrinks as the context grows, so the bisection finds the boundary to within
 * the resolution.
 */
public final class MaxContextMeasurement {
    /** One training step at {@code context} tokens: trained, or out of memory (with the error's first line). */
    public record Trial(long context, boolean trained, long devicePeakBytes, long reservedPeakBytes, double seconds,
                        String failure) {}

    /**
     * The longest context that trained and the shortest that did not (0 when none was tried); what stopped the
     * search: device memory, or the search's upper bound (every context up to it trained).
     */
    public record Result(long measured, long failedAt, List<Trial> trials, String stoppedBy) {}

    private final Trainer trainer;
    private final long seed;
    private java.util.function.LongConsumer onTrialStart = context -> {};

    public MaxContextMeasurement(Trainer trainer, long seed) {
        this.trainer = trainer;
        this.seed = seed;
    }

    /** {@code listener} hears each trial's context before it runs (an out-of-memory message can then quote it). */
    public MaxContextMeasurement onTrialStart(java.util.function.LongConsumer listener) {
        this.onTrialStart = java.util.Objects.requireNonNull(listener, "listener");
        return this;
    }

    /**
     * Bisects [{@code from}, {@code to}] to within {@code resolution} tokens (trials land on multiples of it);
     * {@code progress} sees each trial as it ends.
     */
    public Result search(long from, long to, long resolution, Consumer<Trial> progress) {
        if (from <= 0 || to < from || resolution <= 0) {
            throw new IllegalArgumentException("the search needs 0 < from <= to and a positive resolution; got from "
                    + from + ", to " + to + ", resolution " + resolution);
        }
        List<Trial> trials = new ArrayList<>();
        Trial low = trial(from, trials, progress);
        if (!low.trained()) {
            return new Result(0, from, trials, "device memory: the shortest context tried (" + from + ") did not train");
        }
        Trial high = trial(to, trials, progress);
        if (high.trained()) {
            return new Result(to, 0, trials, "the search's upper bound: every context up to " + to + " trained");
        }
        long lo = from, hi = to;
        while (hi - lo > resolution) {
            long mid = (lo + hi) / 2 / resolution * resolution;
            if (mid <= lo) {
                mid = lo + resolution;
            }
            if (mid >= hi) {
                break;
            }
            if (trial(mid, trials, progress).trained()) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return new Result(lo, hi, trials, "device memory");
    }

    private Trial trial(long context, List<Trial> trials, Consumer<Trial> progress) {
        Device device = trainer.model().device();
        int tokens = Math.toIntExact(context);
        onTrialStart.accept(context);
        Batch batch = Batch.ofDocument(new Random(seed + context).ints(tokens, 0, trainer.model().config().vocabSize()).toArray());
        device.memory().resetPeaks();
        if (device instanceof CudaDevice gpu) {
            gpu.allocator().resetPeakReserved();
        }
        long started = System.nanoTime();
        Trial t;
        try {
            trainer.step(List.of(batch));
            t = new Trial(context, true, device.memory().peakTotal(), reserved(device), seconds(started), null);
        } catch (OutOfMemoryException e) {
            String first = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
            t = new Trial(context, false, device.memory().peakTotal(), reserved(device), seconds(started), first);
            if (device instanceof CudaDevice gpu) {
                gpu.synchronize();
                gpu.allocator().releaseCached(); // what the failed step cached is not there in a fresh process
            }
        }
        if (device instanceof CudaDevice gpu) {
            gpu.releaseCachedPinned(); // each context pins its own checkpoint buffers: the next would add to them
        }
        trials.add(t);
        progress.accept(t);
        return t;
    }

    private static long reserved(Device device) {
        return device instanceof CudaDevice gpu ? gpu.allocator().peakReserved() : device.memory().peakTotal();
    }

    private static double seconds(long started) { return (System.nanoTime() - started) / 1e9; }
}
