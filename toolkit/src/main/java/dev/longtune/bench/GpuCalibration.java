package dev.longtune.bench;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Precision;
import dev.longtune.cuda.CudaDevice;
import dev.longtune.report.MeasuredSweep;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.Optimizer;

import java.util.Arrays;
import java.util.Locale;

/**
 * Measured against planned GPU memory, by category, for training steps of a 2-layer Llama-3.1-8B slice on the
 * GPU (the planner's longtune profile, one GPU, optimizer on the device), with checkpoints on the device and
 * offloaded: the GPU counterpart of PlannerCalibrationTest, printed as text (the study's measured sweep writes
 * the same rows as CSV and a chart). Usage: {@code GpuCalibration [tokens...]}.
 */
public final class GpuCalibration {
    private GpuCalibration() {}

    public static void main(String[] args) {
        long[] sizes = args.length == 0 ? new long[] {8192, 32768} : Arrays.stream(args).mapToLong(Long::parseLong).toArray();
        ModelConfig two = ModelCatalog.get("llama-3.1-8b").withLayers(2);
        for (Checkpointing ck : new Checkpointing[] {Checkpointing.DEVICE, Checkpointing.OFFLOAD}) {
            MeasuredSweep sweep = new MeasuredSweep(two, Precision.BF16, ck, Optimizer.Placement.DEVICE,
                    NodeCatalog.get("1xH200"), CudaDevice::new);
            for (MeasuredSweep.Row r : sweep.run(sizes, s -> { })) {
                System.out.println(format(sweep, r));
            }
        }
    }

    /** One block per row: the totals, the allocator's reserved peak, then every category measured and planned. */
    public static String format(MeasuredSweep sweep, MeasuredSweep.Row r) {
        if (!r.ran()) {
            return String.format(Locale.ROOT, "%s, %,d tokens: out of memory: %s", sweep.describe(), r.context(), r.outOfMemory());
        }
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "%s, %,d tokens: GPU peak measured %,d B, planned %,d B (%+.1f%%), allocator reserved peak %,d B, step %.3f s",
                sweep.describe(), r.context(), r.measuredPeak(), r.plannedPeak(), 100 * r.error(), r.reservedPeak(),
                r.stepSeconds()));
        for (MemoryCategory c : MemoryCategory.values()) {
            long m = r.measured().getOrDefault(c, 0L), p = r.planned().getOrDefault(c, 0L);
            if (m > 0 || p > 0) {
                sb.append(String.format(Locale.ROOT, "%n  %-12s measured peak %,16d   planned %,16d", c.id, m, p));
            }
        }
        return sb.toString();
    }
}
