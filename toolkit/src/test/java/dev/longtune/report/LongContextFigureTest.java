package dev.longtune.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The measured-and-planned figure of the whole 8B under both caps, from the repository's bench/results. */
class LongContextFigureTest {
    static final Path RESULTS = Path.of("..", "bench", "results");
    static final long GIB = 1L << 30;

    @Test
    void theCurvesAreThePlannersAndThePointsTheMeasuredRuns() throws Exception {
        List<LongContextFigure.Point> points = LongContextFigure.points(RESULTS);
        // the plan does not depend on the cap, only whether it fits does: one curve per engine
        for (boolean tiled : new boolean[] {false, true}) {
            List<Long> at16 = planned(points, 16 * GIB, tiled), at48 = planned(points, 48 * GIB, tiled);
            assertThat(at16).hasSize(LongContextFigure.CONTEXTS.length).isEqualTo(at48);
            assertThat(at16).isSorted();
        }
        // tiling lowers the peak from 16K on and never raises it
        List<Long> untiled = planned(points, 48 * GIB, false), tiled = planned(points, 48 * GIB, true);
        for (int i = 0; i < untiled.size(); i++) {
            assertThat(tiled.get(i)).isLessThanOrEqualTo(untiled.get(i));
        }
        assertThat(tiled.get(2)).isLessThan(untiled.get(2));
        // "fits" agrees with the planner's max context for the same cap and engine
        for (LongContextFigure.Point p : points) {
            if (p.source().equals("planned")) {
                long max = LongContextFigure.plannedMaxContext(p.capBytes(), !p.engine().equals(LongContextFigure.engine(false)));
                assertThat(p.status()).as(p.toString()).isEqualTo(p.context() <= max ? "fits" : "does not fit");
            }
        }
        // the measured points: the 48 GiB sweep (5 untiled contexts) and its tiled 262,144-token step under the cap, the
        // 16 GiB tiled step that trained and the trial that did not
        assertThat(points.stream().filter(p -> p.source().equals("measured") && p.capBytes() == 48 * GIB
                && p.engine().equals(LongContextFigure.engine(false)))).hasSize(5);
        LongContextFigure.Point longest = points.stream().filter(p -> p.source().equals("measured")
                && p.capBytes() == 48 * GIB && p.engine().equals(LongContextFigure.engine(true))).findFirst().orElseThrow();
        assertThat(longest.context()).isEqualTo(262_144);
        assertThat(longest.reservedBytes()).isLessThanOrEqualTo(48 * GIB);
        // under 16 GiB: the longest context that trained and the shortest that did not (a 128K step and two searches)
        LongContextFigure.Point trained = points.stream().filter(p -> p.source().equals("measured")
                && p.capBytes() == 16 * GIB && p.status().equals("ran")).max(java.util.Comparator.comparingLong(
                LongContextFigure.Point::context)).orElseThrow();
        LongContextFigure.Point failed = points.stream().filter(p -> p.status().equals("out of memory"))
                .min(java.util.Comparator.comparingLong(LongContextFigure.Point::context)).orElseThrow();
        assertThat(trained.context()).isEqualTo(137_216);
        assertThat(trained.reservedBytes()).isLessThanOrEqualTo(16 * GIB);
        assertThat(failed.context()).isEqualTo(139_264);
        // each context drawn once under the 16 GiB cap
        assertThat(points.stream().filter(p -> p.source().equals("measured") && p.capBytes() == 16 * GIB)
                .map(LongContextFigure.Point::context)).doesNotHaveDuplicates().contains(131_072L, 135_168L, 143_360L, 155_648L);
        // the planner's 16 GiB boundary for the tiled engine lies between them
        assertThat(LongContextFigure.plannedMaxContext(16 * GIB, true)).isBetween(trained.context(), failed.context() - 1);
    }

    @Test
    void writesTheTableAndTheFigureInThreeFormats(@TempDir Path out) throws Exception {
        List<String> files = LongContextFigure.write(RESULTS, out);
        assertThat(files).containsExactly("long-context-8b-h200.csv", "long-context-8b-h200.png", "long-context-8b-h200.svg",
                "long-context-8b-h200.pdf");
        List<String> csv = Files.readAllLines(out.resolve("long-context-8b-h200.csv"));
        assertThat(csv.get(0)).isEqualTo("cap_bytes,engine,context,source,reserved_peak_bytes,status");
        assertThat(csv).anyMatch(l -> l.startsWith("17179869184,tiled (--tile 8192),155648,measured,") && l.endsWith(",out of memory"));
        for (String f : files) {
            assertThat(Files.size(out.resolve(f))).as(f).isGreaterThan(1000);
        }
        assertThat(LongContextFigure.chart(LongContextFigure.points(RESULTS)).getSeriesCollection().stream()
                .map(org.knowm.xchart.XYSeries::getName).toList())
                .contains("tiled (--tile 8192): planned (fits 137,684 | 459,520)", "untiled, 48 GiB cap: measured",
                        "tiled (--tile 8192), 16 GiB cap: out of memory", "tiled (--tile 8192), 16 GiB cap: measured",
                        "tiled (--tile 8192), 48 GiB cap: measured");
    }

    private static List<Long> planned(List<LongContextFigure.Point> points, long cap, boolean tiled) {
        return points.stream().filter(p -> p.source().equals("planned") && p.capBytes() == cap
                && p.engine().equals(LongContextFigure.engine(tiled))).map(LongContextFigure.Point::reservedBytes).toList();
    }
}
