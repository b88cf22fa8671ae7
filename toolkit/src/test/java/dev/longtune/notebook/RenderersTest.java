package dev.longtune.notebook;

import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.Plan;
import dev.longtune.plan.Sweep;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import javax.imageio.ImageIO;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RenderersTest {
    static byte[] png(DisplayData d) {
        Object data = d.getData(MIMEType.IMAGE_PNG);
        assertThat(data).as("image/png in the bundle").isInstanceOf(String.class);
        return Base64.getDecoder().decode((String) data);
    }

    @Test
    void chartsRenderAsPngAndSvgOnRequest() throws Exception {
        Sweep sweep = Plan.of("llama-3.1-8b").on("study-4xA6000").stack("all").sweep(8192, 32768, 131072);
        DisplayData d = Renderers.render(sweep.chart());
        var image = ImageIO.read(new ByteArrayInputStream(png(d)));
        assertThat(image.getWidth()).isEqualTo(900);
        DisplayData svg = Renderers.render(sweep.chart(), "image/svg+xml");
        assertThat((String) svg.getData(MIMEType.IMAGE_SVG)).contains("<svg");
    }

    @Test
    void tablesRenderAsHtmlWithATextFallback() {
        Table t = Table.create("t").addColumns(IntColumn.create("tokens", new int[] {1024, 2048}));
        DisplayData d = Renderers.render(t);
        assertThat((String) d.getData(MIMEType.TEXT_HTML)).contains("<table").contains("<th>tokens</th>").contains("2048");
        assertThat((String) d.getData(MIMEType.TEXT_PLAIN)).contains("tokens").contains("1024");
    }

    @Test
    void plansRenderAsATableWithTheirChart() throws Exception {
        MemoryPlan plan = Plan.of("llama-3.1-8b").on("study-8xV100").stack("study").at(32768);
        DisplayData d = Renderers.render(plan);
        String html = (String) d.getData(MIMEType.TEXT_HTML);
        assertThat(html).contains("<img src=\"data:image/png;base64,").contains("<th>GPU backward MiB</th>")
                .contains("activations").contains("GPU peak");
        assertThat(ImageIO.read(new ByteArrayInputStream(png(d)))).isNotNull();
        assertThat((String) d.getData(MIMEType.TEXT_PLAIN)).contains("GPU peak");
    }

    @Test
    void aStockJJavaKernelGetsTheSameViewsThroughItsExtension() throws Exception {
        var jjava = new org.dflib.jjava.jupyter.kernel.display.Renderer();
        var extensions = java.util.ServiceLoader.load(org.dflib.jjava.jupyter.Extension.class).stream().toList();
        assertThat(extensions).extracting(p -> p.type().getName())
                .contains("dev.longtune.notebook.jjava.JJavaExtension");
        dev.longtune.notebook.jjava.JJavaRenderers.registerAll(jjava);
        MemoryPlan plan = Plan.of("llama-3.1-8b").on("study-4xA6000").stack("all").at(131072);
        var d = jjava.render(plan);
        var html = org.dflib.jjava.jupyter.kernel.display.mime.MIMEType.TEXT_HTML;
        var png = org.dflib.jjava.jupyter.kernel.display.mime.MIMEType.IMAGE_PNG;
        assertThat((String) d.getData(html)).contains("GPU peak").contains("<img src=\"data:image/png;base64,");
        assertThat(ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode((String) d.getData(png))))).isNotNull();
    }

    @Test
    void manifestRecordsTheRun(@TempDir Path dir) throws Exception {
        RunManifest m = RunManifest.record("test", Map.of("data", 7L));
        assertThat(m.fields()).containsKeys("toolkit_version", "git_commit", "java", "os", "cpu", "gpu", "seeds");
        assertThat(m.fields().get("seeds")).isEqualTo(Map.of("data", 7L));
        assertThat((String) Renderers.render(m).getData(MIMEType.TEXT_HTML)).contains("toolkit_version");
        assertThat(Files.readString(m.save(dir))).contains("\"seeds\"");
    }

    @Test
    void saveWritesCsvAndPngAndRefusesOtherThings(@TempDir Path dir) throws Exception {
        Sweep sweep = Plan.of("llama-3.1-8b").on("study-8xV100").stack("all").sweep(4096, 8192);
        Path csv = Notebook.save(dir, "sweep", sweep.table());
        assertThat(csv.getFileName().toString()).isEqualTo("sweep.csv");
        assertThat(Files.readAllLines(csv)).hasSize(3);
        assertThat(ImageIO.read(Notebook.save(dir, "sweep.png", sweep.chart()).toFile())).isNotNull();
        assertThatThrownBy(() -> Notebook.save(dir, "x", 42)).hasMessageContaining("Integer").hasMessageContaining("CSV");
    }

    @Test
    void withoutAKernelProgressFallsBackToTheConsole() {
        assertThat(Notebook.isAttached()).isFalse();
        try (Progress p = Notebook.progress("test", 2)) {
            assertThat(p).isInstanceOf(ConsoleProgress.class);
            p.step("one");
            p.step("two");
        }
        assertThatThrownBy(Notebook::attachToRunningKernel).hasMessageContaining("Java (longtune)");
    }
}
