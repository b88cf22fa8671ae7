package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code train --gpus N}: ZeRO-3 data parallelism from the command line, on CPU ranks here (GPUs: GpuCommandLineTest). */
class DataParallelCommandTest {
    @TempDir Path dir;
    Path model;

    @BeforeEach
    void smallModelWithTheRealVocabulary() throws Exception {
        model = TrainOffloadCommandTest.smallModel(dir, 2);
    }

    List<JsonNode> steps(String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("train", "--device", "cpu", "--model", model.toString(), "--context", "300",
                "--steps", "2", "--examples", "4", "--precision", "bf16", "--lr", "1e-3", "--json"));
        for (String given : List.of("--steps", "--examples")) { // the extra arguments' value wins
            if (List.of(extra).contains(given)) {
                int at = args.indexOf(given);
                args.remove(at + 1);
                args.remove(at);
            }
        }
        args.addAll(List.of(extra));
        CommandLineTest.Result r = CommandLineTest.run(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        List<JsonNode> out = new ArrayList<>();
        for (String line : r.out().strip().split("\n")) {
            JsonNode n = new ObjectMapper().readTree(line);
            if (n.has("step")) {
                out.add(n);
            }
        }
        return out;
    }

    @Test
    void ranksKeepAttentionForTheLayersAskedAndTheRunFolderRemembersThem() throws Exception {
        List<JsonNode> recomputed = steps("--gpus", "2", "--offload", "checkpoints", "--steps", "1");
        Path run = dir.resolve("run");
        List<JsonNode> kept = steps("--gpus", "2", "--offload", "checkpoints", "--steps", "1", "--keep-attention", "1",
                "--run-dir", run.toString());
        assertThat(kept.get(0).get("loss").asDouble()).isEqualTo(recomputed.get(0).get("loss").asDouble());
        // each rank holds its own sequence's kept output and lse: 300 tokens · (32 query dims · 2 bytes + 4 heads · 4)
        for (int r = 0; r < 2; r++) {
            assertThat(kept.get(0).at("/ranks/" + r + "/host_memory/checkpoints").asLong()
                    - recomputed.get(0).at("/ranks/" + r + "/host_memory/checkpoints").asLong()).isEqualTo(300L * (32 * 2 + 4 * 4));
        }
        assertThat(new ObjectMapper().readTree(run.resolve("config.json").toFile()).get("keep_attention").asInt()).isEqualTo(1);
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--model", model.toString(),
                "--gpus", "2", "--offload", "checkpoints", "--keep-attention", "auto", "--steps", "1"),
                "--keep-attention auto is for one GPU");
    }

    @Test
    void twoRanksTrainExactlyAsOneRankWithTwoMicroBatchesAndEachHoldsHalfTheWeights() throws Exception {
        List<JsonNode> two = steps("--gpus", "2"), one = steps("--gpus", "1", "--micro-batches", "2");
        assertThat(two).hasSize(2);
        for (int s = 0; s < 2; s++) {
            assertThat(two.get(s).get("loss").asDouble()).isEqualTo(one.get(s).get("loss").asDouble());
            assertThat(two.get(s).get("tokens").asLong()).isEqualTo(one.get(s).get("tokens").asLong());
            assertThat(two.get(s).get("gpus").asInt()).isEqualTo(2);
        }
        // the time compute waits for the collectives is reported beside the compute's (on the CPU nothing overlaps,
        // so it may round to 0; the GPU run's figure is in docs/benchmarks.md)
        assertThat(two.get(0).get("collectives_s").asDouble()).isGreaterThanOrEqualTo(0);
        // and the collectives' whole time on the communication stream, with the share compute hid; on the CPU the
        // ranks' threads meet in every collective, which takes time, while "waiting" for one costs nothing
        for (JsonNode step : two) {
            assertThat(step.get("communication_s").asDouble()).isGreaterThan(0);
            assertThat(step.get("collectives_overlap").asDouble()).isBetween(0.0, 1.0);
        }
        JsonNode ranks = two.get(0).get("ranks");
        assertThat(ranks).hasSize(2);
        // every rank keeps its shard resident beside the fixed slots the units run in (one rank: the whole model);
        // with the shards offloaded only the slots stay, so the difference is the shard: half the model on two ranks
        JsonNode offloaded = steps("--gpus", "2", "--offload", "parameters").get(0).get("ranks");
        long slots = offloaded.get(0).get("memory").get("weights").asLong();
        long model = one.get(0).get("ranks").get(0).get("memory").get("weights").asLong() - slots;
        for (int r = 0; r < 2; r++) {
            long resident = ranks.get(r).get("memory").get("weights").asLong();
            assertThat(offloaded.get(r).get("memory").get("weights").asLong()).isEqualTo(slots);
            // up to the chunks' padding
            assertThat((double) (resident - slots)).isCloseTo(model / 2.0, org.assertj.core.api.Assertions.within(model * 0.001));
        }
        // the unsharded engine with the same micro-batches agrees to round-off (it accumulates in another order)
        JsonNode plain = steps("--micro-batches", "2").get(0);
        assertThat(two.get(0).get("loss").asDouble()).isCloseTo(plain.get("loss").asDouble(),
                org.assertj.core.api.Assertions.within(1e-3));
    }

    @Test
    void shardsOffloadedToTheHostMoveTheWeightsOffTheRanksDevices() throws Exception {
        JsonNode step = steps("--gpus", "2", "--offload", "parameters,optimizer,checkpoints").get(0);
        for (JsonNode r : step.get("ranks")) {
            assertThat(r.get("host_memory").get("weights").asLong()).isPositive();
            assertThat(r.get("host_memory").get("checkpoints").asLong()).isPositive();
        }
    }

    /**
     * --resident-layers and --resident-embedding with --gpus: each rank's shards of them leave the host (weights,
     * gradients, optimizer state) for its device, the loss is the same bits, and the run folder records them.
     */
    @Test
    void residentShardsUnderGpusMoveOffTheHostWithTheSameLoss() throws Exception {
        String[] offload = {"--gpus", "2", "--offload", "parameters,optimizer,checkpoints", "--steps", "2"};
        List<JsonNode> offloaded = steps(offload);
        Path run = dir.resolve("resident-run");
        List<JsonNode> resident = steps(with(List.of(offload), "--resident-layers", "1", "--resident-embedding",
                "--run-dir", run.toString()));
        for (int s = 0; s < 2; s++) {
            assertThat(resident.get(s).get("loss").asDouble()).as("step %d", s + 1).isEqualTo(offloaded.get(s).get("loss").asDouble());
        }
        // the small model: a layer of 32·32 + 2·16·32 + 32·32 + 3·32·64 + 2·32 parameters, the embedding 128256·32;
        // each rank keeps its half of both
        long layer = 32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 32 * 64 + 2 * 32, embedding = 128256L * 32;
        long half = (layer + 1) / 2 + embedding / 2;
        JsonNode before = offloaded.get(0).get("ranks").get(0), after = resident.get(0).get("ranks").get(0);
        assertThat(before.at("/host_memory/optimizer").asLong() - after.at("/host_memory/optimizer").asLong()).isEqualTo(12 * half);
        assertThat(before.at("/host_memory/weights").asLong() - after.at("/host_memory/weights").asLong()).isEqualTo(2 * half);
        assertThat(after.at("/memory/optimizer").asLong()).isEqualTo(12 * half);
        String config = java.nio.file.Files.readString(run.resolve(dev.longtune.run.RunFolder.CONFIG));
        assertThat(config).contains("\"resident_embedding\" : true").contains("\"resident_layers\" : 1");
    }

    @Test
    void aRunSavedOnTwoRanksResumesOnTwoOrOneAlike() throws Exception {
        steps("--gpus", "2", "--save", dir.resolve("ckpt").toString());
        List<JsonNode> two = steps("--gpus", "2", "--resume", dir.resolve("ckpt").toString());
        // the saved folder is one GPU's: a single rank with two micro-batches takes the same sequences
        List<JsonNode> one = steps("--gpus", "1", "--micro-batches", "2", "--resume", dir.resolve("ckpt").toString());
        assertThat(two).extracting(n -> n.get("step").asInt()).containsExactly(3, 4);
        for (int s = 0; s < 2; s++) {
            assertThat(one.get(s).get("loss").asDouble()).isEqualTo(two.get(s).get("loss").asDouble());
        }
    }

    @Test
    void twoRanksStartFromAHuggingFaceFolderAsOneRankWithTwoMicroBatches() throws Exception {
        Path start = dir.resolve("start");
        steps("--steps", "1", "--save", start.toString()); // a one-GPU run's folder: config.json + safetensors
        List<JsonNode> two = steps("--gpus", "2", "--init-from", start.toString());
        List<JsonNode> one = steps("--gpus", "1", "--micro-batches", "2", "--init-from", start.toString());
        List<JsonNode> random = steps("--gpus", "2");
        for (int s = 0; s < 2; s++) {
            assertThat(two.get(s).get("loss").asDouble()).isEqualTo(one.get(s).get("loss").asDouble());
        }
        // the loaded weights, not the seed's: the first loss differs from the random start's
        assertThat(two.get(0).get("loss").asDouble()).isNotEqualTo(random.get(0).get("loss").asDouble());
        // and one GPU's unsharded engine started from the same folder agrees to round-off
        JsonNode plain = steps("--micro-batches", "2", "--init-from", start.toString()).get(0);
        assertThat(two.get(0).get("loss").asDouble()).isCloseTo(plain.get("loss").asDouble(),
                org.assertj.core.api.Assertions.within(1e-3));
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--gpus", "2", "--init-from",
                dir.resolve("missing").toString()), "--init-from", "no such folder");
    }

    @Test
    void citationsUnderGpusAreScoredAsOneRankWithTwoMicroBatchesScoresThem() throws Exception {
        List<JsonNode> two = steps("--gpus", "2", "--eval-every", "2", "--eval-citations", "1", "--examples", "5");
        List<JsonNode> one = steps("--gpus", "1", "--micro-batches", "2", "--eval-every", "2", "--eval-citations", "1",
                "--examples", "5");
        assertThat(two.get(1).has("citation_f1")).as(two.get(1).toString()).isTrue();
        assertThat(two.get(1).get("citation_f1").asDouble()).isBetween(0.0, 1.0)
                .isEqualTo(one.get(1).get("citation_f1").asDouble());
        assertThat(two.get(0).has("citation_f1")).isFalse(); // only with an evaluation (every 2 steps)
    }

    @Test
    void profileMemoryUnderGpusRecordsRankZerosSecondStep() throws Exception {
        Path run = dir.resolve("profiled");
        List<JsonNode> steps = steps("--gpus", "2", "--profile-memory", "--run-dir", run.toString());
        List<String> timeline = Files.readAllLines(run.resolve("memory-timeline.csv"));
        assertThat(timeline.get(0)).startsWith("seconds,where,weights_bytes");
        assertThat(timeline.size()).isGreaterThan(20);
        assertThat(run.resolve("memory-timeline-device.png")).exists();
        assertThat(run.resolve("memory-timeline-host.svg")).exists();
        // every allocation of rank 0 in step 2: each category's largest value is the peak the step reports for rank 0
        List<String> header = List.of(timeline.get(0).split(","));
        JsonNode rank0 = steps.get(1).get("ranks").get(0).get("memory");
        for (String category : List.of("weights", "grads", "activations", "logits")) {
            int column = header.indexOf(category + "_bytes");
            long max = timeline.subList(1, timeline.size()).stream().map(l -> l.split(","))
                    .filter(v -> v[1].equals("device")).mapToLong(v -> Long.parseLong(v[column])).max().orElseThrow();
            assertThat(max).as(category).isEqualTo(rank0.get(category).asLong());
        }
    }

    @Test
    void whatDataParallelismCannotDoYetIsRefusedInOneLine() {
        CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cpu", "--gpus", "0"), "--gpus 0");
        if (!dev.longtune.cuda.Cuda.available()) {
            CommandLineErrorsTest.assertOneLine(CommandLineTest.run("train", "--device", "cuda", "--gpus", "2"),
                    "this machine has 0 GPU(s)", "--device cpu");
        }
    }

    @Test
    void aRunFolderUnderGpusKilledMidRunResumesBitExactly() throws Exception {
        Path whole = dir.resolve("whole"), killed = dir.resolve("killed");
        List<String> base = List.of("train", "--device", "cpu", "--model", model.toString(), "--context", "300",
                "--examples", "4", "--precision", "bf16", "--lr", "1e-3", "--json", "--gpus", "2", "--steps", "4",
                "--save-every", "1", "--keep", "1", "--progress", "off");
        CommandLineTest.Result r = CommandLineTest.run(with(base, "--run-dir", whole.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        // the same run in another JVM, killed once its second step's checkpoint is complete (every rank wrote its slices)
        Process p = LongRunTest.startJvm(killed, List.of(with(base, "--run-dir", killed.toString())));
        LongRunTest.await(p, killed, checkpoints -> {
            try {
                return LongRunTest.latestStep(killed) >= 2;
            } catch (java.io.IOException e) {
                return false;
            }
        });
        p.destroyForcibly().waitFor();
        r = CommandLineTest.run("train", "--device", "cpu", "--gpus", "2", "--run-dir", killed.toString(), "--resume", "latest",
                "--json", "--progress", "off");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(LongRunTest.losses(killed)).containsExactlyElementsOf(LongRunTest.losses(whole)).hasSize(4);
        // --keep 1: only the last checkpoint stays; both runs end with the same bytes
        var a = dev.longtune.run.RunFolder.open(whole);
        var b = dev.longtune.run.RunFolder.open(killed);
        assertThat(b.checkpoints()).extracting(c -> c.getFileName().toString()).containsExactly("step-000004");
        Path last = a.latestCheckpoint().orElseThrow(), other = b.latestCheckpoint().orElseThrow();
        for (String f : List.of("model.safetensors", "optimizer.safetensors")) {
            assertThat(java.nio.file.Files.mismatch(last.resolve(f), other.resolve(f))).as(f).isEqualTo(-1L);
        }
        assertThat(a.config().get("gpus")).isEqualTo(2);
        assertThat(new ObjectMapper().readTree(java.nio.file.Files.readAllLines(whole.resolve(dev.longtune.run.RunFolder.LOG))
                .get(0)).get("gpus").asInt()).isEqualTo(2);
        assertThat(whole.resolve("loss.png")).exists();
    }

    @Test
    void heldOutLossUnderGpusIsOneRanksAndKeepsTheBestCheckpoint() throws Exception {
        // 3 held-out sequences over 2 ranks: one rank evaluates twice (the second time padding, dropped)
        List<JsonNode> two = steps("--gpus", "2", "--steps", "2", "--eval-every", "1", "--eval-examples", "3");
        List<JsonNode> one = steps("--gpus", "1", "--micro-batches", "2", "--steps", "2", "--eval-every", "1", "--eval-examples", "3");
        assertThat(two).hasSize(2);
        for (int s = 0; s < 2; s++) {
            assertThat(two.get(s).get("loss").asDouble()).isEqualTo(one.get(s).get("loss").asDouble());
            assertThat(two.get(s).get("eval_loss").asDouble()).isCloseTo(one.get(s).get("eval_loss").asDouble(),
                    org.assertj.core.api.Assertions.within(1e-9));
        }
        // with a run folder the best evaluation's checkpoint is kept and named in best.json
        Path run = dir.resolve("eval-run");
        steps("--gpus", "2", "--steps", "2", "--eval-every", "1", "--eval-examples", "3", "--run-dir", run.toString(),
                "--keep", "1");
        JsonNode best = new ObjectMapper().readTree(run.resolve("best.json").toFile());
        double bestLoss = Math.min(two.get(0).get("eval_loss").asDouble(), two.get(1).get("eval_loss").asDouble());
        assertThat(best.get("eval_loss").asDouble()).isEqualTo(bestLoss);
        assertThat(run.resolve(dev.longtune.run.RunFolder.CHECKPOINTS).resolve(String.format("step-%06d",
                best.get("step").asInt()))).isDirectory();
    }

    private static String[] with(List<String> base, String... extra) {
        List<String> all = new ArrayList<>(base);
        all.addAll(List.of(extra));
        return all.toArray(String[]::new);
    }

    @Test
    void nodesMustAgreeOnWhatChangesTheRunButNotOnWhereTheirRunFolderIs() {
        java.util.function.Function<String[], String> digest = args -> {
            TrainCommand c = new TrainCommand();
            new picocli.CommandLine(c).parseArgs(args);
            return DataParallelTraining.configurationDigest(c, 2);
        };
        String base = digest.apply(new String[] {"--run-dir", "/a/run"});
        assertThat(digest.apply(new String[] {"--run-dir", "/b/elsewhere"})).isEqualTo(base);
        for (String[] other : List.of(new String[] {}, new String[] {"--run-dir", "/a/run", "--eval-examples", "7"},
                new String[] {"--run-dir", "/a/run", "--save-every", "5"}, new String[] {"--run-dir", "/a/run", "--keep", "1"},
                new String[] {"--run-dir", "/a/run", "--no-keep-last-layer"}, new String[] {"--run-dir", "/a/run", "--kernels-as", "v100"},
                new String[] {"--run-dir", "/a/run", "--save-every-minutes", "30"})) {
            assertThat(digest.apply(other)).as(String.join(" ", other)).isNotEqualTo(base);
        }
    }

    @Test
    void aRendezvousTimeoutThatIsNotAPositiveNumberIsNamed() {
        assertThat(DataParallelTraining.rendezvousTimeout(" 30 ")).isEqualTo(java.time.Duration.ofSeconds(30));
        for (String bad : List.of("ten", "0", "-5")) {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> DataParallelTraining.rendezvousTimeout(bad))
                    .hasMessageContaining("LONGTUNE_RENDEZVOUS_TIMEOUT=" + bad);
        }
    }
}
