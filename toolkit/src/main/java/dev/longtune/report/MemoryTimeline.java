package dev.longtune.report;

import dev.longtune.device.Device;
import dev.longtune.model.LlamaModel;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryTracker;
import org.knowm.xchart.AnnotationLine;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.awt.Color;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Memory over time through training: the device's and the host's bytes by category, sampled at every allocation
 * and release (the trackers report each change), with the phases marked (each layer's forward and backward, the
 * loss, the optimizer). The picture the published study approximated by polling nvidia-smi, here exact and by
 * category. Record around whatever should be profiled (one step, usually the second: the first allocates
 * what later steps reuse), then {@link #table()} (CSV) and {@link #chart(boolean)} (stacked areas).
 *
 * <pre>
 * try (MemoryTimeline timeline = MemoryTimeline.record(model)) {
 *     trainer.step(batches);
 * }
 * timeline.chart(true);   // the device
 * </pre>
 */
public final class MemoryTimeline implements AutoCloseable {
    /** One change: seconds since recording began, device or host, and every category's bytes after it. */
    public record Sample(double seconds, boolean device, long[] bytes) {}

    /** A phase boundary: seconds since recording began, and what starts there. */
    public record Mark(double seconds, String label) {}

    private final Device device;
    private final LlamaModel model;
    private final LlamaModel.LayerListener previousListener;
    private final long start = System.nanoTime();
    private final long[] deviceNow, hostNow;
    private final List<Sample> samples = new ArrayList<>();
    private final List<Mark> marks = new ArrayList<>();
    private boolean closed;

    private MemoryTimeline(LlamaModel model, LlamaModel.LayerListener previous) {
        this.model = model;
        this.device = model.device();
        this.previousListener = previous;
        this.deviceNow = snapshot(device.memory());
        this.hostNow = snapshot(device.hostMemory());
        samples.add(new Sample(0, true, deviceNow.clone()));
        samples.add(new Sample(0, false, hostNow.clone()));
        marks.add(new Mark(0, "forward"));
        device.memory().setListener((t, c, bytes, total) -> sample(true, c, bytes));
        if (device.hostMemory() != device.memory()) {
            device.hostMemory().setListener((t, c, bytes, total) -> sample(false, c, bytes));
        }
        model.setLayerListener((pass, layer, layers) -> {
            previous.layerDone(pass, layer, layers);
            if (pass.equals("forward") && layer == layers - 1) {
                mark("loss and backward");
            } else if (pass.equals("backward") && layer == 0) {
                mark("embedding backward, optimizer");
            }
        });
    }

    /** Starts recording the model's device and host memory; close (or end of a try block) stops it. */
    public static MemoryTimeline record(LlamaModel model) {
        return new MemoryTimeline(model, model.layerListener());
    }

    private static long[] snapshot(MemoryTracker t) {
        long[] b = new long[MemoryCategory.values().length];
        t.currentByCategory().forEach((c, v) -> b[c.ordinal()] = v);
        return b;
    }

    private synchronized void sample(boolean onDevice, MemoryCategory c, long bytes) {
        long[] now = onDevice ? deviceNow : hostNow;
        now[c.ordinal()] = bytes;
        samples.add(new Sample(seconds(), onDevice, now.clone()));
    }

    private double seconds() { return (System.nanoTime() - start) / 1e9; }

    /** Marks a phase boundary now (the layers' passes are marked by themselves). */
    public synchronized void mark(String label) { marks.add(new Mark(seconds(), label)); }

    public synchronized List<Sample> samples() { return List.copyOf(samples); }

    public synchronized List<Mark> marks() { return List.copyOf(marks); }

    /** The largest total bytes the timeline saw on the device (true) or the host (false). */
    public synchronized long peak(boolean onDevice) {
        long peak = 0;
        for (Sample s : samples) {
            if (s.device() == onDevice) {
                long sum = 0;
                for (long b : s.bytes()) {
                    sum += b;
                }
                peak = Math.max(peak, sum);
            }
        }
        return peak;
    }

    /** One row per sample: seconds, where (device/host), bytes per category, total. */
    public synchronized Table table() {
        DoubleColumn time = DoubleColumn.create("seconds");
        StringColumn where = StringColumn.create("where");
        Map<MemoryCategory, LongColumn> cols = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            cols.put(c, LongColumn.create(c.id + "_bytes"));
        }
        LongColumn total = LongColumn.create("total_bytes");
        for (Sample s : samples) {
            time.append(s.seconds());
            where.append(s.device() ? "device" : "host");
            long sum = 0;
            for (MemoryCategory c : MemoryCategory.values()) {
                cols.get(c).append(s.bytes()[c.ordinal()]);
                sum += s.bytes()[c.ordinal()];
            }
            total.append(sum);
        }
        Table t = Table.create("memory-timeline").addColumns(time, where);
        cols.values().forEach(t::addColumns);
        return t.addColumns(total);
    }

    /** The device's (true) or the host's memory over time, categories stacked, phases marked. */
    public synchronized XYChart chart(boolean onDevice) {
        List<Sample> mine = samples.stream().filter(s -> s.device() == onDevice).toList();
        XYChart chart = new XYChartBuilder().width(900).height(480)
                .title((onDevice ? device.name() : "host memory") + ": bytes by category through the step")
                .xAxisTitle("seconds").yAxisTitle("MiB").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setYAxisMin(0.0);
        // a step function: each sample holds until the next one
        int n = mine.size();
        double[] x = new double[2 * n];
        for (int i = 0; i < n; i++) {
            x[2 * i] = mine.get(i).seconds();
            x[2 * i + 1] = i + 1 < n ? mine.get(i + 1).seconds() : mine.get(i).seconds();
        }
        List<MemoryCategory> used = new ArrayList<>();
        for (MemoryCategory c : MemoryCategory.values()) {
            if (mine.stream().anyMatch(s -> s.bytes()[c.ordinal()] > 0)) {
                used.add(c);
            }
        }
        double[][] running = new double[used.size()][2 * n];
        for (int k = 0; k < used.size(); k++) {
            for (int i = 0; i < n; i++) {
                double v = mine.get(i).bytes()[used.get(k).ordinal()] / (double) (1 << 20);
                double below = k == 0 ? 0 : running[k - 1][2 * i];
                running[k][2 * i] = running[k][2 * i + 1] = below + v;
            }
        }
        double top = 0;
        for (int k = used.size() - 1; k >= 0; k--) {
            Charts.band(chart, used.get(k), x, k == 0 ? new double[x.length] : running[k - 1], running[k]);
            for (double v : running[k]) {
                top = Math.max(top, v);
            }
        }
        for (Mark m : marks) {
            if (m.label().equals("end")) {
                continue;
            }
            chart.addAnnotation(new AnnotationLine(m.seconds(), true, false));
            chart.addAnnotation(new AnnotationText(m.label(), m.seconds(), top * 1.02, false));
        }
        return chart;
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        // outside this object's lock: a tracker calls in here holding its own
        device.memory().setListener(null);
        device.hostMemory().setListener(null);
        model.setLayerListener(previousListener);
        mark("end");
    }
}
