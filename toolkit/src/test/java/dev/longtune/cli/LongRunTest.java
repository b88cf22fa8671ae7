package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.data.TokenizerCache;
import dev.longtune.run.RunFolder;
import dev.longtune.run.StopSignal;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Long runs survive: a training process killed with SIGKILL in the middle of the run or in the middle of a
 * checkpoint save, or stopped with SIGTERM, resumes from its run folder ({@code --run-dir D --resume latest}) and
 * ends with the same per-step losses and the same final weights, byte for byte, as a run never interrupted. The
 * interrupted runs are separate JVMs started here and killed from here (CPU, a small model).
 */
class LongRunTest {
    static final int STEPS = 12;

    Path model;

    @BeforeEach
    void smallModel(@TempDir Path dir) throws IOException {
        assumeTrue(TokenizerCache.findLlama31().isPresent(), "the Llama 3.1 tokenizer is not in the cache (environment/fetch-tokenizer.sh)");
        model = dir.resolve("model");
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128256, "tie_word_embeddings": true,
                 "rope_theta": 500000.0}""");
    }

    List<String> trainArgs(Path runDir) {
        return List.of("train", "--model", model.toString(), "--context", "300", "--steps", String.valueOf(STEPS),
                "--examples", "2", "--precision", "fp32", "--run-dir", runDir.toString(), "--save-every", "1",
                "--keep", "2", "--json", "--progress", "off");
    }

    /** The uninterrupted run, in this JVM. */
    Path reference(Path dir) {
        Path run = dir.resolve("reference");
        CommandLineTest.Result r = CommandLineTest.run(trainArgs(run).toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        return run;
    }

    /** The same run in a separate JVM, returned once {@code moment} holds for its checkpoints, to be interrupted. */
    Process startAndAwait(Path run, Predicate<Path> moment, String... jvmOptions) throws Exception {
        Process p = startJvm(run, trainArgs(run), jvmOptions);
        await(p, run, moment);
        return p;
    }

    /**
     * {@code longtune args} in a new JVM with this one's class path and home (and system properties the GPU tests
     * pass on); stdout and stderr go to {@code run}.out and .err beside the run folder.
     */
    static Process startJvm(Path run, List<String> args, String... jvmOptions) throws IOException {
        return startJvm(run, java.util.Map.of(), args, jvmOptions);
    }

    /** With {@code env} added to this process's environment (a multi-node run's variables, CUDA_VISIBLE_DEVICES). */
    static Process startJvm(Path run, java.util.Map<String, String> env, List<String> args, String... jvmOptions) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-cp", classPath(), "-Duser.home=" + System.getProperty("user.home"),
                "-Djava.awt.headless=true"));
        for (String property : List.of("longtune.tokenizer", "java.library.path")) {
            if (System.getProperty(property) != null) {
                cmd.add("-D" + property + "=" + System.getProperty(property));
            }
        }
        cmd.addAll(List.of(jvmOptions));
        cmd.add(LongtuneCommand.class.getName());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        return pb.redirectOutput(run.resolveSibling(run.getFileName() + ".out").toFile())
                .redirectError(run.resolveSibling(run.getFileName() + ".err").toFile()).start();
    }

    /**
     * This JVM's class path, plus what a launcher's own class loader added (the JUnit console of the GPU test set
     * loads the tests and the toolkit through one, outside java.class.path).
     */
    static String classPath() {
        List<String> parts = new ArrayList<>(List.of(System.getProperty("java.class.path").split(java.io.File.pathSeparator)));
        for (ClassLoader l = LongRunTest.class.getClassLoader(); l != null; l = l.getParent()) {
            if (l instanceof java.net.URLClassLoader u) {
                for (java.net.URL url : u.getURLs()) {
                    try {
                        parts.add(Path.of(url.toURI()).toString());
                    } catch (java.net.URISyntaxException | IllegalArgumentException e) {
                        // not a file: nothing a child JVM could load
                    }
                }
            }
        }
        return String.join(java.io.File.pathSeparator, new java.util.LinkedHashSet<>(parts));
    }

    /** Waits (up to 2 minutes) until {@code ready} holds for the run's checkpoints folder, checking every 10 ms. */
    static void await(Process p, Path run, Predicate<Path> ready) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        Path checkpoints = run.resolve(RunFolder.CHECKPOINTS);
        while (System.nanoTime() < deadline) {
            if (Files.isDirectory(checkpoints) && ready.test(checkpoints)) {
                return;
            }
            assertThat(p.isAlive()).as("the run ended before the moment to interrupt it").isTrue();
            Thread.sleep(10);
        }
        throw new AssertionError("the moment to interrupt " + run + " never came");
    }

    static boolean has(Path checkpoints, Predicate<String> name) {
        try (var s = Files.list(checkpoints)) {
            return s.anyMatch(p -> name.test(p.getFileName().toString()));
        } catch (IOException e) {
            return false;
        }
    }

    /** Resumes the run in this JVM and checks it ends as the reference did. */
    void resumeAndCompare(Path run, Path reference) throws Exception {
        CommandLineTest.Result r = CommandLineTest.run("train", "--run-dir", run.toString(), "--resume", "latest", "--json",
                "--progress", "off");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(losses(run)).containsExactlyElementsOf(losses(reference)).hasSize(STEPS);
        Path last = run.resolve(RunFolder.CHECKPOINTS).resolve(String.format("step-%06d", STEPS));
        Path lastOfReference = reference.resolve(RunFolder.CHECKPOINTS).resolve(String.format("step-%06d", STEPS));
        for (String file : List.of("model.safetensors", "optimizer.safetensors")) {
            assertThat(Files.readAllBytes(last.resolve(file))).as(file).isEqualTo(Files.readAllBytes(lastOfReference.resolve(file)));
        }
        try (var s = Files.list(run.resolve(RunFolder.CHECKPOINTS))) {
            assertThat(s.map(p -> p.getFileName().toString()).sorted().toList())
                    .as("--keep 2, no partial folder left").containsExactly(String.format("step-%06d", STEPS - 1),
                            String.format("step-%06d", STEPS));
        }
        assertThat(run.resolve("loss.png")).exists();
        assertThat(run.resolve("memory.svg")).exists();
    }

    /** The newest complete checkpoint's step, read without opening the run (which would clear partial folders). */
    static int latestStep(Path run) throws IOException {
        try (var s = Files.list(run.resolve(RunFolder.CHECKPOINTS))) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.matches("step-\\d{6,}"))
                    .mapToInt(n -> Integer.parseInt(n.substring(5))).max().orElse(0);
        }
    }

    static List<Double> losses(Path run) throws IOException {
        List<Double> out = new ArrayList<>();
        int step = 0;
        for (String line : Files.readAllLines(run.resolve(RunFolder.LOG))) {
            JsonNode n = new ObjectMapper().readTree(line);
            assertThat(n.get("step").asInt()).as("log lines in step order, none repeated").isEqualTo(++step);
            out.add(n.get("loss").asDouble());
        }
        return out;
    }

    @Test
    void killedMidRunResumesBitExactly(@TempDir Path dir) throws Exception {
        Path reference = reference(dir);
        Path run = dir.resolve("killed");
        Process p = startAndAwait(run, c -> has(c, n -> n.equals("step-000003")));
        p.destroyForcibly().waitFor(); // SIGKILL: no chance to save
        assertThat(latestStep(run)).isLessThan(STEPS);
        resumeAndCompare(run, reference);
    }

    @Test
    void killedMidSaveKeepsThePreviousCheckpointAndResumesBitExactly(@TempDir Path dir) throws Exception {
        Path reference = reference(dir);
        Path run = dir.resolve("killed-saving");
        // every save waits 2 s between writing its files and renaming the folder: kill inside that window
        Process p = startAndAwait(run, c -> has(c, n -> n.equals("step-000001")) && has(c, n -> n.startsWith(".partial-step-000002")),
                "-Dlongtune.test.saveDelayMs=2000");
        p.destroyForcibly().waitFor();
        assertThat(has(run.resolve(RunFolder.CHECKPOINTS), n -> n.startsWith(".partial-"))).isTrue();
        assertThat(latestStep(run)).isEqualTo(1); // the save in progress does not count
        resumeAndCompare(run, reference);
    }

    @Test
    void sigtermSavesTheStepAndExitsWithItsCode(@TempDir Path dir) throws Exception {
        Path reference = reference(dir);
        Path run = dir.resolve("preempted");
        Process p = startAndAwait(run, c -> has(c, n -> n.equals("step-000002")));
        p.destroy(); // SIGTERM, as a scheduler preempting the job
        assertThat(p.waitFor(2, TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).isEqualTo(StopSignal.EXIT_CODE);
        String err = Files.readString(run.resolveSibling("preempted.err"));
        assertThat(err).contains("stopped by SIGTERM after step").contains("--resume latest");
        int stoppedAt = losses(run).size();
        assertThat(stoppedAt).isLessThan(STEPS);
        assertThat(latestStep(run)).as("saved at the step it stopped after").isEqualTo(stoppedAt);
        resumeAndCompare(run, reference);
    }

    @Test
    void runFolderMisuseIsExplained(@TempDir Path dir) throws Exception {
        CommandLineTest.Result noDir = CommandLineTest.run("train", "--resume", "latest");
        assertThat(noDir.code()).isEqualTo(2);
        assertThat(noDir.err()).contains("--run-dir");
        Path run = dir.resolve("run");
        CommandLineTest.Result empty = CommandLineTest.run("train", "--run-dir", run.toString(), "--resume", "latest");
        assertThat(empty.code()).isEqualTo(2);
        assertThat(empty.err()).contains("holds no run").contains("without --resume");

        List<String> args = new ArrayList<>(trainArgs(run));
        args.set(args.indexOf("--steps") + 1, "2");
        List<String> profiled = new ArrayList<>(args);
        profiled.add("--profile-memory");
        CommandLineTest.Result first = CommandLineTest.run(profiled.toArray(String[]::new));
        assertThat(first.code()).as(first.err()).isZero();
        // --profile-memory: step 2's memory by category at every allocation, as CSV and stacked-area charts
        List<String> timeline = Files.readAllLines(run.resolve("memory-timeline.csv"));
        assertThat(timeline.get(0)).startsWith("seconds,where,weights_bytes");
        assertThat(timeline.size()).isGreaterThan(20);
        assertThat(run.resolve("memory-timeline-device.png")).exists();
        assertThat(run.resolve("memory-timeline-host.svg")).exists();
        JsonNode config = new ObjectMapper().readTree(run.resolve(RunFolder.CONFIG).toFile());
        assertThat(config.get("context").asText()).isEqualTo("300");
        assertThat(config.get("steps").asInt()).isEqualTo(2);
        assertThat(config.get("save_every").asInt()).isEqualTo(1);

        CommandLineTest.Result again = CommandLineTest.run(args.toArray(String[]::new));
        assertThat(again.code()).isEqualTo(2);
        assertThat(again.err()).contains("already holds a run").contains("--resume latest");
        CommandLineTest.Result otherLength = CommandLineTest.run("train", "--run-dir", run.toString(), "--resume", "latest",
                "--context", "512");
        assertThat(otherLength.code()).isEqualTo(2);
        assertThat(otherLength.err()).contains("--context 512 differs from the run's 300");
        // --steps on a resume extends the run to that total
        CommandLineTest.Result longer = CommandLineTest.run("train", "--run-dir", run.toString(), "--resume", "latest",
                "--steps", "3", "--json", "--progress", "off");
        assertThat(longer.code()).as(longer.err()).isZero();
        assertThat(losses(run)).hasSize(3);
    }

    @Test
    void evaluationOnHeldOutExamplesKeepsTheBestCheckpoint(@TempDir Path dir) throws Exception {
        Path run = dir.resolve("eval");
        List<String> args = new ArrayList<>(trainArgs(run));
        args.set(args.indexOf("--steps") + 1, "4");
        args.set(args.indexOf("--examples") + 1, "3");
        args.set(args.indexOf("--keep") + 1, "1");
        args.addAll(List.of("--eval-every", "2", "--eval-examples", "1", "--eval-citations", "1"));
        CommandLineTest.Result r = CommandLineTest.run(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        List<JsonNode> lines = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve(RunFolder.LOG))) {
            lines.add(new ObjectMapper().readTree(line));
        }
        assertThat(lines).extracting(l -> l.has("eval_loss")).containsExactly(false, true, false, true);
        // the held-out example's answer generated and its citations scored at each evaluation
        assertThat(lines).extracting(l -> l.has("citation_f1")).containsExactly(false, true, false, true);
        assertThat(lines.get(3).get("citation_f1").asDouble()).isBetween(0.0, 1.0);
        JsonNode best = new ObjectMapper().readTree(run.resolve("best.json").toFile());
        double bestLoss = Math.min(lines.get(1).get("eval_loss").asDouble(), lines.get(3).get("eval_loss").asDouble());
        assertThat(best.get("eval_loss").asDouble()).isEqualTo(bestLoss);
        assertThat(run.resolve(RunFolder.CHECKPOINTS).resolve(String.format("step-%06d", best.get("step").asInt()))).isDirectory();

        // --keep counts the newest; the best is kept besides them
        RunFolder folder = RunFolder.open(dir.resolve("pruning"));
        for (int step = 1; step <= 5; step++) {
            int s = step;
            folder.saveCheckpoint(step, 1, 2, d -> Files.writeString(d.resolve("x"), "step " + s));
        }
        assertThat(folder.checkpoints()).extracting(p -> p.getFileName().toString()).containsExactly("step-000002", "step-000005");
        assertThat(Files.readString(folder.latestCheckpoint().orElseThrow().resolve("x"))).isEqualTo("step 5");
    }

    @Test
    void resumingKeepsTheRunsSequenceTiles(@TempDir Path dir) throws Exception {
        // the MLP's activations of step 2: tiled (64-token tiles), untiled, and tiled again after a resume that does not
        // repeat --tile (the run folder's config.json says so)
        long tiled = activationsOfStep2(dir.resolve("tiled"), List.of("--tile", "64"), false);
        long untiled = activationsOfStep2(dir.resolve("untiled"), List.of(), false);
        long resumed = activationsOfStep2(dir.resolve("resumed"), List.of("--tile", "64"), true);
        assertThat(tiled).isLessThan(untiled);
        assertThat(resumed).isEqualTo(tiled);
    }

    /** Two steps (the second after a --resume latest without the extra options when {@code resume}). */
    private long activationsOfStep2(Path run, List<String> extra, boolean resume) throws Exception {
        List<String> args = new ArrayList<>(trainArgs(run));
        args.set(args.indexOf("--steps") + 1, resume ? "1" : "2");
        args.addAll(extra);
        CommandLineTest.Result first = CommandLineTest.run(args.toArray(String[]::new));
        assertThat(first.code()).as(first.err()).isZero();
        if (resume) {
            CommandLineTest.Result again = CommandLineTest.run("train", "--run-dir", run.toString(), "--resume", "latest",
                    "--steps", "2", "--json", "--progress", "off");
            assertThat(again.code()).as(again.err()).isZero();
        }
        List<String> log = Files.readAllLines(run.resolve(RunFolder.LOG));
        JsonNode step2 = new ObjectMapper().readTree(log.get(1));
        assertThat(step2.get("step").asInt()).isEqualTo(2);
        return step2.get("memory").get("activations").asLong();
    }
}
