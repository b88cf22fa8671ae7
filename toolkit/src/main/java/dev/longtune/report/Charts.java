package dev.longtune.report;

import dev.longtune.tensor.MemoryCategory;
import org.knowm.xchart.AnnotationTextPanel;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.Marker;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The planner's charts, in one theme for the study's figures: memory by category stacked against context length,
 * and the GPU peak of every technique stack. Context runs on a log-2 axis with a tick at each planned length (1K,
 * 2K, … 512K); memory on a linear GiB axis from 0. Every chart is saved as PNG (for the page), SVG and PDF (for
 * papers) by {@link #save}.
 */
public final class Charts {
    /** One colour per category, fixed so every chart reads the same. */
    static final Map<MemoryCategory, Color> COLORS = Map.of(
            MemoryCategory.WEIGHTS, new Color(0x4C72B0), MemoryCategory.GRADS, new Color(0xDD8452),
            MemoryCategory.OPTIMIZER, new Color(0x55A868), MemoryCategory.CHECKPOINTS, new Color(0xC44E52),
            MemoryCategory.ACTIVATIONS, new Color(0x8172B3), MemoryCategory.WORKSPACE, new Color(0x937860),
            MemoryCategory.LOGITS, new Color(0xDA8BC3), MemoryCategory.COMM, new Color(0x8C8C8C),
            MemoryCategory.OTHER, new Color(0xCCB974));

    /** Series colours for lines (a colour-blind-safe palette of ten), paired with {@link #DASHES} and markers. */
    static final Color[] LINE_COLORS = {new Color(0x0072B2), new Color(0xD55E00), new Color(0x009E73),
            new Color(0xCC79A7), new Color(0xE69F00), new Color(0x56B4E9), new Color(0x000000), new Color(0x999933),
            new Color(0x8C564B), new Color(0x7F7F7F)};
    static final float[][] DASHES = {null, {10, 5}, {3, 4}, {10, 4, 3, 4}};
    static final Marker[] MARKERS = {SeriesMarkers.CIRCLE, SeriesMarkers.SQUARE, SeriesMarkers.DIAMOND,
            SeriesMarkers.TRIANGLE_UP, SeriesMarkers.TRIANGLE_DOWN, SeriesMarkers.CROSS};

    /** A category below this share of the chart's largest total is listed in a note: its band would not show. */
    static final double VISIBLE_SHARE = 0.01;

    /** How far the per-stack chart's memory axis runs, in GPU capacities: the curves beyond it are clipped. */
    static final double CAPACITIES_SHOWN = 3;

    private Charts() {}

    /** The fixed colour of a category. */
    public static Color color(MemoryCategory c) { return COLORS.get(c); }

    /** "1K", "512K", "1M" for a power-of-two token count; the number with thousands separators otherwise. */
    public static String tokens(double tokens) {
        long t = Math.round(tokens);
        if (t >= 1 << 20 && t % (1 << 20) == 0) {
            return (t >> 20) + "M";
        }
        if (t >= 1024 && t % 1024 == 0) {
            return (t >> 10) + "K";
        }
        return String.format(Locale.ROOT, "%,d", t);
    }

    static XYChart base(String title, String yTitle) {
        XYChart chart = new XYChartBuilder().width(1100).height(600).title(title)
                .xAxisTitle("context length (tokens)").yAxisTitle(yTitle).build();
        Styler s = chart.getStyler();
        s.setLegendPosition(Styler.LegendPosition.OutsideE);
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 18));
        s.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 15));
        s.setLegendBorderColor(Color.WHITE);
        chart.getStyler().setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 16));
        chart.getStyler().setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
        chart.getStyler().setPlotGridLinesColor(new Color(0xDDDDDD));
        chart.getStyler().setYAxisMin(0.0);
        chart.getStyler().setYAxisDecimalPattern("#,##0.#");
        // contexts are plotted as log2(tokens): a tick at each power of two, labelled as tokens
        chart.getStyler().setXAxisTickMarkSpacingHint(30);
        chart.getStyler().setxAxisTickLabelsFormattingFunction(x -> Math.abs(x - Math.rint(x)) < 1e-9 ? tokens(Math.pow(2, x)) : "");
        return chart;
    }

    private static double[] log2(double[] contexts) {
        return Arrays.stream(contexts).map(c -> Math.log(c) / Math.log(2)).toArray();
    }

    /**
     * Categories stacked as areas (each drawn as the running total, largest first, so the bands show), and
     * the capacity as a dashed line. {@code gib} maps category to GiB per context. Categories too small to see
     * are named, with their largest value, in a note on the chart.
     */
    public static XYChart stacked(String title, double[] contexts, Map<MemoryCategory, double[]> gib,
                                  double capacityGiB, String capacityLabel) {
        XYChart chart = base(title, "GiB");
        double[] x = log2(contexts);
        List<MemoryCategory> order = new ArrayList<>();
        for (MemoryCategory c : MemoryCategory.values()) {
            if (gib.containsKey(c) && max(gib.get(c)) > 0) {
                order.add(c);
            }
        }
        double[][] running = new double[order.size()][contexts.length];
        for (int i = 0; i < order.size(); i++) {
            double[] v = gib.get(order.get(i));
            for (int j = 0; j < contexts.length; j++) {
                running[i][j] = (i == 0 ? 0 : running[i - 1][j]) + v[j];
            }
        }
        for (int i = order.size() - 1; i >= 0; i--) {
            band(chart, order.get(i), x, i == 0 ? new double[x.length] : running[i - 1], running[i]);
        }
        List<String> invisible = smallCategories(gib);
        capacity(chart, x, capacityGiB, capacityLabel);
        if (!invisible.isEmpty()) {
            note(chart, "too small to see (< 1% of the peak): " + String.join(", ", invisible));
        }
        return chart;
    }

    /** The categories whose band would not show (under 1% of the largest total), each with its largest value. */
    static List<String> smallCategories(Map<MemoryCategory, double[]> gib) {
        int n = gib.values().stream().mapToInt(v -> v.length).max().orElse(0);
        double top = 0;
        for (int j = 0; j < n; j++) {
            double total = 0;
            for (double[] v : gib.values()) {
                total += v[j];
            }
            top = Math.max(top, total);
        }
        List<String> out = new ArrayList<>();
        for (var e : gib.entrySet()) {
            double largest = max(e.getValue());
            if (largest > 0 && largest < VISIBLE_SHARE * top) {
                out.add(String.format(Locale.ROOT, "%s ≤ %s", e.getKey().id, gibText(largest)));
            }
        }
        return out;
    }

    /** A category's band of a stacked chart: filled between the totals below and with it, and a swatch in the legend. */
    static void band(XYChart chart, MemoryCategory c, double[] x, double[] below, double[] total) {
        int n = x.length;
        double[] px = new double[2 * n], py = new double[2 * n];
        for (int j = 0; j < n; j++) {
            px[j] = x[j];
            py[j] = total[j];
            px[2 * n - 1 - j] = x[j];
            py[2 * n - 1 - j] = below[j];
        }
        XYSeries s = chart.addSeries(c.id, px, py);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.PolygonArea);
        s.setMarker(SeriesMarkers.NONE);
        s.setFillColor(COLORS.get(c));
        s.setLineColor(COLORS.get(c).darker());
        s.setLineWidth(0.8f);
    }

    /** One line per series (e.g. per technique stack) and the capacity line, memory on a linear axis from 0. */
    public static XYChart lines(String title, double[] contexts, Map<String, double[]> gibBySeries,
                                double capacityGiB, String capacityLabel) {
        return lines(title, contexts, gibBySeries, Map.of(), capacityGiB, capacityLabel);
    }

    /**
     * The same, each series drawn in its own colour, dash and marker, the memory axis clipped at
     * {@link #CAPACITIES_SHOWN} capacities (the region that decides what fits), and where {@code maxContext}
     * names a series' longest context that fits, a filled point where it meets the capacity and the length in
     * its legend entry.
     */
    public static XYChart lines(String title, double[] contexts, Map<String, double[]> gibBySeries,
                                Map<String, Long> maxContext, double capacityGiB, String capacityLabel) {
        XYChart chart = base(title, "GiB per GPU");
        chart.getStyler().setYAxisMax(CAPACITIES_SHOWN * capacityGiB);
        double[] x = log2(contexts);
        int i = 0;
        for (var e : gibBySeries.entrySet()) {
            Long max = maxContext.get(e.getKey());
            String name = max == null ? e.getKey()
                    : e.getKey() + (max > 0 ? " (fits " + String.format(Locale.ROOT, "%,d", max) + ")" : " (fits none)");
            XYSeries s = chart.addSeries(name, x, clip(e.getValue(), 1.05 * CAPACITIES_SHOWN * capacityGiB));
            Color color = LINE_COLORS[i % LINE_COLORS.length];
            s.setLineColor(color);
            s.setMarkerColor(color);
            s.setMarker(MARKERS[i % MARKERS.length]);
            float[] dash = DASHES[i % DASHES.length];
            s.setLineStyle(dash == null ? new BasicStroke(2.2f)
                    : new BasicStroke(2.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, dash, 0));
            if (max != null && max > 0 && max >= contexts[0] && max <= contexts[contexts.length - 1]) {
                XYSeries cross = chart.addSeries(name + " crossing", new double[] {Math.log(max) / Math.log(2)},
                        new double[] {capacityGiB});
                cross.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                cross.setMarker(SeriesMarkers.CIRCLE);
                cross.setMarkerColor(color);
                cross.setShowInLegend(false);
            }
            i++;
        }
        capacity(chart, x, capacityGiB, capacityLabel);
        note(chart, String.format(Locale.ROOT, "memory axis clipped at %s (%.0f× the capacity)%s",
                gibText(CAPACITIES_SHOWN * capacityGiB), CAPACITIES_SHOWN,
                maxContext.isEmpty() ? "" : "; a dot marks where a curve reaches the capacity: its longest context"));
        return chart;
    }

    /** Values above {@code ceiling} drawn at it, so that a clipped curve leaves the plot at its top edge. */
    private static double[] clip(double[] v, double ceiling) {
        return Arrays.stream(v).map(y -> Math.min(y, ceiling)).toArray();
    }

    static void capacity(XYChart chart, double[] x, double capacityGiB, String label) {
        double[] cap = new double[x.length];
        Arrays.fill(cap, capacityGiB);
        XYSeries s = chart.addSeries(String.format(Locale.ROOT, "%s (%s)", label, gibText(capacityGiB)), x, cap);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(Color.BLACK);
        s.setLineStyle(new BasicStroke(2.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {8, 6}, 0));
    }

    /** A note under the legend, in the chart's bottom-right corner, wrapped to the legend's width. */
    static void note(XYChart chart, String text) {
        StringBuilder wrapped = new StringBuilder();
        int line = 0;
        for (String word : text.split(" ")) {
            if (line > 0 && line + word.length() > 30) {
                wrapped.append('\n');
                line = 0;
            } else if (line > 0) {
                wrapped.append(' ');
                line++;
            }
            wrapped.append(word);
            line += word.length();
        }
        chart.addAnnotation(new AnnotationTextPanel(wrapped.toString(), chart.getWidth() - 232, 110, true));
    }

    static String gibText(double gib) {
        return gib >= 100 ? String.format(Locale.ROOT, "%,.0f GiB", gib)
                : gib >= 1 ? String.format(Locale.ROOT, "%.1f GiB", gib) : String.format(Locale.ROOT, "%.0f MiB", gib * 1024);
    }

    /** {@code chart} as {@code path}.png (at 144 dpi), {@code path}.svg and {@code path}.pdf; returns the file names. */
    public static List<String> save(XYChart chart, Path path) throws IOException {
        String p = path.toString();
        BitmapEncoder.saveBitmapWithDPI(chart, p, BitmapEncoder.BitmapFormat.PNG, 144);
        VectorGraphicsEncoder.saveVectorGraphic(chart, p, VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
        VectorGraphicsEncoder.saveVectorGraphic(chart, p, VectorGraphicsEncoder.VectorGraphicsFormat.PDF);
        String name = path.getFileName().toString();
        return List.of(name + ".png", name + ".svg", name + ".pdf");
    }

    private static double max(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, x);
        }
        return m;
    }
}
