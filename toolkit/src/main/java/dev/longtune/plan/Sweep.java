package dev.longtune.plan;

import dev.longtune.report.Charts;
import dev.longtune.tensor.MemoryCategory;
import org.knowm.xchart.XYChart;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.Table;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** One plan per context length: memory against context, as a table and a stacked chart. */
public record Sweep(List<MemoryPlan> plans) {
    public Sweep {
        if (plans.isEmpty()) {
            throw new IllegalArgumentException("a sweep needs at least one context length");
        }
        plans = List.copyOf(plans);
    }

    /** Context, GPU GiB by category at the peak, GPU and host peaks, whether it fits. */
    public Table table() {
        LongColumn context = LongColumn.create("context");
        Map<MemoryCategory, DoubleColumn> gpu = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            gpu.put(c, DoubleColumn.create("GPU " + c.id + " GiB"));
        }
        DoubleColumn peak = DoubleColumn.create("GPU peak GiB"), host = DoubleColumn.create("host peak GiB");
        BooleanColumn fits = BooleanColumn.create("fits");
        for (MemoryPlan p : plans) {
            context.append(p.context());
            p.gpuAtPeak().byCategory().forEach((c, v) -> gpu.get(c).append(round(Units.gib(v))));
            peak.append(round(Units.gib(p.gpuPeakBytes())));
            host.append(round(Units.gib(p.hostPeakBytes())));
            fits.append(p.fits());
        }
        Table t = Table.create(plans.get(0).model().name() + " on " + plans.get(0).node().name()).addColumns(context);
        gpu.forEach((c, col) -> {
            if (col.sum() > 0) {
                t.addColumns(col);
            }
        });
        return t.addColumns(peak, host, fits);
    }

    /** GPU memory by category stacked against context, with the GPU's capacity. */
    public XYChart chart() {
        MemoryPlan first = plans.get(0);
        double[] x = plans.stream().mapToDouble(MemoryPlan::context).toArray();
        Map<MemoryCategory, double[]> gib = new EnumMap<>(MemoryCategory.class);
        for (int i = 0; i < plans.size(); i++) {
            for (var e : plans.get(i).gpuAtPeak().byCategory().entrySet()) {
                gib.computeIfAbsent(e.getKey(), k -> new double[plans.size()])[i] = Units.gib(e.getValue());
            }
        }
        return Charts.stacked("GPU memory by category (" + first.node().name() + ", " + first.profile().id + ")", x,
                gib, first.node().gpu().memoryGiB(), "GPU capacity");
    }

    private static double round(double v) { return Math.round(v * 100) / 100.0; }
}
