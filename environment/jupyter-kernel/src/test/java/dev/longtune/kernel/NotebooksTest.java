package dev.longtune.kernel;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.config.EngineProfile;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.NodeCatalog;
import dev.longtune.config.Stacks;
import dev.longtune.kernel.JupyterTestSupport.Result;
import dev.longtune.plan.ContextSearch;
import dev.longtune.plan.Plan;
import dev.longtune.plan.Units;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Executes every notebook in notebooks/ headless on the "Java (longtune)" kernel, twice, through Debian's
 * nbconvert: no error output, plots as image/png and tables as text/html, key figures equal to what the
 * planner computes here, and the second run writes the same CSV files as the first.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NotebooksTest {
    @TempDir static Path dir;
    Path data;
    final Map<String, JsonNode> executed = new HashMap<>();
    final Map<String, Path> outputs = new HashMap<>();
    String jupyterLacks;

    @BeforeAll
    void executeEveryNotebookTwice() throws Exception {
        jupyterLacks = JupyterTestSupport.whatJupyterLacks(dir);
        if (jupyterLacks != null) {
            return; // each test skips with the reason: an assumption here would hide the class from the counts
        }
        data = dir.resolve("data");
        Result install = JupyterTestSupport.installKernel(dir, data);
        assertThat(install.exitCode()).as(install.output()).isZero();
        for (String run : List.of("a", "b")) {
            for (Path nb : notebooks()) {
                String name = nb.getFileName().toString().replace(".ipynb", "");
                Path out = Files.createDirectories(dir.resolve(run));
                Map<String, String> env = new HashMap<>(JupyterTestSupport.jupyterEnv(dir, data));
                env.put("LONGTUNE_OUTPUT_DIR", out.resolve(name).toString());
                long start = System.nanoTime();
                Result r = JupyterTestSupport.run(dir, env, 900, JupyterTestSupport.JUPYTER.toString(), "nbconvert",
                        "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=longtune",
                        "--ExecutePreprocessor.timeout=600", "--output-dir", out.toString(), nb.toString());
                System.out.printf("notebook %s (run %s): %.1f s%n", name, run, (System.nanoTime() - start) / 1e9);
                assertThat(r.exitCode()).as(name + ":\n" + r.output()).isZero();
                if (run.equals("a")) {
                    executed.put(name, new ObjectMapper().readTree(out.resolve(name + ".ipynb").toFile()));
                    outputs.put(name, out.resolve(name));
                }
            }
        }
    }

    static List<Path> notebooks() throws IOException {
        try (Stream<Path> s = Files.list(JupyterTestSupport.notebooksDir())) {
            return s.filter(p -> p.toString().endsWith(".ipynb")).sorted().toList();
        }
    }

    /** Every output of every code cell. */
    static List<JsonNode> outputs(JsonNode notebook) {
        List<JsonNode> out = new ArrayList<>();
        notebook.path("cells").forEach(c -> c.path("outputs").forEach(out::add));
        return out;
    }

    static String text(JsonNode notebook) {
        StringBuilder sb = new StringBuilder();
        for (JsonNode o : outputs(notebook)) {
            o.path("text").forEach(t -> sb.append(t.asText()));
            o.path("data").path("text/plain").forEach(t -> sb.append(t.asText()));
            o.path("data").path("text/html").forEach(t -> sb.append(t.asText()));
        }
        return sb.toString();
    }

    @BeforeEach
    void needsJupyter() {
        assumeTrue(jupyterLacks == null, jupyterLacks);
    }

    @Test
    void everyNotebookRanWithoutErrorsAndShowsPlotsAndTables() throws IOException {
        assertThat(executed.keySet()).containsAll(List.of("00-quickstart", "01-memory-planner", "02-step-by-step-training",
                "03-offload-memory-study", "04-multi-gpu"));
        for (var e : executed.entrySet()) {
            JsonNode nb = e.getValue();
            assertThat(nb.at("/metadata/kernelspec/name").asText()).as(e.getKey()).isEqualTo("longtune");
            List<JsonNode> outs = outputs(nb);
            assertThat(outs).as(e.getKey() + " errors").noneMatch(o -> o.path("output_type").asText().equals("error"));
            assertThat(outs).as(e.getKey() + " stderr").noneMatch(o -> o.path("name").asText().equals("stderr"));
            assertThat(outs).as(e.getKey() + " image/png").anyMatch(o -> o.path("data").has("image/png"));
            assertThat(outs).as(e.getKey() + " text/html").anyMatch(o -> o.path("data").has("text/html"));
            nb.path("cells").forEach(c -> {
                if (c.path("cell_type").asText().equals("code")) {
                    assertThat(c.path("execution_count").isInt()).as(e.getKey() + " cell executed").isTrue();
                }
            });
        }
    }

    @Test
    void quickstartShowsThePlannersFigures() {
        var plan = Plan.of("llama-3.1-8b").on("study-8xV100").stack("study").at(32768);
        assertThat(text(executed.get("00-quickstart")))
                .contains("GPU peak " + Units.human(plan.gpuPeakBytes()) + " in the backward phase")
                .contains("toolkit_version");
    }

    @Test
    void memoryPlannerNotebookShowsValidationMaxContextAndProgress() {
        String text = text(executed.get("01-memory-planner"));
        var llama = ModelCatalog.get("llama-3.1-8b");
        var v100 = NodeCatalog.get("study-8xV100");
        long max = new ContextSearch(EngineProfile.HF_DEEPSPEED)
                .maxContext(llama, v100, Stacks.named("all", v100, EngineProfile.HF_DEEPSPEED));
        assertThat(text).contains("all rows within tolerance").contains("8×V100 16GB, FP16, no FA2")
                .contains("7711.63").contains(">" + max + "<")
                .contains("sweeps 4/4"); // the progress bar was updated in place to its end
    }

    @Test
    void trainingNotebookStartsNearLnVAndLearns() throws IOException {
        List<String> curve = Files.readAllLines(outputs.get("02-step-by-step-training").resolve("loss-curve.csv"));
        assertThat(curve.get(0)).isEqualTo("step,loss");
        double first = Double.parseDouble(curve.get(1).split(",")[1]);
        double last = Double.parseDouble(curve.get(curve.size() - 1).split(",")[1]);
        assertThat(first).isCloseTo(Math.log(128256), org.assertj.core.api.Assertions.within(0.2));
        assertThat(last).isLessThan(first - 0.5);
        String text = text(executed.get("02-step-by-step-training"));
        assertThat(text).contains("checkpoint modes").contains("offload").contains("training 40/40")
                .containsPattern("citation F1 before [0-9.]+, after [0-9.]+");
        var ratio = java.util.regex.Pattern.compile("planned total / measured total = ([0-9.]+)").matcher(text);
        assertThat(ratio.find()).as("the planner comparison is printed").isTrue();
        assertThat(Double.parseDouble(ratio.group(1))).isBetween(0.9, 1.1);
        // memory shown in MiB, saved in bytes; measured and planned each at one moment, so the categories add up
        assertThat(text).contains("measured at the peak MiB").contains("citation answers (before training)");
        List<String> memory = Files.readAllLines(outputs.get("02-step-by-step-training").resolve("memory.csv"));
        assertThat(memory.get(0)).isEqualTo("category,measured at the peak B,planned at the peak B,measured own peak B");
        long measuredSum = 0, plannedSum = 0;
        for (String row : memory.subList(1, memory.size() - 1)) {
            String[] v = row.split(",");
            measuredSum += Long.parseLong(v[1]);
            plannedSum += Long.parseLong(v[2]);
            assertThat(Long.parseLong(v[1])).as("a category at the peak is at most its own peak: " + row).isLessThanOrEqualTo(Long.parseLong(v[3]));
        }
        String[] total = memory.get(memory.size() - 1).split(",", -1);
        assertThat(total[0]).isEqualTo("total");
        assertThat(Long.parseLong(total[1])).isEqualTo(measuredSum);
        assertThat(Long.parseLong(total[2])).isEqualTo(plannedSum);
    }

    @Test
    void multiGpuNotebookTrainsOnTwoRanksAsOneRankWithTwoMicroBatches() throws IOException {
        String text = text(executed.get("04-multi-gpu"));
        assertThat(text).contains("2 CPU threads standing in for GPUs").doesNotContain("DIFFERENT");
        // four steps against one rank with two micro-batches, and the resume on one rank
        assertThat(text.split("bit-identical", -1)).hasSize(6);
        Path out = outputs.get("04-multi-gpu");
        List<String> steps = Files.readAllLines(out.resolve("steps.csv"));
        assertThat(steps).hasSize(5);
        assertThat(Double.parseDouble(steps.get(4).split(",")[1])).isLessThan(Double.parseDouble(steps.get(1).split(",")[1]));
        // the step table shows rank 0's collectives time (a timing: not in the saved, reproducible steps.csv)
        assertThat(text).contains("rank 0 collectives s");
        assertThat(steps.get(0)).doesNotContain("collectives");
        List<String> memory = Files.readAllLines(out.resolve("per-rank-memory.csv"));
        for (String category : List.of("weights", "grads", "optimizer")) {
            String[] row = memory.stream().filter(l -> l.startsWith(category + ",")).findFirst().orElseThrow().split(",");
            assertThat(row[1]).as(category + ": both ranks hold the same share").isEqualTo(row[2]);
            assertThat(Long.parseLong(row[1])).as(category + ": a rank holds less than one rank alone").isLessThan(Long.parseLong(row[3]));
        }
        for (String row : Files.readAllLines(out.resolve("measured-2xh200.csv")).subList(1, 3)) {
            String[] v = row.split(",");
            assertThat(v[1]).as("activations measured = planned on 2×H200: " + row).isEqualTo(v[2]);
        }
        // resident shards: the same losses, and rank 0's AdamW state leaves the host for the device
        assertThat(text).contains("shards resident: ").contains("-> the same bits");
        String[] optimizer = Files.readAllLines(out.resolve("resident-shards.csv")).stream()
                .filter(l -> l.startsWith("optimizer,")).findFirst().orElseThrow().split(",");
        long offloadedHost = Long.parseLong(optimizer[1]), offloadedDevice = Long.parseLong(optimizer[2]);
        long residentHost = Long.parseLong(optimizer[3]), residentDevice = Long.parseLong(optimizer[4]);
        assertThat(offloadedDevice).isZero();
        assertThat(residentDevice).isPositive().isEqualTo(offloadedHost - residentHost);
        // planned for the 8B on two H200s: more resident layers, a higher GPU peak, less host memory
        List<String> planned = Files.readAllLines(out.resolve("resident-shards-planned.csv"));
        String[] none = planned.get(1).split(","), most = planned.get(planned.size() - 1).split(",");
        assertThat(Long.parseLong(most[1])).isGreaterThan(Long.parseLong(none[1]));
        assertThat(Long.parseLong(most[2])).isLessThan(Long.parseLong(none[2]));
        assertThat(Double.parseDouble(most[3])).isGreaterThan(Double.parseDouble(none[3]));
    }

    @Test
    void offloadNotebookTrainsBitIdenticallyAndMatchesThePlanner() throws IOException {
        String text = text(executed.get("03-offload-memory-study"));
        assertThat(text).contains("step 1: loss").contains("step 2: loss").doesNotContain("DIFFERENT");
        assertThat(text.split("bit-identical", -1)).hasSize(3);
        // two layers and the embedding resident on the device, their optimizer state with them: the same bits again
        assertThat(text.split("same bits", -1)).hasSize(3);
        assertThat(text).containsPattern("optimizer state on the device: [1-9][0-9,]* B");
        Path out = outputs.get("03-offload-memory-study");
        List<String> sweep = Files.readAllLines(out.resolve("offloaded-sweep.csv"));
        assertThat(sweep).hasSize(5);
        for (String row : sweep.subList(1, sweep.size())) {
            String[] v = row.split(",");
            assertThat(v[1]).as("device slots, measured = planned: " + row).isEqualTo(v[2]);
            assertThat(v[3]).as("device activations, measured = planned: " + row).isEqualTo(v[4]);
            assertThat(v[5]).as("host store and checkpoints, measured = planned: " + row).isEqualTo(v[6]);
        }
        List<String> byCategory = Files.readAllLines(out.resolve("memory-by-category.csv"));
        String[] weights = byCategory.get(1).split(",");
        assertThat(weights[0]).isEqualTo("weights");
        assertThat(Long.parseLong(weights[2])).as("offloaded: only the units in flight on the device")
                .isLessThan(Long.parseLong(weights[1]));
        assertThat(weights[3]).as("offloaded: every weight on the host").isEqualTo(weights[1]);
        // section 5: the timeline saw every allocation, so its peak is the tracker's; section 6: a run folder
        var timeline = java.util.regex.Pattern.compile("device peak ([0-9.]+ [KMG]iB) \\(the tracker's: ([0-9.]+ [KMG]iB)\\)").matcher(text);
        assertThat(timeline.find()).as("the memory timeline line").isTrue();
        assertThat(timeline.group(1)).isEqualTo(timeline.group(2));
        assertThat(out.resolve("memory-timeline-device.png")).exists();
        assertThat(text).contains("exit 0; checkpoints kept: [step-000004]");
        assertThat(out.resolve("run/log.jsonl")).exists();
        var llama = ModelCatalog.get("llama-3.1-8b");
        for (String gpu : List.of("V100", "A6000")) {
            var node = NodeCatalog.get("1x" + gpu).withHostRam(512L << 30);
            long max = new ContextSearch(EngineProfile.LONGTUNE).maxContext(llama, node,
                    Stacks.named("engine", node, EngineProfile.LONGTUNE));
            assertThat(text).contains(String.format(java.util.Locale.ROOT, "%s: the longest context that fits with the engine stack is %,d tokens",
                    node.gpu().name(), max));
        }
    }

    @Test
    void aSecondRunWritesTheSameCsvFiles() throws IOException {
        for (var e : outputs.entrySet()) {
            Path a = e.getValue(), b = dir.resolve("b").resolve(e.getKey());
            List<Path> csv;
            try (Stream<Path> s = Files.list(a)) {
                csv = s.filter(p -> p.toString().endsWith(".csv")).sorted().toList();
            }
            assertThat(csv).as(e.getKey() + " saved CSVs").isNotEmpty();
            for (Path f : csv) {
                assertThat(Files.readString(b.resolve(f.getFileName()))).as(f.getFileName().toString())
                        .isEqualTo(Files.readString(f));
            }
            assertThat(b.resolve("manifest.json")).exists();
        }
    }
}
