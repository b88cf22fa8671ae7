package dev.longtune.report;

import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.XYChart;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The study's chart theme: what each chart says, not how it looks. */
class ChartsTest {
    static final double[] CONTEXTS = {1024, 2048, 4096, 8192};

    @Test
    void contextTicksAreThePlannedLengthsWrittenAsTokens() {
        XYChart chart = Charts.lines("t", CONTEXTS, Map.of("a", new double[] {1, 2, 3, 4}), 16, "GPU");
        var label = chart.getStyler().getxAxisTickLabelsFormattingFunction();
        assertThat(label.apply(10.0)).isEqualTo("1K");
        assertThat(label.apply(19.0)).isEqualTo("512K");
        assertThat(label.apply(20.0)).isEqualTo("1M");
        assertThat(label.apply(10.5)).isEmpty(); // no tick between planned lengths
        assertThat(Charts.tokens(49_152)).isEqualTo("48K");
        assertThat(Charts.tokens(82_519)).isEqualTo("82,519");
    }

    @Test
    void eachStackNamesItsLongestContextAndTheAxisIsClippedNearTheCapacity() {
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("small", new double[] {2, 4, 8, 16});
        series.put("huge", new double[] {100, 1000, 10_000, 100_000});
        XYChart chart = Charts.lines("t", CONTEXTS, series, Map.of("small", 4096L, "huge", 0L), 12, "GPU");
        assertThat(chart.getSeriesCollection().stream().map(org.knowm.xchart.XYSeries::getName).toList()).contains("small (fits 4,096)", "huge (fits none)", "GPU (12.0 GiB)");
        // the crossing point sits on the capacity, at the longest context, out of the legend
        var cross = chart.getSeries("small (fits 4,096) crossing");
        assertThat(cross.isShowInLegend()).isFalse();
        assertThat(cross.getXData()[0]).isEqualTo(12.0);
        assertThat(cross.getYData()[0]).isEqualTo(12.0);
        assertThat(chart.getStyler().getYAxisMax()).isEqualTo(36.0);
        assertThat(java.util.Arrays.stream(chart.getSeries("huge (fits none)").getYData()).max().orElseThrow()).isLessThanOrEqualTo(1.05 * 36);
        // every stack has its own colour and dash
        assertThat(chart.getSeries("small (fits 4,096)").getLineColor())
                .isNotEqualTo(chart.getSeries("huge (fits none)").getLineColor());
    }

    @Test
    void stackedChartsStartAtZeroAndNameTheBandsTooSmallToSee(@TempDir Path dir) throws Exception {
        Map<MemoryCategory, double[]> gib = new EnumMap<>(MemoryCategory.class);
        gib.put(MemoryCategory.WEIGHTS, new double[] {10, 10, 10, 10});
        gib.put(MemoryCategory.ACTIVATIONS, new double[] {1, 2, 4, 8});
        gib.put(MemoryCategory.WORKSPACE, new double[] {0.01, 0.01, 0.02, 0.03});
        XYChart chart = Charts.stacked("t", CONTEXTS, gib, 16, "GPU");
        assertThat(chart.getStyler().getYAxisMin()).isEqualTo(0.0);
        assertThat(chart.getSeriesCollection().stream().map(org.knowm.xchart.XYSeries::getName).toList()).contains("weights", "activations", "workspace");
        assertThat(chart.getSeries("weights").getXYSeriesRenderStyle().orElseThrow())
                .isEqualTo(org.knowm.xchart.XYSeries.XYSeriesRenderStyle.PolygonArea);
        assertThat(Charts.save(chart, dir.resolve("c"))).containsExactly("c.png", "c.svg", "c.pdf");
        assertThat(Files.readString(dir.resolve("c.pdf"), java.nio.charset.StandardCharsets.ISO_8859_1)).startsWith("%PDF");
        assertThat(Charts.smallCategories(gib)).containsExactly("workspace ≤ 31 MiB");
    }
}
