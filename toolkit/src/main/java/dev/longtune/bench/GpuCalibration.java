package dev.longtune.bench;

import dev.longtune.config.Attention;
import dev.longtune.config.Checkpointing;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.LigerOp;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.NodeProfile;
import dev.longtune.config.Precision;
import dev.longtune.config.Stacks;
import dev.longtune.config.TechniqueSet;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.MemoryPlanner;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.Optimizer;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;

import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Measured against planned GPU memory, by category, for training steps of a 2-layer Llama-3.1-8B slice on the
 * GPU (the planner's longtune profile, one GPU, optimizer on the device, no ZeRO): the GPU counterpart of
 * PlannerCalibrationTest. Usage: {@code GpuCalibration [tokens...]}; prints one block per run.
 */
public final class GpuCalibration {
    private GpuCalibration() {}

    public static void main(String[] args) {
        int[] sizes = args.length == 0 ? new int[] {8192, 32768} : java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray();
        ModelConfig two = ModelCatalog.get("llama-3.1-8b").withLayers(2);
        NodeProfile node = NodeCatalog.get("1xH200");
        for (int t : sizes) {
            for (Checkpointing ck : new Checkpointing[] {Checkpointing.DEVICE, Checkpointing.OFFLOAD}) {
                try (CudaDevice dev = new CudaDevice()) {
                    try (LlamaModel m = new LlamaModel(two, dev, Precision.BF16, ck)) {
                        long seed = 1;
                        for (var w : m.weights().byName().entrySet()) {
                            dev.write(w.getValue(), w.getKey().endsWith("norm.weight") ? GpuBench.ones((int) w.getValue().numel())
                                    : GpuBench.noise((int) w.getValue().numel(), seed++, 0.02));
                        }
                        try (Trainer trainer = new Trainer(m, TrainingConfig.defaults(10), Precision.BF16, Optimizer.Placement.DEVICE)) {
                            int[] ids = new Random(3).ints(t, 0, two.vocabSize()).toArray();
                            trainer.step(List.of(Batch.ofDocument(ids)));
                            dev.memory().resetPeaks();
                            trainer.step(List.of(Batch.ofDocument(ids)));
                        }
                    }
                    TechniqueSet s = Stacks.baseline(node, EngineProfile.LONGTUNE).withPrecision(Precision.BF16)
                            .withZero(0, false, false).withCheckpointing(ck).withAttention(Attention.FLASH_ATTENTION_2)
                            .withLiger(EnumSet.allOf(LigerOp.class));
                    MemoryPlan plan = new MemoryPlanner(EngineProfile.LONGTUNE).plan(two, node, s, t);
                    long measured = dev.memory().peakTotal(), planned = plan.gpuPeakBytes();
                    System.out.printf(Locale.ROOT, "%s, %,d tokens, checkpointing %s: GPU peak measured %,d B, planned %,d B (%+.1f%%), "
                                    + "allocator reserved peak %,d B%n", two.name(), t, ck.id, measured, planned,
                            100.0 * (planned - measured) / measured, dev.allocator().peakReserved());
                    for (MemoryCategory c : MemoryCategory.values()) {
                        long mc = dev.memory().peak(c), pc = plan.gpu().get(plan.gpuPeakPhase()).bytes(c);
                        if (mc > 0 || pc > 0) {
                            System.out.printf(Locale.ROOT, "  %-12s measured peak %,16d   planned at %s %,16d%n", c.id, mc,
                                    plan.gpuPeakPhase(), pc);
                        }
                    }
                    System.out.printf(Locale.ROOT, "  host: checkpoints measured %,d planned %,d%n",
                            dev.hostMemory().peak(MemoryCategory.CHECKPOINTS), plan.hostAtPeak().bytes(MemoryCategory.CHECKPOINTS));
                }
            }
        }
    }
}
