package dev.longtune.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class StudyReportTest {
    @Test
    void writesEveryFileAndARerunReproducesTheTables(@TempDir Path dir) throws Exception {
        List<String> steps = new ArrayList<>();
        List<String> files = new StudyReport(dir.resolve("a"), steps::add).write("test");
        assertThat(steps).hasSize(StudyReport.workUnits());
        assertThat(files).contains("memory-by-context.csv", "max-context.csv", "max-context.html", "validation.csv",
                "validation.html", "deepspeed-estimate.txt", "cheapest-stack.csv", "index.html", "manifest.json",
                "gpu-by-category-all-study-8xV100-hf-deepspeed.png", "gpu-by-category-all-study-8xV100-hf-deepspeed.svg",
                "gpu-by-category-all-study-8xV100-hf-deepspeed.pdf", "host-by-category-all-study-4xA6000-longtune.png",
                "gpu-by-stack-study-4xA6000-hf-deepspeed.png", "gpu-by-stack-study-4xA6000-hf-deepspeed.pdf");
        for (String f : files) {
            assertThat(dir.resolve("a").resolve(f)).isNotEmptyFile();
        }

        List<String> csv = Files.readAllLines(dir.resolve("a/memory-by-context.csv"));
        int contexts = StudyReport.contexts().length;
        assertThat(StudyReport.contexts()[0]).isEqualTo(1024);
        assertThat(StudyReport.contexts()[contexts - 1]).isEqualTo(512 * 1024);
        assertThat(csv).hasSize(1 + StudyReport.NODES.size() * 2 * StudyReport.STACKS.size() * contexts);
        assertThat(csv.get(0)).contains("gpu_weights", "gpu_activations", "gpu_checkpoints", "host_optimizer",
                "gpu_peak_bytes", "host_peak_bytes", "fits", "tokens_per_s");

        // PNG at 144 dpi (twice the 1100 × 600 chart), vector beside it
        BufferedImage png = ImageIO.read(dir.resolve("a/gpu-by-category-all-study-8xV100-hf-deepspeed.png").toFile());
        assertThat(png.getWidth()).isEqualTo(2200);
        assertThat(png.getHeight()).isEqualTo(1200);
        assertThat(Files.readString(dir.resolve("a/gpu-by-stack-study-8xV100-hf-deepspeed.pdf"), java.nio.charset.StandardCharsets.ISO_8859_1))
                .startsWith("%PDF");
        assertThat(Files.readString(dir.resolve("a/gpu-by-stack-study-8xV100-hf-deepspeed.svg"))).contains("<svg");
        // the V100 has no official FlashAttention-2: hf-deepspeed's 'fa2' curve is SDPA, and says so
        var v100 = dev.longtune.config.NodeCatalog.get("study-8xV100");
        assertThat(StudyReport.seriesName("fa2", dev.longtune.config.Stacks.named("fa2", v100, dev.longtune.config.EngineProfile.HF_DEEPSPEED)))
                .isEqualTo("fa2 [sdpa, no FA2 here]");
        assertThat(StudyReport.seriesName("fa2", dev.longtune.config.Stacks.named("fa2", v100, dev.longtune.config.EngineProfile.LONGTUNE)))
                .isEqualTo("fa2");

        assertThat(Files.readString(dir.resolve("a/validation.html"))).contains("<table").contains("4×A6000 48GB, BF16");
        JsonNode manifest = new ObjectMapper().readTree(dir.resolve("a/manifest.json").toFile());
        for (String key : List.of("toolkit_version", "git_commit", "java", "os", "command", "date", "files")) {
            assertThat(manifest.has(key)).as(key).isTrue();
        }
        assertThat(manifest.get("command").asText()).isEqualTo("test");

        String index = Files.readString(dir.resolve("a/index.html"));
        assertThat(index).contains("Nothing measured: not asked for");
        // every table the README promises, links to the files, "0" explained, numbers with separators, figures
        // at the page's width with their vector files
        assertThat(index).contains("<style>").contains("Cheapest technique set").contains("DeepSpeed's own estimate")
                .contains("href=\"memory-by-context.csv\"").contains("href=\"notebooks/\"").contains("<b>0</b> means")
                .contains("79,928").contains("gpu-by-stack-study-8xV100-hf-deepspeed.svg\">SVG");
        new StudyReport(dir.resolve("b"), s -> { }).withoutMeasuredSweep("no GPU on this machine (test)").write("test");
        assertThat(Files.readString(dir.resolve("b/index.html"))).contains("Nothing measured: no GPU on this machine (test)");
        assertThat(dir.resolve("b/measured-by-context.csv")).doesNotExist();
        for (String f : List.of("memory-by-context.csv", "max-context.csv", "validation.csv", "cheapest-stack.csv")) {
            assertThat(Files.readString(dir.resolve("b").resolve(f))).as(f)
                    .isEqualTo(Files.readString(dir.resolve("a").resolve(f)));
        }
    }
}
