package dev.longtune.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longtune.cuda.GpuTests;
import dev.longtune.data.TokenizerCache;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The command line on the GPU: {@code inspect} and {@code train} with {@code --device cuda} (and {@code auto}),
 * {@code --gpu-memory-cap} that fits and one that does not, {@code --save}, {@code --resume} and
 * {@code --init-from}, in BF16 and FP16. Each test is skipped, with the reason, where no GPU is usable; in the GPU
 * test set (bench/gpu-test.sh, {@code -Dlongtune.test.devices=cuda}) a missing GPU or tokenizer fails it.
 * Models have head dim 64, as the GPU attention kernels take.
 */
class GpuCommandLineTest {
    @BeforeEach
    void needsAGpu() {
        GpuTests.assumeGpu();
    }

    static List<JsonNode> jsonLines(String out) throws Exception {
        List<JsonNode> lines = new ArrayList<>();
        for (String line : out.split("\n")) {
            if (!line.isBlank()) {
                lines.add(new ObjectMapper().readTree(line));
            }
        }
        return lines;
    }

    @Test
    void inspectOnTheGpuInEveryPrecisionAgreesWithFp32(@TempDir Path dir) throws Exception {
        InspectCommandTest.lowPrecisionNormsAreCloseToFp32(dir, "cuda");
        Path checkpoint = dir.resolve("gqa64");
        CommandLineTest.Result text = CommandLineTest.run("inspect", "--checkpoint", checkpoint.toString(), "--tokens",
                dir.resolve("long-tokens.txt").toString(), "--precision", "fp16", "--device", "cuda");
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).contains("fp16, loss scale 65536 (norms unscaled) on cuda:0")
                .contains("model.layers.1.self_attn.k_proj.weight");
        // for the record (not asserted): how far FP16 without loss scaling lands on this model
        List<int[]> docs = TokenFile.read(dir.resolve("long-tokens.txt"), InspectCommandTest.VOCAB);
        double[] kNorm = new double[2];
        try (dev.longtune.cuda.CudaDevice d = new dev.longtune.cuda.CudaDevice()) {
            int k = 0;
            for (String p : new String[] {"fp32", "fp16"}) {
                try (var m = dev.longtune.train.TrainingCheckpoint.loadModel(checkpoint, d,
                        dev.longtune.config.Precision.parse(p), dev.longtune.config.Checkpointing.DEVICE)) {
                    m.grads().zero();
                    m.forwardBackward(dev.longtune.model.Batch.ofDocuments(docs), 1f);
                    kNorm[k++] = Math.sqrt(d.sumOfSquares(m.grads().get("model.layers.1.self_attn.k_proj.weight")));
                }
            }
        }
        System.out.printf("unscaled fp16 on the GPU: layer 1 k_proj gradient norm %.6g vs fp32 %.6g (%.2f%% off)%n",
                kNorm[1], kNorm[0], 100 * Math.abs(kNorm[1] - kNorm[0]) / kNorm[0]);
    }

    @Test
    void autoPicksTheGpu(@TempDir Path dir) throws Exception {
        Path checkpoint = InspectCommandTest.writeCheckpoint(dir.resolve("m"), 256, 256, 53, 5); // head dim 64
        Path tokens = dir.resolve("tokens.txt");
        Files.writeString(tokens, InspectCommandTest.TOKENS);
        JsonNode auto = InspectCommandTest.inspect(checkpoint, tokens, "auto", "bf16");
        JsonNode cuda = InspectCommandTest.inspect(checkpoint, tokens, "cuda", "bf16");
        assertThat(auto.get("device").asText()).startsWith("cuda:0");
        assertThat(auto.get("loss").asDouble()).isCloseTo(cuda.get("loss").asDouble(), within(1e-6));
        assertThat(auto.get("grad_norm").asDouble()).isPositive()
                .isCloseTo(cuda.get("grad_norm").asDouble(), within(1e-3 * cuda.get("grad_norm").asDouble()));
    }

    /** A Llama 3 shape with the real vocabulary (tied), head dim 64: 16,712,320 parameters. */
    static Path trainModel(Path dir) throws Exception {
        return trainModel(dir, true);
    }

    /** The same shape with the embedding tied to the LM head or not (a resident embedding needs an untied one). */
    static Path trainModel(Path dir, boolean tied) throws Exception {
        Path model = dir.resolve("model.json");
        Files.writeString(model, """
                {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 128256, "tie_word_embeddings": %s,
                 "rope_theta": 500000.0}""".formatted(tied));
        return model;
    }

    // embedding 128256·128; per layer q, o 128·128, k, v 64·128, MLP 3·128·256, norms 2·128; final norm 128
    static final long PARAMETERS = 128256L * 128 + 2 * (2 * 16384 + 2 * 8192 + 3 * 128 * 256 + 256) + 128;

    static void needsTheTokenizer() {
        GpuTests.assumeOrFail(TokenizerCache.findLlama31().isPresent(), "the Llama 3.1 tokenizer is not at "
                + TokenizerCache.llama31() + " (environment/fetch-tokenizer.sh; bench/gpu-test.sh sets LONGTUNE_TOKENIZER)");
    }

    @Test
    void trainSavesResumesAndStartsFromSavedWeightsOnTheGpuUnderACap(@TempDir Path dir) throws Exception {
        needsTheTokenizer();
        Path model = trainModel(dir), saved = dir.resolve("ckpt");
        CommandLineTest.Result r = CommandLineTest.run("train", "--model", model.toString(), "--device", "cuda",
                "--gpu-memory-cap", "2GiB", "--context", "300", "--steps", "2", "--examples", "2", "--lr", "1e-3",
                "--precision", "bf16", "--checkpointing", "offload", "--optimizer", "device", "--save", saved.toString(),
                "--json", "--progress", "on");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("step 2/2  backward layer 2/2");
        // the tiny model leaves the 2 GiB cap the room: the planner turns on the prefetch and the kept last layer
        assertThat(r.err()).contains("come back a layer ahead").contains("the last layer keeps its saved tensors");
        List<JsonNode> lines = jsonLines(r.out());
        assertThat(lines).hasSize(3);
        for (int i = 0; i < 2; i++) {
            JsonNode step = lines.get(i);
            assertThat(step.get("step").asInt()).isEqualTo(i + 1);
            assertThat(step.get("loss").asDouble()).isBetween(5.0, 20.0);
            assertThat(step.get("applied").asBoolean()).isTrue();
            assertThat(step.at("/memory/weights").asLong()).isEqualTo(2 * PARAMETERS); // bf16, in GPU memory
            assertThat(step.at("/memory/optimizer").asLong()).isEqualTo(12 * PARAMETERS); // --optimizer device
            assertThat(step.at("/host_memory/checkpoints").asLong()).isPositive(); // offloaded layer inputs
            assertThat(step.at("/gpu_allocator/peak_reserved").asLong()).isPositive().isLessThanOrEqualTo(2L << 30);
        }
        double firstLoss = lines.get(0).get("loss").asDouble();
        assertThat(saved.resolve("model.safetensors")).exists();

        CommandLineTest.Result resumed = CommandLineTest.run("train", "--resume", saved.toString(), "--device", "cuda",
                "--gpu-memory-cap", "2GiB", "--context", "300", "--steps", "1", "--examples", "2", "--json");
        assertThat(resumed.code()).as(resumed.err()).isZero();
        JsonNode third = jsonLines(resumed.out()).get(0);
        assertThat(third.get("step").asInt()).isEqualTo(3);
        assertThat(third.at("/memory/optimizer").asLong()).as("the placement is saved").isEqualTo(12 * PARAMETERS);
        assertThat(third.get("loss").asDouble()).isLessThan(firstLoss);

        // the saved Hugging Face weights, trained on in FP16: loss scaling starts at 65536, the loss is the trained level
        CommandLineTest.Result fp16 = CommandLineTest.run("train", "--init-from", saved.toString(), "--device", "cuda",
                "--precision", "fp16", "--context", "300", "--steps", "2", "--examples", "2", "--json");
        assertThat(fp16.code()).as(fp16.err()).isZero();
        List<JsonNode> steps = jsonLines(fp16.out());
        assertThat(steps.get(0).get("step").asInt()).isEqualTo(1);
        assertThat(steps.get(0).get("loss_scale").asDouble()).isEqualTo(65536.0);
        assertThat(steps.get(0).at("/memory/weights").asLong()).isEqualTo(2 * PARAMETERS); // fp16
        for (JsonNode s : steps.subList(0, 2)) {
            assertThat(s.get("loss").asDouble()).isFinite().isLessThan(firstLoss);
        }
    }

    /**
     * {@code --kernels-as v100 / a6000}: the run says which kernels it chose, and with the same seed, weights and data
     * its first loss is this GPU's own kernels' to rounding (FlashAttention's WMMA path, its 99 KiB build, or the
     * native one compute the same attention).
     */
    @Test
    void kernelsAsAV100OrAnA6000TrainToTheLossOfThisGpusOwnKernels(@TempDir Path dir) throws Exception {
        needsTheTokenizer();
        Path model = trainModel(dir);
        java.util.Map<String, Double> firstLoss = new java.util.LinkedHashMap<>();
        for (String as : new String[] {"", "v100", "a6000"}) {
            List<String> args = new java.util.ArrayList<>(List.of("train", "--model", model.toString(), "--device", "cuda",
                    "--context", "300", "--steps", "1", "--examples", "2", "--precision", "fp16", "--json"));
            if (!as.isEmpty()) {
                args.addAll(List.of("--kernels-as", as));
            }
            CommandLineTest.Result r = CommandLineTest.run(args.toArray(String[]::new));
            assertThat(r.code()).as(r.err()).isZero();
            if (!as.isEmpty()) {
                assertThat(r.err()).contains("kernels as on").contains(as.equals("v100") ? "WMMA" : "99 KiB");
            }
            firstLoss.put(as, jsonLines(r.out()).get(0).get("loss").asDouble());
        }
        double own = firstLoss.get("");
        assertThat(own).isBetween(5.0, 20.0);
        assertThat(firstLoss.get("v100")).isCloseTo(own, org.assertj.core.data.Offset.offset(1e-3 * own));
        assertThat(firstLoss.get("a6000")).isCloseTo(own, org.assertj.core.data.Offset.offset(1e-3 * own));
    }

    /**
     * Offloaded parameters with resident layers (auto: under a 2 GiB cap the planner finds room for some of the small
     * model's layers) and the resident embedding: the GPU's AdamW updates them, the loss follows the fully offloaded
     * run's, their optimizer state is in GPU memory, and the run folder records the resolved count, which a resume keeps.
     */
    @Test
    void residentLayersAndEmbeddingTrainOnTheGpuAsOffloadedOnes(@TempDir Path dir) throws Exception {
        needsTheTokenizer();
        Path model = trainModel(dir, false);
        java.util.function.Function<List<String>, List<com.fasterxml.jackson.databind.JsonNode>> train = extra -> {
            List<String> args = new java.util.ArrayList<>(List.of("train", "--model", model.toString(), "--device", "cuda",
                    "--gpu-memory-cap", "2GiB", "--context", "300", "--steps", "3", "--examples", "2", "--lr", "1e-3",
                    "--precision", "bf16", "--offload", "parameters,optimizer,checkpoints", "--json", "--progress", "off"));
            args.addAll(extra);
            CommandLineTest.Result r = CommandLineTest.run(args.toArray(String[]::new));
            assertThat(r.code()).as(r.err()).isZero();
            if (extra.contains("auto")) {
                assertThat(r.err()).contains("--resident-layers auto: the first");
            }
            try {
                return jsonLines(r.out());
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
        List<com.fasterxml.jackson.databind.JsonNode> offloaded = train.apply(List.of());
        Path run = dir.resolve("run");
        List<com.fasterxml.jackson.databind.JsonNode> resident = train.apply(List.of("--resident-layers", "auto",
                "--resident-embedding", "--run-dir", run.toString()));
        for (int i = 0; i < 3; i++) {
            double expected = offloaded.get(i).get("loss").asDouble();
            assertThat(resident.get(i).get("loss").asDouble()).as("step %d", i + 1).isCloseTo(expected, within(2e-3 * expected));
        }
        assertThat(resident.get(0).at("/memory/optimizer").asLong()).isPositive();
        assertThat(offloaded.get(0).at("/memory/optimizer").asLong()).isZero();
        assertThat(resident.get(0).at("/host_memory/optimizer").asLong()).isLessThan(offloaded.get(0).at("/host_memory/optimizer").asLong());
        String config = Files.readString(run.resolve(dev.longtune.run.RunFolder.CONFIG));
        assertThat(config).contains("\"resident_embedding\" : true").containsPattern("\"resident_layers\" : [1-9]");
        // ZeRO-3 over the GPUs (2 where there are 2): each keeps its shards of them, and the checkpoints come back ahead
        String gpus = String.valueOf(Math.min(2, dev.longtune.cuda.Cuda.deviceCount()));
        List<com.fasterxml.jackson.databind.JsonNode> sharded = train.apply(List.of("--gpus", gpus));
        List<com.fasterxml.jackson.databind.JsonNode> residentShards = train.apply(List.of("--gpus", gpus,
                "--resident-layers", "auto", "--resident-embedding"));
        for (int i = 0; i < 3; i++) {
            double expected = sharded.get(i).get("loss").asDouble();
            assertThat(residentShards.get(i).get("loss").asDouble()).as("--gpus %s, step %d", gpus, i + 1)
                    .isCloseTo(expected, within(2e-3 * expected));
        }
        assertThat(residentShards.get(0).at("/ranks/0/memory/optimizer").asLong()).isPositive();
        assertThat(sharded.get(0).at("/ranks/0/memory/optimizer").asLong()).isZero();
    }

    /**
     * The mission's stack in a run folder on the GPU: parameters, AdamW and checkpoints offloaded, a checkpoint every
     * step; a separate JVM preempted with SIGTERM saves and exits 75, and {@code --resume latest} finishes the run
     * with the losses of an uninterrupted one (to rounding: the attention backward's atomics).
     */
    @Test
    void aRunFolderOnTheGpuSurvivesPreemption(@TempDir Path dir) throws Exception {
        needsTheTokenizer();
        Path model = trainModel(dir);
        java.util.function.Function<Path, List<String>> args = run -> List.of("train", "--model", model.toString(),
                "--device", "cuda", "--gpu-memory-cap", "2GiB", "--context", "300", "--steps", "6", "--examples", "2",
                "--lr", "1e-3", "--precision", "bf16", "--offload", "parameters,optimizer,checkpoints",
                "--run-dir", run.toString(), "--save-every", "1", "--keep", "2", "--json", "--progress", "off");
        Path reference = dir.resolve("reference"), preempted = dir.resolve("preempted");
        CommandLineTest.Result r = CommandLineTest.run(args.apply(reference).toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        for (String line : Files.readAllLines(reference.resolve(dev.longtune.run.RunFolder.LOG))) {
            // a catalogued GPU (the test machines' H200s are) gives every logged step its model FLOP/s utilisation
            double mfu = new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).path("mfu").asDouble(-1);
            assertThat(mfu).as("mfu in %s", line).isGreaterThan(0).isLessThan(1);
        }
        Process p = LongRunTest.startJvm(preempted, args.apply(preempted));
        LongRunTest.await(p, preempted, c -> LongRunTest.has(c, n -> n.equals("step-000002")));
        p.destroy();
        assertThat(p.waitFor(3, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(Files.readString(dir.resolve("preempted.err"))).isEqualTo(dev.longtune.run.StopSignal.EXIT_CODE);
        int stoppedAt = LongRunTest.latestStep(preempted);
        assertThat(stoppedAt).isBetween(2, 5);
        CommandLineTest.Result resumed = CommandLineTest.run("train", "--run-dir", preempted.toString(), "--resume", "latest",
                "--json", "--progress", "off");
        assertThat(resumed.code()).as(resumed.err()).isZero();
        List<Double> expected = LongRunTest.losses(reference), got = LongRunTest.losses(preempted);
        assertThat(got).hasSize(6);
        for (int i = 0; i < 6; i++) {
            assertThat(got.get(i)).as("step %d", i + 1).isCloseTo(expected.get(i), within(2e-3 * expected.get(i)));
        }
        assertThat(LongRunTest.latestStep(preempted)).isEqualTo(6);
    }

    /**
     * The multi-node path on one machine: two processes with one GPU each (CUDA_VISIBLE_DEVICES), meeting over TCP on
     * localhost through PyTorch's launcher variables, train as one process with two GPUs does.
     */
    @Test
    void twoProcessesMeetOverTcpAndTrainAsOneProcessWithTwoGpus(@TempDir Path dir) throws Exception {
        needsTheTokenizer();
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.longtune.cuda.Cuda.deviceCount() >= 2, "needs 2 GPUs (this machine has "
                + dev.longtune.cuda.Cuda.deviceCount() + "): run bash bench/gpu-test.sh on the 2-GPU machine");
        Path model = trainModel(dir);
        java.util.function.IntFunction<List<String>> args = gpus -> List.of("train", "--model", model.toString(), "--device",
                "cuda", "--gpus", String.valueOf(gpus), "--context", "300", "--steps", "3", "--examples", "4",
                "--precision", "bf16", "--lr", "1e-3", "--eval-every", "3", "--eval-examples", "3", "--json");
        // (of 4 examples the default 2 held out leave two whose answers a 300-token context cuts off; 3 held out
        // leave one that keeps its labels, the split DataParallelCommandTest runs on the CPU)
        CommandLineTest.Result one = CommandLineTest.run(args.apply(2).toArray(String[]::new));
        assertThat(one.code()).as(one.err()).isZero();
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<Process> nodes = new java.util.ArrayList<>();
        // the nodes also save together into one folder (and evaluate, as the one process does: the held-out loss over
        // every node's ranks)
        List<String> nodeArgs = new java.util.ArrayList<>(args.apply(1));
        nodeArgs.addAll(List.of("--save", dir.resolve("saved").toString(), "--run-dir", dir.resolve("run").toString()));
        for (int node = 0; node < 2; node++) {
            nodes.add(LongRunTest.startJvm(dir.resolve("node" + node), java.util.Map.of("NNODES", "2", "NODE_RANK",
                    String.valueOf(node), "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", String.valueOf(port), "GPUS_PER_NODE", "1",
                    "CUDA_VISIBLE_DEVICES", String.valueOf(node), "NCCL_NVLS_ENABLE", "0"), nodeArgs));
        }
        for (int node = 0; node < 2; node++) {
            assertThat(nodes.get(node).waitFor(4, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
            assertThat(nodes.get(node).exitValue()).as(Files.readString(dir.resolve("node" + node + ".err"))).isZero();
        }
        List<Double> expected = new java.util.ArrayList<>(), got = new java.util.ArrayList<>();
        for (String line : one.out().strip().split("\n")) {
            JsonNode n = new ObjectMapper().readTree(line);
            if (n.has("step")) {
                expected.add(n.get("loss").asDouble());
                // the node's utilisation of its catalogued GPUs (an H200's BF16 peak)
                assertThat(n.path("mfu").asDouble(-1)).as("mfu in %s", line).isGreaterThan(0).isLessThan(1);
            }
        }
        for (String line : Files.readAllLines(dir.resolve("node0.out"))) {
            JsonNode n = new ObjectMapper().readTree(line);
            if (n.has("step")) {
                got.add(n.get("loss").asDouble());
                assertThat(n.get("ranks")).hasSize(1); // this node's one GPU
            }
        }
        assertThat(got).hasSize(3);
        for (int i = 0; i < 3; i++) {
            assertThat(got.get(i)).as("step %d", i + 1).isCloseTo(expected.get(i), within(1e-3 * expected.get(i)));
        }
        assertThat(Files.readString(dir.resolve("node0.out"))).contains("\"eval_loss\"");
        // one folder, each node writing its rank's slices: a plain checkpoint of the whole model that resumes
        var saved = dev.longtune.io.HfCheckpoint.open(dir.resolve("saved"));
        assertThat(saved.config().numLayers()).isEqualTo(2);
        try (var files = Files.list(dir.resolve("saved"))) {
            assertThat(files.map(f -> f.getFileName().toString())).contains("trainer_state.json", "optimizer.safetensors")
                    .noneMatch(n -> n.endsWith(".partial"));
        }
        // the run folder both nodes shared: node 0's log (one line a step) and the last checkpoint, whole
        assertThat(Files.readAllLines(dir.resolve("run/log.jsonl"))).hasSize(3);
        assertThat(dir.resolve("run/checkpoints/step-000003/trainer_state.json")).exists();
        CommandLineTest.Result resumed = CommandLineTest.run("train", "--device", "cuda", "--gpus", "2", "--resume",
                dir.resolve("saved").toString(), "--context", "300", "--steps", "1", "--examples", "4", "--json");
        assertThat(resumed.code()).as(resumed.err()).isZero();
    }

    @Test
    void aCapTooSmallEndsWithTheOutOfMemoryErrorNamingTheTensorAndTheCap(@TempDir Path dir) throws Exception {
        needsTheTokenizer();
        Path model = trainModel(dir);
        CommandLineTest.Result r = CommandLineTest.run("train", "--model", model.toString(), "--device", "cuda",
                "--gpu-memory-cap", "24MiB", "--context", "300", "--steps", "1", "--examples", "2", "--precision", "bf16", "--json");
        // an expected failure, in one line with exit code 2: 24 MiB holds no 32 MiB bf16 embedding, so the first
        // tensor over the cap is named, with the cap
        CommandLineErrorsTest.assertOneLine(r, "cap of 24.00 MiB", "model.embed_tokens.weight");
    }

    @Test
    void maxContextMeasuredOnTheGpuBisectsRealStepsAndRecoversFromEachOutOfMemory(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("config.json");
        Files.writeString(model, """
                {"model_type": "llama", "hidden_size": 512, "intermediate_size": 1792, "num_hidden_layers": 2,
                 "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 5003, "tie_word_embeddings": false,
                 "rms_norm_eps": 1e-5, "rope_theta": 500000.0}""");
        CommandLineTest.Result r = CommandLineTest.run("max-context", "--measure", "--device", "cuda", "--gpu-memory-cap",
                "256MiB", "--model", model.toString(), "--precision", "bf16", "--tile", "1024", "--from", "1024",
                "--to", "65536", "--resolution", "512", "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode o = new ObjectMapper().readTree(r.out().strip());
        long measured = o.get("measured_max_context").asLong(), planned = o.get("planned_max_context").asLong();
        assertThat(o.get("stopped_by").asText()).as(o.toString()).isEqualTo("device memory");
        // each trial agrees with the boundary: after an out-of-memory step the memory came back, so shorter ones train
        for (JsonNode t : o.get("trials")) {
            assertThat(t.get("trained").asBoolean()).as(t.toString()).isEqualTo(t.get("context").asLong() <= measured);
            if (!t.get("trained").asBoolean()) {
                // the advice quotes this trial's context, not the search's upper bound
                assertThat(t.get("failure").asText()).contains("cap of 256.00 MiB")
                        .contains(String.format(java.util.Locale.ROOT, "asked for %,d)", t.get("context").asLong()));
            } else {
                assertThat(t.get("reserved_peak_bytes").asLong()).isLessThanOrEqualTo(256L << 20);
            }
        }
        // the planner, with the allocator's rounding, lands near the measured boundary (the ratio is in the output)
        assertThat((double) measured / planned).as(o.toString()).isBetween(0.8, 1.25);
    }
}
