package dev.longtune.report;

import dev.longtune.plan.Units;
import dev.longtune.plan.Validation;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.List;
import java.util.Locale;

/** The validation against the published study as a table: measured, predicted, relative error. */
public final class ValidationTable {
    private final List<Validation.Row> rows = Validation.run();

    public List<Validation.Row> rows() { return rows; }

    public boolean allWithinTolerance() { return rows.stream().allMatch(Validation.Row::withinTolerance); }

    public Table table() {
        Table t = Table.create("validation against the published study (hf-deepspeed profile)");
        StringColumn setup = StringColumn.create("setup");
        IntColumn context = IntColumn.create("context");
        DoubleColumn vram = DoubleColumn.create("study VRAM MiB (max allocated)"), vramPred = DoubleColumn.create("predicted allocated MiB"),
                reserved = DoubleColumn.create("predicted reserved MiB (at least)"), smi = DoubleColumn.create("predicted nvidia-smi MiB (at least)"),
                vramErr = DoubleColumn.create("VRAM error %"), host = DoubleColumn.create("study host GiB"),
                hostPred = DoubleColumn.create("predicted host GiB"), hostErr = DoubleColumn.create("host error %"),
                tok = DoubleColumn.create("study tokens/s"), tokPred = DoubleColumn.create("predicted tokens/s"),
                tokRatio = DoubleColumn.create("tokens/s ratio");
        for (Validation.Row r : rows) {
            setup.append(r.study().setup());
            context.append((int) r.study().context());
            vram.append(r.study().peakVramMiB());
            vramPred.append(round(r.predictedVramMiB(), 2));
            vramErr.append(round(100 * r.gpuError(), 1));
            reserved.append(round(Units.mib(r.plan().gpuReservedBytes()), 2));
            smi.append(round(Units.mib(r.plan().gpuNvidiaSmiBytes()), 2));
            host.append(r.study().peakHostGiB());
            hostPred.append(round(r.predictedHostGiB(), 2));
            hostErr.append(round(100 * r.hostError(), 1));
            tok.append(r.study().tokensPerSecond());
            tokPred.append(round(r.throughput().tokensPerSecond(), 0));
            tokRatio.append(round(r.tokensRatio(), 2));
        }
        return t.addColumns(setup, context, vram, vramPred, vramErr, reserved, smi, host, hostPred, hostErr, tok, tokPred, tokRatio);
    }

    /** Fixed-width text, as the CLI prints it. */
    public String text() {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "%-27s %8s %11s %11s %7s %9s %9s %7s %9s %9s %6s%n", "setup", "context", "alloc MiB", "predicted",
                "error", "host GiB", "predicted", "error", "tok/s", "predicted", "ratio"));
        for (Validation.Row r : rows) {
            sb.append(String.format(Locale.ROOT, "%-27s %,8d %,11.2f %,11.2f %+6.1f%% %9.2f %9.2f %+6.1f%% %,9.0f %,9.0f %6.2f%n",
                    r.study().setup(), r.study().context(), r.study().peakVramMiB(), r.predictedVramMiB(),
                    100 * r.gpuError(), r.study().peakHostGiB(), r.predictedHostGiB(), 100 * r.hostError(),
                    r.study().tokensPerSecond(), r.throughput().tokensPerSecond(), r.tokensRatio()));
        }
        sb.append("VRAM: the study's max allocated bytes against the planner's allocated figure (reserved and nvidia-smi\n"
                + "add the allocator's rounding and the CUDA context: validation.csv, docs/memory-model.md §2.3)\n");
        sb.append(String.format(Locale.ROOT, "tolerances: VRAM ±%.0f%%, host ±%.0f%%: %s%n",
                100 * Validation.GPU_TOLERANCE, 100 * Validation.HOST_TOLERANCE,
                allWithinTolerance() ? "all rows within" : "SOME ROWS OUTSIDE"));
        return sb.toString();
    }

    private static double round(double v, int digits) {
        double f = Math.pow(10, digits);
        return Math.round(v * f) / f;
    }
}
