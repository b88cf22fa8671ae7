package dev.longtune.train;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.tensor.MemoryCategory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * ZeRO-3 data parallelism on the in-process communicator: N ranks with one micro-batch each train exactly as one
 * rank with N micro-batches (the same losses and weights, bit for bit), and as the unsharded engine to round-off.
 */
class DataParallelTest {
    static ModelConfig config(boolean tied) throws Exception {
        String json = """
                {"model_type": "llama", "hidden_size": 32, "intermediate_size": 56, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 37, "rope_theta": 10000.0,
                 "tie_word_embeddings": %s}""".formatted(tied);
        return ModelConfig.parse("tiny", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
    }

    static List<Batch> batches(int step, int count) {
        Random r = new Random(40 + step);
        List<Batch> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(Batch.ofDocuments(List.of(r.ints(21, 0, 37).toArray(), r.ints(12, 0, 37).toArray())));
        }
        return out;
    }

    record Run(List<StepResult> steps, Map<String, float[]> weights, long shardWeightBytes) {}

    static Run train(int ranks, int sequences, Precision p, boolean tied) throws Exception {
        return train(ranks, sequences, p, tied, ParameterPlacement.DEVICE);
    }

    static Run train(int ranks, int sequences, Precision p, boolean tied, ParameterPlacement shards) throws Exception {
        return train(ranks, sequences, p, tied, shards, false);
    }

    static Run train(int ranks, int sequences, Precision p, boolean tied, ParameterPlacement shards, boolean keepLastLayer)
            throws Exception {
        TrainingConfig tc = TrainingConfig.defaults(6).withLearningRate(5e-3, 5e-4).withGradientAccumulation(sequences / ranks);
        DataParallel.Job job = new DataParallel.Job(config(tied), p, Checkpointing.DEVICE, shards, tc, 9);
        try (DataParallel dp = DataParallel.onCpu(job, ranks)) {
            for (int r = 0; r < ranks; r++) {
                dp.rank(r).model().setKeepLastLayer(keepLastLayer);
            }
            assertThat(dp.rank(0).overlapsUpdate()).as("the host AdamW overlaps the next step").isEqualTo(shards == ParameterPlacement.HOST);
            List<StepResult> steps = new ArrayList<>();
            for (int s = 0; s < 3; s++) {
                steps.add(dp.step(batches(s, sequences)));
            }
            // the shard itself (the device also holds slots for the units in use, the same on every rank count)
            long shard = dp.rank(0).model().weights().all().stream().mapToLong(dev.longtune.tensor.Tensor::bytes).sum();
            return new Run(steps, dp.weights(), shard);
        }
    }

    @ParameterizedTest(name = "{0} ranks, {1}, tied={2}")
    @CsvSource({"2, fp32, false", "3, fp32, true", "2, bf16, false", "4, bf16, true", "2, fp16, false", "3, fp16, true"})
    void nRanksWithOneMicroBatchEachMatchOneRankWithNMicroBatchesBitForBit(int ranks, String precision, boolean tied)
            throws Exception {
        Precision p = Precision.parse(precision);
        Run one = train(1, ranks, p, tied), many = train(ranks, ranks, p, tied);
        for (int s = 0; s < 3; s++) {
            StepResult a = one.steps().get(s), b = many.steps().get(s);
            assertThat(b.loss()).as("step %d loss", s + 1).isEqualTo(a.loss());
            assertThat(b.tokens()).isEqualTo(a.tokens());
            // the norm's double sum is split by shard: equal to the last bits, which clipping rounds away
            assertThat(b.gradNorm()).as("step %d grad norm", s + 1).isCloseTo(a.gradNorm(), within(1e-12 * a.gradNorm()));
        }
        assertThat(one.steps().get(2).loss()).isLessThan(one.steps().get(0).loss());
        one.weights().forEach((name, w) -> assertThat(many.weights().get(name)).as(name).containsExactly(w));
        // every step's collectives are timed on the communication stream, and what compute waited for is part of it
        for (StepResult s : many.steps()) {
            assertThat(s.communicationSeconds()).isGreaterThan(0);
            assertThat(s.collectiveSeconds()).isLessThanOrEqualTo(s.communicationSeconds());
            assertThat(s.collectiveOverlap()).isBetween(0.0, 1.0);
        }
        // each rank holds about 1/N of the weights
        assertThat((double) many.shardWeightBytes()).isCloseTo(one.shardWeightBytes() / (double) ranks,
                within(0.02 * one.shardWeightBytes()));
    }

    @Test
    void shardsOffloadedToTheHostTrainExactlyAsShardsOnTheDevice() throws Exception {
        Run device = train(2, 2, Precision.BF16, true, ParameterPlacement.DEVICE);
        Run host = train(2, 2, Precision.BF16, true, ParameterPlacement.HOST);
        for (int s = 0; s < 3; s++) {
            assertThat(host.steps().get(s).loss()).isEqualTo(device.steps().get(s).loss());
            assertThat(host.steps().get(s).gradNorm()).isEqualTo(device.steps().get(s).gradNorm());
        }
        device.weights().forEach((name, w) -> assertThat(host.weights().get(name)).as(name).containsExactly(w));
    }

    @Test
    void theShardedEngineTrainsAsTheUnshardedOne() throws Exception {
        Run sharded = train(2, 2, Precision.FP32, false);
        TrainingConfig tc = TrainingConfig.defaults(6).withLearningRate(5e-3, 5e-4).withGradientAccumulation(2);
        try (LlamaModel m = new LlamaModel(config(false), new CpuDevice(), Precision.FP32, Checkpointing.DEVICE)) {
            m.initialize(9); // before the trainer, which starts its optimizer from these weights
            Trainer t = new Trainer(m, tc, Precision.FP32);
            for (int s = 0; s < 3; s++) {
                StepResult r = t.step(batches(s, 2));
                // the unsharded engine accumulates micro-batches into one gradient: the same sums in another order
                assertThat(sharded.steps().get(s).loss()).isCloseTo(r.loss(), within(1e-5 * r.loss()));
                assertThat(sharded.steps().get(s).gradNorm()).isCloseTo(r.gradNorm(), within(1e-4 * r.gradNorm()));
            }
            m.weights().byName().forEach((name, w) -> {
                float[] expected = m.device().read(w), got = sharded.weights().get(name);
                for (int i = 0; i < expected.length; i++) {
                    assertThat(got[i]).as("%s[%d]", name, i).isCloseTo(expected[i], within(1e-5f));
                }
            });
            t.close();
        }
    }

    /** Both nodes' calls at once, each from its own thread, as two processes would make them. */
    static <T> List<T> onBothNodes(java.util.concurrent.ExecutorService nodes, java.util.concurrent.Callable<T> a,
                                   java.util.concurrent.Callable<T> b) throws Exception {
        var fa = nodes.submit(a);
        var fb = nodes.submit(b);
        return java.util.Arrays.asList(fa.get(120, java.util.concurrent.TimeUnit.SECONDS), fb.get(120, java.util.concurrent.TimeUnit.SECONDS));
    }

    /**
     * Two nodes of two ranks (one communicator group of four, each node driven from its own thread) train, evaluate,
     * generate and save exactly as one node of four ranks: the same losses bit for bit, and the same folder byte for
     * byte, which each node wrote its ranks' slices of; both nodes resume it and go on as one node does.
     */
    @Test
    void twoNodesOfTwoRanksTrainSaveAndResumeAsOneNodeOfFour(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        TrainingConfig tc = TrainingConfig.defaults(6).withLearningRate(5e-3, 5e-4);
        DataParallel.Job job = new DataParallel.Job(config(false), Precision.BF16, Checkpointing.DEVICE, tc, 9);
        int[] prompt = {3, 14, 15, 9};
        double[] losses = new double[3];
        double eval;
        int[] tokens;
        try (DataParallel one = DataParallel.onCpu(job, 4)) {
            for (int s = 0; s < 2; s++) {
                losses[s] = one.step(batches(s, 4)).loss();
            }
            eval = one.meanLoss(batches(9, 3));
            tokens = one.generate(prompt, 5);
            one.save(dir.resolve("one"));
        }
        try (DataParallel resumed = DataParallel.resumeOnCpu(dir.resolve("one"), 4)) {
            losses[2] = resumed.step(batches(2, 4)).loss();
        }
        var threads = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            List<dev.longtune.dist.Communicator> group = dev.longtune.dist.LocalCommunicator.group(4);
            List<DataParallel> nodes = onBothNodes(threads, () -> DataParallel.onCpuNode(job, group.subList(0, 2), 0, 4, null),
                    () -> DataParallel.onCpuNode(job, group.subList(2, 4), 2, 4, null));
            DataParallel a = nodes.get(0), b = nodes.get(1);
            for (int s = 0; s < 2; s++) {
                int step = s;
                assertThat(onBothNodes(threads, () -> a.step(batches(step, 4)).loss(), () -> b.step(batches(step, 4)).loss()))
                        .containsExactly(losses[s], losses[s]);
            }
            assertThat(onBothNodes(threads, () -> a.meanLoss(batches(9, 3)), () -> b.meanLoss(batches(9, 3))))
                    .containsExactly(eval, eval);
            List<int[]> generated = onBothNodes(threads, () -> a.generate(prompt, 5), () -> b.generate(prompt, 5));
            assertThat(generated.get(0)).containsExactly(tokens);
            assertThat(generated.get(1)).containsExactly(tokens);
            java.nio.file.Path two = dir.resolve("two");
            onBothNodes(threads, () -> {
                a.save(two);
                return null;
            }, () -> {
                b.save(two);
                return null;
            });
            // a run folder both nodes share: node 0 prepares the checkpoint's partial folder and moves it into place
            var runA = dev.longtune.run.RunFolder.open(dir.resolve("run"));
            var runB = dev.longtune.run.RunFolder.open(dir.resolve("run"));
            onBothNodes(threads, () -> runA.saveCheckpoint(2, 1, -1, a::save, dev.longtune.run.RunFolder.Sharing.FIRST_NODE),
                    () -> runB.saveCheckpoint(2, 1, -1, b::save, dev.longtune.run.RunFolder.Sharing.OTHER_NODE));
            assertThat(runA.latestCheckpoint()).contains(dir.resolve("run/checkpoints/step-000002"));
            try (var left = java.nio.file.Files.list(dir.resolve("run/checkpoints"))) {
                assertThat(left.map(f -> f.getFileName().toString())).containsExactly("step-000002");
            }
            assertThat(java.nio.file.Files.readAllBytes(dir.resolve("run/checkpoints/step-000002/optimizer.safetensors")))
                    .isEqualTo(java.nio.file.Files.readAllBytes(dir.resolve("one/optimizer.safetensors")));
            // a decision the nodes share: any node's flag holds for both
            assertThat(onBothNodes(threads, () -> a.onAnyNode(false), () -> b.onAnyNode(true))).containsExactly(true, true);
            assertThat(onBothNodes(threads, () -> a.onAnyNode(false), () -> b.onAnyNode(false))).containsExactly(false, false);
            a.close();
            b.close();
            try (var files = java.nio.file.Files.list(dir.resolve("one"))) {
                for (java.nio.file.Path f : files.toList()) {
                    assertThat(java.nio.file.Files.readAllBytes(two.resolve(f.getFileName()))).as(f.getFileName().toString())
                            .isEqualTo(java.nio.file.Files.readAllBytes(f));
                }
            }
            try (var files = java.nio.file.Files.list(two)) {
                assertThat(files.map(f -> f.getFileName().toString())).noneMatch(n -> n.endsWith(".partial"));
            }
            List<dev.longtune.dist.Communicator> again = dev.longtune.dist.LocalCommunicator.group(4);
            List<DataParallel> back = onBothNodes(threads, () -> DataParallel.onCpuNode(null, again.subList(0, 2), 0, 4, two),
                    () -> DataParallel.onCpuNode(null, again.subList(2, 4), 2, 4, two));
            assertThat(onBothNodes(threads, () -> back.get(0).step(batches(2, 4)).loss(), () -> back.get(1).step(batches(2, 4)).loss()))
                    .containsExactly(losses[2], losses[2]);
            back.get(0).close();
            back.get(1).close();
        } finally {
            threads.shutdownNow();
        }
    }

    /** Greedy generation on the sharded model (every rank gathering in step) chooses what the whole model chooses. */
    @ParameterizedTest(name = "tied={0}")
    @CsvSource({"false", "true"})
    void theShardedModelGeneratesAsTheWholeModel(boolean tied) throws Exception {
        int[] prompt = {3, 14, 15, 9, 26, 5};
        DataParallel.Job job = new DataParallel.Job(config(tied), Precision.FP32, Checkpointing.DEVICE,
                TrainingConfig.defaults(6), 9);
        try (DataParallel dp = DataParallel.onCpu(job, 3);
             LlamaModel whole = new LlamaModel(config(tied), new CpuDevice(), Precision.FP32, Checkpointing.DEVICE)) {
            whole.initialize(9);
            int[] expected = new dev.longtune.model.Generator(whole, java.util.Set.of()).generate(prompt, 10).tokens();
            assertThat(expected).hasSize(10);
            // the chat stop tokens lie outside this 37-token vocabulary, so all 10 come
            assertThat(dp.generate(prompt, 10)).containsExactly(expected);
            // the logits themselves, through the sharded store (rank 0's call, its peers running the same)
            assertThat(dp.generate(new int[] {7}, 1)).containsExactly(
                    new dev.longtune.model.Generator(whole, java.util.Set.of()).generate(new int[] {7}, 1).tokens());
        }
    }

    /** BF16 shards on the host (AdamW there too), one sequence per rank and step: the job the save/resume tests run. */
    static DataParallel.Job hostShards(boolean tied) throws Exception {
        TrainingConfig tc = TrainingConfig.defaults(6).withLearningRate(5e-3, 5e-4).withGradientAccumulation(1);
        return new DataParallel.Job(config(tied), Precision.BF16, Checkpointing.DEVICE, ParameterPlacement.HOST, tc, 9);
    }

    /**
     * Each rank's shards of the first layer and of the embedding kept on its device (updated by the device's AdamW,
     * their state there) train bit for bit as every shard offloaded, tied or not. A run saved with them carries none
     * (they were sized for its rank count): a resume keeps what it is given, on any rank count, and continues the
     * same bits.
     */
    @ParameterizedTest(name = "tied={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void residentShardsTrainAsOffloadedOnesBitForBit(boolean tied, @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        DataParallel.Job offloaded = hostShards(tied);
        List<Double> expected = new ArrayList<>();
        Map<String, float[]> expectedWeights;
        try (DataParallel dp = DataParallel.onCpu(offloaded, 2)) {
            for (int s = 0; s < 4; s++) {
                expected.add(dp.step(batches(s, 2)).loss());
            }
            expectedWeights = dp.weights();
        }
        try (DataParallel dp = DataParallel.onCpu(offloaded.withResident(1, true), 2)) {
            LlamaModel m = dp.rank(1).model();
            assertThat(m.residentLayers()).isEqualTo(1);
            assertThat(m.residentEmbedding()).isTrue();
            assertThat(m.isResident("model.layers.0.mlp.up_proj.weight")).isTrue();
            assertThat(m.isResident("model.layers.1.mlp.up_proj.weight")).isFalse();
            assertThat(dp.rank(1).overlapsUpdate()).as("the host AdamW still overlaps the next step").isTrue();
            for (int s = 0; s < 4; s++) {
                assertThat(dp.step(batches(s, 2)).loss()).as("step %d", s + 1).isEqualTo(expected.get(s));
                if (s == 1) {
                    dp.save(dir.resolve("ckpt"));
                }
            }
            dp.weights().forEach((name, w) -> assertThat(w).as(name).containsExactly(expectedWeights.get(name)));
        }
        try (DataParallel dp = DataParallel.resumeOnCpu(dir.resolve("ckpt"), 2)) {
            assertThat(dp.rank(0).model().residentLayers()).isZero();
            assertThat(dp.rank(0).model().residentEmbedding()).isFalse();
        }
        try (DataParallel dp = DataParallel.resumeOnCpu(dir.resolve("ckpt"), 2, 2, true)) {
            assertThat(dp.rank(0).model().residentLayers()).isEqualTo(2);
            assertThat(dp.rank(0).model().residentEmbedding()).isTrue();
            for (int s = 2; s < 4; s++) {
                assertThat(dp.step(batches(s, 2)).loss()).as("resumed, step %d", s + 1).isEqualTo(expected.get(s));
            }
        }
    }

    /**
     * A sharded run saved after 2 steps is a plain Hugging Face folder (the unsharded loader reads the same weights),
     * and resumed on 2 ranks, or on 1 rank with 2 micro-batches, it continues exactly as the uninterrupted run.
     */
    @Test
    void aShardedRunSavesAPlainCheckpointAndResumesOnAnotherRankCountBitForBit(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        DataParallel.Job job = hostShards(true);
        List<Double> uninterrupted = new ArrayList<>();
        Map<String, float[]> saved;
        try (DataParallel dp = DataParallel.onCpu(job, 2)) {
            for (int s = 0; s < 4; s++) {
                uninterrupted.add(dp.step(batches(s, 2)).loss());
                if (s == 1) {
                    dp.save(dir.resolve("ckpt"));
                    saved = dp.weights();
                    try (LlamaModel plain = dev.longtune.train.TrainingCheckpoint.loadModel(dir.resolve("ckpt"), new CpuDevice(),
                            Precision.BF16, Checkpointing.DEVICE)) {
                        saved.forEach((name, w) -> assertThat(plain.device().read(plain.weights().get(name))).as(name).containsExactly(w));
                    }
                }
            }
        }
        // each rank wrote its slices at their places: the files are the ones a single rank with two micro-batches
        // writes at the same step, byte for byte
        try (DataParallel one = DataParallel.onCpu(job, 1)) {
            for (int s = 0; s < 2; s++) {
                one.step(batches(s, 2));
            }
            one.save(dir.resolve("one"));
        }
        for (String file : new String[] {"model.safetensors", TrainingCheckpoint.OPTIMIZER, "config.json"}) {
            assertThat(java.nio.file.Files.readAllBytes(dir.resolve("ckpt").resolve(file))).as(file)
                    .isEqualTo(java.nio.file.Files.readAllBytes(dir.resolve("one").resolve(file)));
        }
        for (int ranks : new int[] {2, 1}) {
            try (DataParallel dp = DataParallel.resumeOnCpu(dir.resolve("ckpt"), ranks)) {
                assertThat(dp.step()).isEqualTo(2);
                assertThat(dp.ranks()).isEqualTo(ranks);
                for (int s = 2; s < 4; s++) {
                    assertThat(dp.step(batches(s, 2)).loss()).as("%d ranks, step %d", ranks, s + 1).isEqualTo(uninterrupted.get(s));
                }
            }
        }
    }

    /** Each rank draws only its slice of a large tensor's random blocks, and gets the values the whole model has. */
    @Test
    void eachRankInitialisesItsSliceOfALargeTensorAsTheWholeModelDoes() throws Exception {
        String json = """
                {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 64, "num_hidden_layers": 1,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 4100, "rope_theta": 10000.0,
                 "tie_word_embeddings": false}""";
        ModelConfig c = ModelConfig.parse("wide", new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
        assertThat(4100L * 4096).isGreaterThan(1L << 24); // the embedding is drawn in parallel blocks
        List<dev.longtune.dist.Communicator> ranks = dev.longtune.dist.LocalCommunicator.group(2);
        dev.longtune.model.ShardLayout layout = new dev.longtune.model.ShardLayout(c, 2);
        try (LlamaModel whole = new LlamaModel(c, new CpuDevice(), Precision.FP32, Checkpointing.DEVICE)) {
            whole.initialize(5);
            for (int r = 0; r < 2; r++) {
                try (LlamaModel rank = new LlamaModel(c, new CpuDevice(), Precision.FP32, Checkpointing.DEVICE,
                        ParameterPlacement.DEVICE, ranks.get(r))) {
                    rank.initialize(5);
                    for (String name : List.of("model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.weight")) {
                        dev.longtune.model.ShardLayout.Slice sl = layout.sliceOf(name, r);
                        if (sl == null) {
                            continue;
                        }
                        float[] expected = java.util.Arrays.copyOfRange(whole.weights().get(name).floats(), (int) sl.from(), (int) sl.to());
                        float[] got = rank.weights().get(name).floats();
                        // (AssertJ's element-wise diff of 8M floats takes minutes: compare, then name the first difference)
                        int differs = java.util.Arrays.mismatch(expected, got);
                        assertThat(differs).as("rank %d %s: first differing element of its slice [%d, %d)", r, name, sl.from(), sl.to())
                                .isEqualTo(-1);
                    }
                }
            }
        }
    }

    @Test
    void theLastLayerKeptTrainsAsRecomputedOnEveryRankBitForBit() throws Exception {
        // what `train --gpus N` turns on where the planner finds the room: the same bits as recomputing the last layer
        Run kept = train(2, 4, Precision.BF16, false, ParameterPlacement.DEVICE, true);
        Run recomputed = train(2, 4, Precision.BF16, false, ParameterPlacement.DEVICE, false);
        for (int s = 0; s < 3; s++) {
            assertThat(kept.steps().get(s).loss()).as("step %d", s + 1).isEqualTo(recomputed.steps().get(s).loss());
        }
        recomputed.weights().forEach((name, w) -> assertThat(kept.weights().get(name)).as(name).containsExactly(w));
    }

    /** {@code batches} with sequence {@code which} made one document whose first token is {@code id}. */
    static List<Batch> withFirstToken(List<Batch> batches, int which, int id) {
        List<Batch> out = new ArrayList<>(batches);
        int[] ids = out.get(which).ids().clone();
        ids[0] = id;
        out.set(which, Batch.ofDocument(ids));
        return out;
    }

    @Test
    void aRankThatFailsStopsItsPeersAtOnceWithItsOwnError(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        // rank 1 fails before its first collective while rank 0 waits in its first gather; the group's timeout is 10
        // minutes, so only the abort ends the wait
        TrainingConfig tc = TrainingConfig.defaults(2);
        try (DataParallel dp = DataParallel.onCpu(config(false), Precision.FP32, Checkpointing.DEVICE, tc, 2, 1)) {
            Batch heldOut = batches(0, 1).get(0);
            long start = System.nanoTime();
            Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> dp.onEveryRank(2, rank -> {
                if (rank == 1) {
                    throw new java.io.UncheckedIOException(new java.io.IOException("rank 1's disk is gone"));
                }
                return dp.rank(rank).model().loss(heldOut);
            }));
            assertThat((System.nanoTime() - start) / 1e9).as("seconds until the error").isLessThan(60);
            assertThat(t).isInstanceOf(java.io.UncheckedIOException.class).hasMessageContaining("rank 1's disk is gone");
            assertThat(t.getSuppressed()).singleElement().isInstanceOf(dev.longtune.dist.PeerFailedException.class)
                    .satisfies(peer -> assertThat(((dev.longtune.dist.PeerFailedException) peer).failedRank()).isEqualTo(1));
            // the ranks' states may now differ: the run refuses to go on, or to save, rather than hang or mix them
            assertThatThrownBy(() -> dp.step(batches(1, 2))).hasMessageContaining("rank 1's disk is gone")
                    .hasMessageContaining("start again from its last save");
            assertThatThrownBy(() -> dp.save(dir.resolve("mixed"))).hasMessageContaining("start again from its last save");
            assertThat(dir.resolve("mixed")).doesNotExist();
        }
    }

    @Test
    void aStepWithATokenOutsideTheVocabularyIsRefusedBeforeAnyRankStarts() throws Exception {
        TrainingConfig tc = TrainingConfig.defaults(3);
        try (DataParallel dp = DataParallel.onCpu(config(false), Precision.FP32, Checkpointing.DEVICE, tc, 2, 1)) {
            List<Batch> step = withFirstToken(batches(0, 2), 1, -3);
            assertThatThrownBy(() -> dp.step(step)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("token id -3 at position 0");
            // nor a held-out set or a prompt with such a token
            assertThatThrownBy(() -> dp.meanLoss(withFirstToken(batches(1, 3), 2, 37)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id 37 at position 0");
            assertThatThrownBy(() -> dp.generate(new int[] {1, 2, 999}, 2))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id 999 at position 2");
            // nothing ran, so the ranks go on together
            assertThat(dp.step(batches(0, 2)).loss()).isFinite().isPositive();
        }
    }

    @Test
    void batchesThatDoNotSplitOverTheRanksAreRefused() throws Exception {
        TrainingConfig tc = TrainingConfig.defaults(2);
        try (DataParallel dp = DataParallel.onCpu(config(false), Precision.FP32, Checkpointing.DEVICE, tc, 2, 1)) {
            assertThatThrownBy(() -> dp.step(batches(0, 3))).hasMessageContaining("3 sequences do not split evenly over 2 ranks");
        }
    }
}
