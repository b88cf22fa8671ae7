package dev.longtune.notebook;

import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.Sweep;
import dev.longtune.report.Html;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.RenderContext;
import io.github.spencerpark.jupyter.kernel.display.Renderer;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
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

/**
 * How longtune's objects look in a notebook: charts as PNG (SVG on request), tables as HTML with a text
 * fallback, plans and sweeps as an HTML table with their chart. Registered on a basekernel
 * {@link Renderer}, so it serves our kernel and IJava alike.
 */
public final class Renderers {
    private Renderers() {}

    public static void registerAll(Renderer renderer) {
        renderer.createRegistration(IChart.class)
                .preferring(MIMEType.IMAGE_PNG, MIMEType.TEXT_PLAIN).supporting(MIMEType.IMAGE_SVG)
                .register(Renderers::chart);
        renderer.createRegistration(RenderedImage.class)
                .preferring(MIMEType.IMAGE_PNG, MIMEType.TEXT_PLAIN)
                .register((img, ctx) -> {
                    ctx.renderIfRequested(MIMEType.IMAGE_PNG, () -> base64(png(img)));
                    ctx.renderIfRequested(MIMEType.TEXT_PLAIN, () -> "image " + img.getWidth() + "×" + img.getHeight());
                });
        renderer.createRegistration(Table.class)
                .preferring(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN)
                .register((table, ctx) -> {
                    ctx.renderIfRequested(MIMEType.TEXT_HTML, () -> Html.table(table));
                    ctx.renderIfRequested(MIMEType.TEXT_PLAIN, () -> table.printAll());
                });
        renderer.createRegistration(MemoryPlan.class)
                .preferring(MIMEType.TEXT_HTML, MIMEType.IMAGE_PNG, MIMEType.TEXT_PLAIN)
                .register((plan, ctx) -> withChart(ctx, PlanViews.html(plan), PlanViews.chart(plan), plan.describe()));
        renderer.createRegistration(RunManifest.class)
                .preferring(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN)
                .register((m, ctx) -> {
                    ctx.renderIfRequested(MIMEType.TEXT_HTML, () -> Html.table(m.table()));
                    ctx.renderIfRequested(MIMEType.TEXT_PLAIN, () -> m.table().printAll());
                });
        renderer.createRegistration(Sweep.class)
                .preferring(MIMEType.TEXT_HTML, MIMEType.IMAGE_PNG, MIMEType.TEXT_PLAIN)
                .register((sweep, ctx) -> withChart(ctx, Html.table(sweep.table()), sweep.chart(),
                        sweep.table().printAll()));
    }

    /** HTML with the chart inline (what a front end shows), plus the PNG and text on their own. */
    private static void withChart(RenderContext ctx, String html, IChart chart, String text) {
        String png = base64(png(chart));
        ctx.renderIfRequested(MIMEType.TEXT_HTML, () -> "<img src=\"data:image/png;base64," + png + "\"/>\n" + html);
        ctx.renderIfRequested(MIMEType.IMAGE_PNG, () -> png);
        ctx.renderIfRequested(MIMEType.TEXT_PLAIN, () -> text);
    }

    private static void chart(IChart chart, RenderContext ctx) {
        ctx.renderIfRequested(MIMEType.IMAGE_PNG, () -> base64(png(chart)));
        ctx.renderIfRequested(MIMEType.IMAGE_SVG, () -> svg(chart));
        ctx.renderIfRequested(MIMEType.TEXT_PLAIN, () -> chart.getClass().getSimpleName() + " " + chart.getWidth()
                + "×" + chart.getHeight());
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

    /** Renders without a kernel, for tests and for saving what a notebook would show. */
    public static DisplayData render(Object value, String... mimeTypes) {
        Renderer r = new Renderer();
        registerAll(r);
        return mimeTypes.length == 0 ? r.render(value) : r.renderAs(value, mimeTypes);
    }
}
