package dev.longtune.notebook;

import dev.longtune.plan.MemoryPlan;
import dev.longtune.plan.Plan;
import dev.longtune.plan.Sweep;
import dev.longtune.plan.Units;
import io.github.spencerpark.jupyter.kernel.DisplayStream;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

import javax.imageio.ImageIO;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

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
        assertThat(image.getWidth()).isEqualTo(1100); // the study charts' theme (report/Charts)
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
                .contains("activations")
                .contains("GPU peak <b>" + Units.human(plan.gpuPeakBytes()) + "</b> in " + plan.gpuPeakPhase());
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
    void withoutAKernelProgressFallsBackToStderr() {
        assertThat(Notebook.isAttached()).isFalse();
        try (Progress p = Notebook.progress("test", 2)) {
            // a bar redrawn in place on a terminal; lines here, where no console is attached
            assertThat(p).isInstanceOf(System.console() == null ? LineProgress.class : ConsoleProgress.class);
        }
        assertThatThrownBy(Notebook::attachToRunningKernel).hasMessageContaining("Java (longtune)");
    }

    @Test
    void theConsoleBarShowsTheTaskTheCountAndTheLastMessage() {
        List<String> drawn = new CopyOnWriteArrayList<>();
        try (Progress p = new ConsoleProgress("sweep", 4, new DelegatingProgressBarConsumer(drawn::add))) {
            p.step("one");
            p.step("two");
            p.step("three");
        }
        // closing draws the final state once more, whatever the 200 ms redraw thread managed before
        assertThat(drawn.get(drawn.size() - 1)).startsWith("sweep").contains(" 75%").contains("3/4").endsWith("three");
    }

    /** A display stream that records what a notebook cell would receive, instead of sending it to Jupyter. */
    static final class RecordingDisplay extends DisplayStream {
        final List<DisplayData> shown = new ArrayList<>(), updates = new ArrayList<>();

        @Override
        public void display(DisplayData d) { shown.add(new DisplayData(d)); }

        @Override
        public void updateDisplay(DisplayData d) { updates.add(new DisplayData(d)); }

        @Override
        public void updateDisplay(String id, DisplayData d) {
            d.setDisplayId(id);
            updateDisplay(d);
        }
    }

    static String html(DisplayData d) { return (String) d.getData(MIMEType.TEXT_HTML); }

    static String text(DisplayData d) { return (String) d.getData(MIMEType.TEXT_PLAIN); }

    @Test
    void inANotebookTheBarIsShownOnceThenUpdatedInPlace() {
        RecordingDisplay cell = new RecordingDisplay();
        int total = 10_000;
        try (Progress p = new NotebookProgress(cell, "sweeps <all>", total)) {
            assertThat(cell.shown).hasSize(1);
            DisplayData first = cell.shown.get(0);
            assertThat(first.getDisplayId()).isNotBlank();
            assertThat(text(first)).startsWith("sweeps <all> 0/10000 (");
            assertThat(html(first)).contains("<progress value=\"0\" max=\"10000\"").contains("sweeps &lt;all&gt; 0/10000");
            for (int i = 1; i <= total; i++) {
                p.step("context " + i);
            }
            DisplayData end = cell.updates.get(cell.updates.size() - 1);
            assertThat(text(end)).startsWith("sweeps <all> 10000/10000 (").endsWith(" context 10000");
            assertThat(html(end)).contains("<progress value=\"10000\" max=\"10000\"");
        }
        DisplayData closed = cell.updates.get(cell.updates.size() - 1);
        assertThat(text(closed)).startsWith("sweeps <all> 10000/10000 (").endsWith(" done");
        // every redraw replaces the first display; none adds another, and updates are throttled to one per 100 ms
        assertThat(cell.shown).hasSize(1);
        assertThat(cell.updates).extracting(DisplayData::getDisplayId).containsOnly(cell.shown.get(0).getDisplayId());
        assertThat(cell.updates.size()).isLessThan(total / 10);
        // the counts shown only ever grow
        List<Integer> counts = cell.updates.stream().map(d -> Integer.parseInt(text(d).split(" ")[2].split("/")[0])).toList();
        assertThat(counts).isSorted();
    }
}
