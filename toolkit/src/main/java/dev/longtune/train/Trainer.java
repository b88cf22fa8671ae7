package dev.longtune.train;

import dev.longtune.config.Precision;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryTracker;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Runs optimizer steps on a {@link LlamaModel}: each step zeroes the gradients, runs forward and
 * backward on every micro-batch (gradients scaled by lossScale / micro-batches, so they average), then
 * lets the {@link Optimizer} unscale, check, clip and apply them.
 */
public final class Trainer implements AutoCloseable {
    private final LlamaModel model;
    private final TrainingConfig config;
    private final Optimizer optimizer;
    private final LossScaler scaler;
    private final boolean overlap;
    private final dev.longtune.dist.Communicator ranks; // ZeRO-3 data parallelism, or null
    private int step;

    public Trainer(LlamaModel model, TrainingConfig config, Precision precision) {
        this(model, config, precision, Optimizer.Placement.HOST);
    }

    /** With the optimizer state on the host (ZeRO-offload) or on the device (see {@link Optimizer.Placement}). */
    public Trainer(LlamaModel model, TrainingConfig config, Precision precision, Optimizer.Placement placement) {
        if (model.parameterPlacement() == dev.longtune.model.ParameterPlacement.HOST && placement == Optimizer.Placement.DEVICE) {
            throw new IllegalArgumentException("parameters offloaded to the host need the optimizer there too: "
                    + "use --optimizer host with offloaded parameters");
        }
        this.model = model;
        this.config = config;
        this.optimizer = new Optimizer(model.weights(), model.device(), model.config(), placement, model::isResident);
        this.scaler = precision == Precision.FP16 ? LossScaler.forFp16() : LossScaler.disabled();
        // offloaded parameters: the update runs in the background, overlapping the next step's forward
        this.overlap = model.parameterPlacement() == dev.longtune.model.ParameterPlacement.HOST
                && optimizer.canOverlap(model.weights());
        if (!overlap && (model.residentLayers() > 0 || model.residentEmbedding())) {
            optimizer.close();
            throw new IllegalStateException("resident layers or embedding are updated beside the host's background AdamW, "
                    + "which needs the native CPU kernels (kernels/cpu), and they did not load on this machine: drop "
                    + "--resident-layers and --resident-embedding");
        }
        this.ranks = model.communicator();
        if (ranks != null) {
            optimizer.sumOverRanks(x -> ranks.allReduceSum(x)[0]);
        }
    }

    /** Whether the optimizer's update overlaps the next step (offloaded parameters with the native host AdamW). */
    public boolean overlapsUpdate() { return overlap; }

    public LlamaModel model() { return model; }

    public TrainingConfig config() { return config; }

    public Optimizer optimizer() { return optimizer; }

    public LossScaler lossScaler() { return scaler; }

    /** Steps taken so far (applied or skipped). */
    public int step() { return step; }

    void restore(int savedStep, int optimizerStep, double scale, int goodSteps) {
        step = savedStep;
        optimizer.restoreStep(optimizerStep);
        scaler.restore(scale, goodSteps);
    }

    public StepResult step(List<Batch> microBatches) {
        if (microBatches.isEmpty()) {
            throw new IllegalArgumentException("a step needs at least one micro-batch");
        }
        MemoryTracker device = model.device().memory(), host = model.device().hostMemory();
        device.resetPeaks();
        host.resetPeaks();
        long start = System.nanoTime();
        int next = step + 1;
        model.zeroGrads();
        double lossScale = scaler.scale();
        int worldSize = ranks == null ? 1 : ranks.size();
        // the gradients average over every micro-batch of every rank: each rank's are summed over ranks
        float gradientScale = (float) (lossScale / ((long) microBatches.size() * worldSize));
        double loss = 0;
        long tokens = 0;
        float unscale = (float) (1.0 / lossScale);
        model.takeBusySeconds();
        model.takeCollectiveSeconds();
        model.takeCommunicationSeconds();
        try {
            for (int k = 0; k < microBatches.size(); k++) {
                if (overlap && k == microBatches.size() - 1) {
                    // the last micro-batch's gradients are final: their norms start as each unit's arrive
                    model.setGradientsListener((grads, copied) -> optimizer.gradientsArrived(grads, copied, unscale));
                }
                Batch b = microBatches.get(k);
                loss += model.forwardBackward(b, gradientScale); // summed, then divided once: as over ranks
                tokens += b.tokens();
            }
        } catch (Throwable failure) {
            // the model freed what the pass held and cleared its gradients; the optimizer forgets their norms, and
            // the step is not counted: an interrupted or failed step leaves the trainer as it was before it
            dev.longtune.model.FailedStep.cleanUp(failure, optimizer::abandonStep);
            throw failure;
        } finally {
            model.setGradientsListener(null);
        }
        step = next;
        if (ranks != null) {
            double[] sums = ranks.allReduceSum(loss, tokens);
            loss = sums[0];
            tokens = (long) sums[1];
        }
        loss /= (long) microBatches.size() * worldSize;
        double busy = model.takeBusySeconds(), collectives = model.takeCollectiveSeconds();
        double communication = model.takeCommunicationSeconds();
        Map<String, Double> idle = model.takeIdleSeconds();
        double updateWait = model.takeUpdateWaitSeconds();
        double hostUpdate = overlap ? optimizer.lastHostUpdateSeconds() : Double.NaN; // the previous step's, finished
        double lr = config.learningRateAt(step);
        long optimizerStart = System.nanoTime();
        Optimizer.Update update = overlap
                ? optimizer.applyOverlapped(model.grads(), lossScale, lr, config, model.parameterUnits(), model::weightsUpdating)
                : optimizer.apply(model.grads(), lossScale, lr, config, model.device());
        model.weightsChanged();
        double optimizerSeconds = (System.nanoTime() - optimizerStart) / 1e9;
        boolean applied = scaler.update(!update.applied()) && update.applied();
        double seconds = (System.nanoTime() - start) / 1e9;
        return new StepResult(step, loss, applied, update.gradNorm(), lr, lossScale, tokens, seconds, busy,
                peaks(device), peaks(host), collectives, updateWait, optimizerSeconds, idle, hostUpdate, communication);
    }

    private static Map<MemoryCategory, Long> peaks(MemoryTracker t) {
        Map<MemoryCategory, Long> m = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            m.put(c, t.peak(c));
        }
        return m;
    }

    @Override
    public void close() { optimizer.close(); }
}
