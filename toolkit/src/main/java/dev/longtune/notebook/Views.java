package dev.longtune.notebook;

import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.Sweep;
import dev.longtune.report.Html;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.internal.chartpart.IChart;
import tech.tablesaw.api.Table;

import javax.imageio.ImageIO;
import java.awt.image.RenderedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static dev.longtune.notebook.View.HTML;
import static dev.longtune.notebook.View.PNG;
import static dev.longtune.notebook.View.SVG;
import static dev.longtune.notebook.View.TEXT;

/**
 * How longtune's objects look in a notebook: charts as PNG (SVG on request), tables as HTML with a text
 * fallback, plans and sweeps as an HTML table with their chart inline (and the PNG on its own).
 */
final class Views {
    private Views() {}

    static final List<View<?>> ALL = List.of(
            new View<>(IChart.class, List.of(PNG, TEXT), List.of(SVG), chart -> {
                Map<String, Supplier<Object>> m = new LinkedHashMap<>();
                m.put(PNG, () -> base64(png(chart)));
                m.put(SVG, () -> svg(chart));
                m.put(TEXT, () -> chart.getClass().getSimpleName() + " " + chart.getWidth() + "×" + chart.getHeight());
                return m;
            }),
            new View<>(RenderedImage.class, List.of(PNG, TEXT), List.of(), img -> Map.of(
                    PNG, () -> base64(png(img)),
                    TEXT, () -> "image " + img.getWidth() + "×" + img.getHeight())),
            new View<>(Table.class, List.of(HTML, TEXT), List.of(), table -> Map.of(
                    HTML, () -> Html.table(table),
                    TEXT, table::printAll)),
            new View<>(RunManifest.class, List.of(HTML, TEXT), List.of(), m -> Map.of(
                    HTML, () -> Html.table(m.table()),
                    TEXT, () -> m.table().printAll())),
            new View<>(MemoryPlan.class, List.of(HTML, PNG, TEXT), List.of(),
                    plan -> withChart(PlanViews.html(plan), PlanViews.chart(plan), plan::describe)),
            new View<>(Sweep.class, List.of(HTML, PNG, TEXT), List.of(),
                    sweep -> withChart(Html.table(sweep.table()), sweep.chart(), () -> sweep.table().printAll())));

    /** HTML with the chart inline (what a front end shows), plus the PNG and text on their own. */
    private static Map<String, Supplier<Object>> withChart(String html, IChart chart, Supplier<Object> text) {
        Supplier<String> png = memo(() -> base64(png(chart)));
        return Map.of(
                HTML, () -> "<img src=\"data:image/png;base64," + png.get() + "\"/>\n" + html,
                PNG, png::get,
                TEXT, text);
    }

    private static <T> Supplier<T> memo(Supplier<T> s) {
        return new Supplier<>() {
            private T value;

            @Override
            public synchronized T get() {
                if (value == null) {
                    value = s.get();
                }
                return value;
            }
        };
    }

    static byte[] png(IChart chart) {
        try {
            return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] png(RenderedImage image) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(image, "png", out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    static String svg(IChart chart) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            VectorGraphicsEncoder.saveVectorGraphic(chart, out, VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    static String base64(byte[] bytes) { return Base64.getEncoder().encodeToString(bytes); }
}
