package dev.longtune.train;

import dev.longtune.device.Device;
import dev.longtune.config.ModelConfig;
import dev.longtune.model.Parameters;
import dev.longtune.ops.nativecpu.NativeAdamW;
import dev.longtune.tensor.DType;
import dev.longtune.tensor.MemoryLocation;
import dev.longtune.tensor.Tensor;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.function.BiConsumer;

import static dev.longtune.tensor.MemoryCategory.OPTIMIZER;
import static dev.longtune.tensor.MemoryCategory.WORKSPACE;

/**
 * AdamW over FP32 master weights and moments (12 bytes per parameter in mixed precision: master, m, v;
 * 8 in FP32, where the weights are the master). Gradients arrive in the compute precision, scaled by the
 * loss scale; they are unscaled into FP32, checked for inf/NaN, clipped by global norm, applied, and the
 * compute-precision weights are refreshed from the master.
 *
 * <p>On host state (CPU tensors) the native kernels do the work when they load ({@link NativeAdamW}: unscale and
 * sum of squares in one pass, AdamW with the clipping coefficient and the rounding into the compute-precision
 * weights fused in); they give the same bits as the Java ops they replace, so a run does not depend on whether
 * they loaded.
 *
 * <p>Where the state lives is a {@link Placement}: on the host (ZeRO-offload: a GPU keeps only the
 * compute-precision weights and gradients, and AdamW runs on the CPU) or on the device itself (the GPU's
 * AdamW kernel; 12 more bytes per parameter there). On the CPU device the two are the same memory.
 */
public final class Optimizer implements AutoCloseable {
    /** Where the master weights, moments and FP32 gradients live. */
    public enum Placement {
        HOST("host"), DEVICE("device");

        public final String id;

        Placement(String id) { this.id = id; }

        public static Placement parse(String s) {
            for (Placement p : values()) {
                if (p.id.equalsIgnoreCase(s)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("optimizer placement '" + s + "': use host (ZeRO-offload) or device");
        }
    }

    private final Parameters weights, master, m, v;
    private final Parameters.Allocator alloc;
    private final Placement placement;
    private final Device device;
    // parameters whose state stays on the device even with host placement (offloaded models' resident layers)
    private final java.util.function.Predicate<String> keptOnDevice;
    private final boolean separateMaster;
    private final ModelConfig config;
    private final BackgroundUpdate background = new BackgroundUpdate();
    private int step;
    private volatile double hostUpdateSeconds = Double.NaN;
    private java.util.function.DoubleUnaryOperator sumOverRanks = x -> x;

    public Optimizer(Parameters weights, Device device, ModelConfig config) {
        this(weights, device, config, Placement.HOST);
    }

    public Optimizer(Parameters weights, Device device, ModelConfig config, Placement placement) {
        this(weights, device, config, placement, name -> false);
    }

    /**
     * With host placement, except the parameters {@code keptOnDevice} names (the resident layers of offloaded
     * parameters: their weights and gradients are device tensors): their state is allocated on the device and the
     * device's AdamW updates them, in {@link #applyOverlapped}, with the same arithmetic as the host's.
     */
    public Optimizer(Parameters weights, Device device, ModelConfig config, Placement placement,
                     java.util.function.Predicate<String> keptOnDevice) {
        this.weights = weights;
        this.config = config;
        this.placement = placement;
        this.device = device;
        this.keptOnDevice = keptOnDevice;
        this.alloc = placement == Placement.HOST ? device::allocateCpuVisible : device::allocate;
        // FP32 weights are their own master only where the optimizer state lives with them
        this.separateMaster = weights.dtype() != DType.FP32 || !sameMemory(weights);
        Parameters.Allocator stateAlloc = placement == Placement.DEVICE ? alloc : (name, t, category, shape) ->
                keptOnDevice.test(name.substring(0, name.lastIndexOf('.')))  // name + ".master" etc.
                        ? device.allocate(name, t, category, shape) : device.allocateCpuVisible(name, t, category, shape);
        this.master = separateMaster ? Parameters.like(weights, stateAlloc, DType.FP32, OPTIMIZER, ".master") : weights;
        if (separateMaster) {
            master.copyFrom(weights);
        }
        // fresh tensors start at zero on every device (Java arrays; GPU blocks are cleared when allocated): no second
        // pass over 64 GB of moments for the 8B
        this.m = Parameters.like(weights, stateAlloc, DType.FP32, OPTIMIZER, ".exp_avg");
        this.v = Parameters.like(weights, stateAlloc, DType.FP32, OPTIMIZER, ".exp_avg_sq");
    }

    /** Whether the weights sit where this placement puts the optimizer state (so FP32 weights can be the master). */
    private boolean sameMemory(Parameters w) {
        boolean weightsOnGpu = w.all().iterator().next().onDevice();
        try (Tensor probe = alloc.allocate("placement probe", DType.FP32, WORKSPACE, 1)) {
            return probe.onDevice() == weightsOnGpu;
        }
    }

    /**
     * With ZeRO-3 each rank holds a shard of the gradients: its sum of squares is summed over the ranks (in rank
     * order) before the global norm, so clipping and the overflow check agree on every rank.
     */
    public void sumOverRanks(java.util.function.DoubleUnaryOperator allReduce) { this.sumOverRanks = allReduce; }

    public Placement placement() { return placement; }

    public Parameters master() {
        awaitUpdate();
        return master;
    }

    public Parameters exp_avg() {
        awaitUpdate();
        return m;
    }

    public Parameters exp_avg_sq() {
        awaitUpdate();
        return v;
    }

    /** Waits until an update started by {@link #applyOverlapped} has written every parameter. */
    public void awaitUpdate() { background.awaitAll(); }

    /**
     * Splits the host's cores between the host AdamWs of the {@code ranks} ranks in this process (one GPU each), so
     * that their updates, which run at once, do not oversubscribe the host; before the first step.
     */
    public void shareHostCores(int ranks) { background.shareCores(ranks); }

    public int step() { return step; }

    public void restoreStep(int s) { step = s; }

    /** What one {@link #apply} did. */
    public record Update(boolean applied, double gradNorm) {}

    /**
     * Unscales {@code grads} by 1/lossScale into FP32, and unless they hold inf/NaN, clips and applies AdamW
     * at {@code lr}. Returns whether it applied and the global gradient norm before clipping.
     */
    public Update apply(Parameters grads, double lossScale, double lr, TrainingConfig c, Device device) {
        if (m.all().iterator().next().onDevice()) {
            return applyOnDevice(grads, lossScale, lr, c, device);
        }
        // FP32 gradients exist only during the update, as the planner counts them (not through backward)
        try (Parameters unscaled = Parameters.like(weights, alloc, DType.FP32, WORKSPACE, ".grad32")) {
            boolean hostNative = NativeAdamW.isAvailable() && !m.all().iterator().next().onDevice();
            float inv = (float) (1.0 / lossScale);
            double sumSquares = 0;
            for (var e : grads.byName().entrySet()) {
                Tensor g32 = unscaled.get(e.getKey());
                device.copy(g32, e.getValue());
                if (hostNative) {
                    // one pass instead of scale + sum of squares; the same bits
                    sumSquares += NativeAdamW.unscaleAndSumSquares(g32.floats(), 0, g32.floats().length, inv).value();
                } else {
                    device.scale(g32, inv);
                    sumSquares += device.sumOfSquares(g32);
                }
            }
            double norm = Math.sqrt(sumOverRanks.applyAsDouble(sumSquares));
            if (!Double.isFinite(norm)) {
                return new Update(false, norm);
            }
            float clip = clipCoefficient(norm, c);
            if (clip != 1f && !hostNative) {
                for (Tensor g32 : unscaled.all()) {
                    device.scale(g32, clip);
                }
            }
            step++;
            if (hostNative) {
                stepNative(unscaled, clip, lr, c);
                return new Update(true, norm);
            }
            for (var e : master.byName().entrySet()) {
                device.adamw(e.getValue(), unscaled.get(e.getKey()), m.get(e.getKey()), v.get(e.getKey()), lr, c.beta1(),
                        c.beta2(), c.epsilon(), decays(e.getKey()) ? c.weightDecay() : 0.0, step);
            }
            if (separateMaster) {
                weights.copyFrom(master);
            }
            return new Update(true, norm);
        }
    }

    /**
     * {@link #apply} with the optimizer state in GPU memory, the same bits: each tensor's norm and update read its
     * 16-bit gradient where it is ({@link Device#sumOfSquares(Tensor, float)}, {@link Device#adamwScaled}), so
     * no FP32 copy of the gradients exists (the planner counts none) and the update moves half the bytes.
     */
    private Update applyOnDevice(Parameters grads, double lossScale, double lr, TrainingConfig c, Device device) {
        float inv = (float) (1.0 / lossScale);
        double sumSquares = 0;
        for (Tensor g : grads.byName().values()) {
            sumSquares += device.sumOfSquares(g, inv);
        }
        double norm = Math.sqrt(sumOverRanks.applyAsDouble(sumSquares));
        if (!Double.isFinite(norm)) {
            return new Update(false, norm);
        }
        float clip = clipCoefficient(norm, c);
        step++;
        for (var e : master.byName().entrySet()) {
            String name = e.getKey();
            device.adamwScaled(e.getValue(), grads.get(name), m.get(name), v.get(name), inv, clip,
                    separateMaster ? weights.get(name) : null, lr, c.beta1(), c.beta2(), c.epsilon(),
                    decays(name) ? c.weightDecay() : 0.0, step);
        }
        return new Update(true, norm);
    }

    /**
     * Whether {@link #applyOverlapped} can update these weights: host state with the native kernels, and weights
     * (with their gradients, stored alike) that it reads and writes where they are — CPU tensors, or 16-bit
     * tensors in pinned host memory (offloaded parameters on a GPU).
     */
    public boolean canOverlap(Parameters modelWeights) {
        // judged on a parameter the host updates (the resident ones kept on the device are the device's to update)
        String name = modelWeights.byName().keySet().stream().filter(keptOnDevice.negate()).findFirst().orElse(null);
        if (placement != Placement.HOST || !NativeAdamW.isAvailable() || name == null || m.get(name).onDevice()) {
            return false;
        }
        Tensor w = modelWeights.get(name);
        boolean sixteenBit = w.dtype() == DType.BF16 || w.dtype() == DType.FP16;
        return !w.onDevice() || (w.location() == MemoryLocation.HOST_PINNED && sixteenBit && separateMaster);
    }

    /**
     * A unit's final gradients for this step are on their way to the host ({@code copied} passes once they are
     * there): their sums of squares, unscaled by {@code unscale}, start in the background, so that the global
     * norm is ready soon after backward ends. Called from the model's gradients listener.
     */
    public void gradientsArrived(Map<String, Tensor> grads, Device.Event copied, float unscale) {
        background.sumSquares(grads, copied, unscale);
    }

    /** Forgets what {@link #gradientsArrived} started for a step that did not finish. */
    public void abandonStep() { background.discardSums(); }

    /**
     * {@link #apply} for offloaded parameters, with the same result bit for bit, without FP32 copies of the
     * gradients and off the critical path: the global norm from the sums started by {@link #gradientsArrived} (the
     * rest computed now), then, unless the gradients hold inf/NaN, AdamW unit by unit in {@code units}' order
     * (forward order) on a background thread. Each unit's future goes to {@code updating} (the parameter store,
     * which holds back copies of that unit until it completes), so the next step's forward starts at once and
     * waits, if at all, only for the unit it needs.
     */
    public Update applyOverlapped(Parameters grads, double lossScale, double lr, TrainingConfig c,
                                  List<List<String>> units, BiConsumer<Integer, Future<?>> updating) {
        awaitUpdate();
        float unscale = (float) (1.0 / lossScale);
        double sumSquares = 0;
        Map<String, NativeAdamW.SumOfSquares> sums = background.takeSums();
        for (var e : grads.byName().entrySet()) {
            if (keptOnDevice.test(e.getKey())) {
                sumSquares += deviceSumSquares(e.getKey(), e.getValue(), unscale);
                continue;
            }
            NativeAdamW.SumOfSquares s = sums.get(e.getKey());
            sumSquares += (s != null ? s : BackgroundUpdate.sumSquares(e.getValue(), unscale)).value();
        }
        double norm = Math.sqrt(sumOverRanks.applyAsDouble(sumSquares));
        if (!Double.isFinite(norm)) {
            return new Update(false, norm);
        }
        int t = ++step;
        float clipBy = clipCoefficient(norm, c);
        long submitted = System.nanoTime();
        Set<String> scheduled = new HashSet<>();
        for (int u = 0; u < units.size(); u++) {
            // tied weights once; a rank of data parallelism updates only the slices it holds
            List<String> names = units.get(u).stream().filter(grads.byName()::containsKey).filter(scheduled::add).toList();
            if (!names.isEmpty() && names.stream().allMatch(keptOnDevice)) {
                // queued on the device now, ahead of the next step's forward: nothing for the parameter store to wait for
                for (String name : names) {
                    deviceUpdate(name, grads.get(name), t, unscale, clipBy, lr, c);
                }
                continue;
            }
            updating.accept(u, background.submit(() -> {
                for (String name : names) {
                    updateInPlace(name, grads.get(name), t, unscale, clipBy, lr, c);
                }
            }));
        }
        // the background thread runs tasks in order: this one ends the update, and times it from its submission
        background.submit(() -> hostUpdateSeconds = (System.nanoTime() - submitted) / 1e9);
        return new Update(true, norm);
    }

    /**
     * Seconds the last finished background update took from its submission to its last unit (NaN before the first):
     * the host AdamW's length, which the next step's forward races.
     */
    public double lastHostUpdateSeconds() { return hostUpdateSeconds; }

    /** Σ (g·unscale)² of a gradient on the device (as {@link #apply} computes it). */
    private double deviceSumSquares(String name, Tensor g, float unscale) { return device.sumOfSquares(g, unscale); }

    /**
     * One parameter's AdamW step on the device, its state there too: unscaled and clipped, the step, the master
     * rounded into the compute-precision weights — {@link #apply}'s ops, in its order, in one pass.
     */
    private void deviceUpdate(String name, Tensor g, int t, float unscale, float clip, double lr, TrainingConfig c) {
        device.adamwScaled(master.get(name), g, m.get(name), v.get(name), unscale, clip,
                separateMaster ? weights.get(name) : null, lr, c.beta1(), c.beta2(), c.epsilon(),
                decays(name) ? c.weightDecay() : 0.0, t);
    }

    /** One parameter's AdamW step reading its gradient where it is, writing its weights where they are. */
    private void updateInPlace(String name, Tensor g, int t, float unscale, float clip, double lr, TrainingConfig c) {
        var h = new NativeAdamW.Hyperparameters(lr, c.beta1(), c.beta2(), c.epsilon(), decays(name) ? c.weightDecay() : 0.0);
        Tensor w = weights.get(name);
        float[] p = master.get(name).floats(), mm = m.get(name).floats(), vv = v.get(name).floats();
        if (g.location() == MemoryLocation.HOST_PINNED) {
            NativeAdamW.stepScaled(h, t, unscale, clip, p, g.address(), g.dtype(), mm, vv, w.address(), w.dtype());
        } else {
            NativeAdamW.stepScaled(h, t, unscale, clip, p, g.floats(), mm, vv, separateMaster ? w.floats() : null, w.dtype());
        }
    }

    /**
     * The factor every gradient is scaled by: as GradientClipping.clipByGlobalNorm (PyTorch's clip_grad_norm_),
     * max norm / (norm + 1e-6) when that is below 1, else 1 (and 1 when clipping is off).
     */
    private static float clipCoefficient(double norm, TrainingConfig c) {
        if (c.maxGradNorm() > 0) {
            double coefficient = c.maxGradNorm() / (norm + 1e-6);
            if (coefficient < 1.0) {
                return (float) coefficient;
            }
        }
        return 1f;
    }

    /** Norm weights and biases are exempt from weight decay. */
    private static boolean decays(String name) {
        return !(name.endsWith("norm.weight") || name.endsWith(".bias"));
    }

    /**
     * The native AdamW (kernels/cpu/adamw.h, bit for bit with ops/AdamW) on host state: the clipping coefficient
     * applied as the gradients are read, and, where the compute-precision weights are CPU tensors, the new
     * weights rounded into them in the same pass instead of a second copy.
     */
    private void stepNative(Parameters unscaled, float clip, double lr, TrainingConfig c) {
        boolean sixteenBit = weights.dtype() == DType.BF16 || weights.dtype() == DType.FP16;
        Tensor first = weights.all().iterator().next();
        boolean fuseCopy = separateMaster && !first.onDevice() && sixteenBit;
        // offloaded parameters: the new 16-bit weights go straight into their pinned buffers, which the next
        // forward copies to the GPU
        boolean intoPinned = separateMaster && sixteenBit && first.location() == MemoryLocation.HOST_PINNED;
        for (var e : master.byName().entrySet()) {
            String name = e.getKey();
            var h = new NativeAdamW.Hyperparameters(lr, c.beta1(), c.beta2(), c.epsilon(), decays(name) ? c.weightDecay() : 0.0);
            float[] p = e.getValue().floats();
            if (intoPinned) {
                NativeAdamW.stepInto(h, step, clip, p, unscaled.get(name).floats(), m.get(name).floats(),
                        v.get(name).floats(), weights.get(name).address(), weights.dtype());
            } else if (fuseCopy) {
                NativeAdamW.stepRounded(h, step, clip, p, unscaled.get(name).floats(), m.get(name).floats(),
                        v.get(name).floats(), 0, p.length, weights.get(name).floats(), weights.dtype());
            } else {
                NativeAdamW.step(h, step, clip, p, unscaled.get(name).floats(), m.get(name).floats(), v.get(name).floats(),
                        0, p.length);
            }
        }
        if (separateMaster && !fuseCopy && !intoPinned) {
            weights.copyFrom(master);
        }
    }

    @Override
    public void close() {
        background.close();
        if (separateMaster) {
            master.close();
        }
        m.close();
        v.close();
    }
}
