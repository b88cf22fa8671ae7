package dev.longtune.notebook;

import dev.longtune.plan.Breakdown;
import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.Phase;
import dev.longtune.plan.Units;
import dev.longtune.report.Html;
import dev.longtune.tensor.MemoryCategory;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.style.Styler;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A memory plan as a notebook shows it: a table by category and phase, and stacked bars. */
final class PlanViews {
    private PlanViews() {}

    static String html(MemoryPlan plan) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<p><b>%s</b> on <b>%s</b> at %,d tokens (%s)<br><code>%s</code><br>"
                        + "GPU peak <b>%s</b> in %s of %s%s; host peak <b>%s</b> of %s%s</p>%n",
                Html.escape(plan.model().name()), Html.escape(plan.node().name()), plan.context(), plan.profile().id,
                Html.escape(plan.stack().describe()), Units.human(plan.gpuPeakBytes()), plan.gpuPeakPhase(),
                Units.human(plan.node().gpu().memoryBytes()), plan.fitsGpu() ? "" : " <b>(does not fit)</b>",
                Units.human(plan.hostPeakBytes()), Units.human(plan.node().hostRamBytes()),
                plan.fitsHost() ? "" : " <b>(does not fit)</b>"));
        sb.append("<table border=\"1\" cellspacing=\"0\" cellpadding=\"4\"><tr><th>category</th>");
        for (Phase p : Phase.values()) {
            sb.append("<th>GPU ").append(p.id).append(" MiB</th>");
        }
        sb.append("<th>host GiB</th></tr>\n");
        for (MemoryCategory c : MemoryCategory.values()) {
            sb.append("<tr><td>").append(c.id).append("</td>");
            for (Phase p : Phase.values()) {
                sb.append(String.format(Locale.ROOT, "<td align=\"right\">%,.1f</td>", Units.mib(plan.gpu().get(p).bytes(c))));
            }
            sb.append(String.format(Locale.ROOT, "<td align=\"right\">%,.2f</td></tr>%n", Units.gib(plan.hostAtPeak().bytes(c))));
        }
        sb.append("<tr><td><b>total</b></td>");
        for (Phase p : Phase.values()) {
            sb.append(String.format(Locale.ROOT, "<td align=\"right\"><b>%,.1f</b></td>", Units.mib(plan.gpu().get(p).total())));
        }
        sb.append(String.format(Locale.ROOT, "<td align=\"right\"><b>%,.2f</b></td></tr></table>%n", Units.gib(plan.hostPeakBytes())));
        return sb.toString();
    }

    /** GPU memory per phase, stacked by category. */
    static CategoryChart chart(MemoryPlan plan) {
        CategoryChart chart = new CategoryChartBuilder().width(700).height(400)
                .title("GPU memory by phase (" + plan.node().gpu().name() + ", " + plan.context() + " tokens)")
                .xAxisTitle("phase").yAxisTitle("GiB").build();
        chart.getStyler().setStacked(true);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        List<String> phases = new ArrayList<>();
        for (Phase p : Phase.values()) {
            phases.add(p.id);
        }
        for (MemoryCategory c : MemoryCategory.values()) {
            List<Double> values = new ArrayList<>();
            boolean any = false;
            for (Phase p : Phase.values()) {
                Breakdown b = plan.gpu().get(p);
                values.add(Units.gib(b.bytes(c)));
                any |= b.bytes(c) > 0;
            }
            if (any) {
                CategorySeries s = chart.addSeries(c.id, phases, values);
                s.setFillColor(dev.longtune.report.Charts.color(c));
            }
        }
        return chart;
    }
}
