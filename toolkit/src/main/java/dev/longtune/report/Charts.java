package dev.longtune.report;

import dev.longtune.tensor.MemoryCategory;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** The planner's charts: memory by category stacked against context length, and totals per stack. */
public final class Charts {
    /** One colour per category, fixed so every chart reads the same. */
    static final Map<MemoryCategory, Color> COLORS = Map.of(
            MemoryCategory.WEIGHTS, new Color(0x4C72B0), MemoryCategory.GRADS, new Color(0xDD8452),
            MemoryCategory.OPTIMIZER, new Color(0x55A868), MemoryCategory.CHECKPOINTS, new Color(0xC44E52),
            MemoryCategory.ACTIVATIONS, new Color(0x8172B3), MemoryCategory.WORKSPACE, new Color(0x937860),
            MemoryCategory.LOGITS, new Color(0xDA8BC3), MemoryCategory.COMM, new Color(0x8C8C8C),
            MemoryCategory.OTHER, new Color(0xCCB974));

    private Charts() {}

    /** The fixed colour of a category. */
    public static Color color(MemoryCategory c) { return COLORS.get(c); }

    private static XYChart base(String title, String yTitle) {
        XYChart chart = new XYChartBuilder().width(900).height(540).title(title)
                .xAxisTitle("context length (tokens, log scale)").yAxisTitle(yTitle).build();
        Styler s = chart.getStyler();
        s.setLegendPosition(Styler.LegendPosition.OutsideE);
        s.setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setXAxisDecimalPattern("#,###");
        return chart;
    }

    /**
     * Categories stacked as areas (each drawn as the running total, largest first, so the bands show), and
     * the capacity as a dashed line. {@code gib} maps category to GiB per context.
     */
    public static XYChart stacked(String title, double[] contexts, Map<MemoryCategory, double[]> gib,
                                  double capacityGiB, String capacityLabel) {
        XYChart chart = base(title, "GiB");
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
            area(chart, order.get(i), contexts, running[i]);
        }
        capacity(chart, contexts, capacityGiB, capacityLabel);
        return chart;
    }

    /** A category's band of a stacked chart: its running total as a filled area in the category's colour. */
    static void area(XYChart chart, MemoryCategory c, double[] x, double[] runningTotal) {
        XYSeries s = chart.addSeries(c.id, x, runningTotal);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Area);
        s.setMarker(SeriesMarkers.NONE);
        s.setFillColor(COLORS.get(c));
        s.setLineColor(COLORS.get(c).darker());
    }

    /** One line per series (e.g. per technique stack) and the capacity line. */
    public static XYChart lines(String title, double[] contexts, Map<String, double[]> gibBySeries,
                                double capacityGiB, String capacityLabel) {
        XYChart chart = base(title, "GiB per GPU (log scale)");
        chart.getStyler().setYAxisLogarithmic(true);
        gibBySeries.forEach((name, v) -> chart.addSeries(name, contexts, v).setMarker(SeriesMarkers.CIRCLE));
        capacity(chart, contexts, capacityGiB, capacityLabel);
        return chart;
    }

    private static void capacity(XYChart chart, double[] contexts, double capacityGiB, String label) {
        double[] cap = new double[contexts.length];
        Arrays.fill(cap, capacityGiB);
        XYSeries s = chart.addSeries(label, contexts, cap);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(Color.BLACK);
        s.setLineStyle(new BasicStroke(2.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {8, 6}, 0));
    }

    private static double max(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, x);
        }
        return m;
    }
}
