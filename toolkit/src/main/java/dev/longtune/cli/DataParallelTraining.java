package dev.longtune.cli;

import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.cuda.Cuda;
import dev.longtune.cuda.CudaOptions;
import dev.longtune.cuda.NcclCommunicator;
import dev.longtune.dist.Rendezvous;
import dev.longtune.data.LlamaTokenizer;
import dev.longtune.model.LlamaModel;
import dev.longtune.plan.Units;
import dev.longtune.run.RunFolder;
import dev.longtune.run.StopSignal;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.train.DataParallel;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.TrainingConfig;
import dev.longtune.train.TrainingData;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code train --gpus N}: ZeRO-3 data parallelism from one process, a thread per GPU (NCCL between them), or with
 * {@code --device cpu} N threads standing in for GPUs. Each step takes N × micro-batches sequences, rank r the r-th
 * block, so the run sees the data one GPU with N × micro-batches would. Prints each step with every GPU's peak
 * memory by category.
 */
final class DataParallelTraining {
    private final TrainCommand c;

    DataParallelTraining(TrainCommand c) { this.c = c; }

    /**
     * Trains; with {@code run} (from {@code --run-dir}) the steps go to its log, checkpoints (every rank writing its
     * slices) to its checkpoints folder as {@code --save-every}, {@code --save-every-minutes} and {@code --keep} say,
     * and a SIGTERM or SIGINT saves the step and exits with {@link StopSignal#EXIT_CODE}, as on one GPU.
     */
    int run(int gpus, PrintWriter out, RunFolder run) throws java.io.IOException {
        if (gpus < 1) {
            throw new IllegalArgumentException("--gpus " + gpus + ": give at least 1");
        }
        if (c.initFrom != null && c.resume != null) {
            throw new IllegalArgumentException("--init-from and --resume both say where the weights come from: give one");
        }
        TrainCommand.requireFolder("--init-from", c.initFrom, "a Hugging Face folder with config.json and safetensors");
        if (c.resume != null && (!java.nio.file.Files.isDirectory(c.resume))) {
            throw new IllegalArgumentException("--resume " + c.resume + ": no such folder (it takes a folder written by "
                    + "'train --save', with --gpus or without)");
        }
        if (c.optimizerPlacement() != Optimizer.Placement.HOST) {
            throw new IllegalArgumentException("--optimizer device does not work with --gpus yet: each rank's AdamW runs on the host");
        }
        boolean cuda = c.devices.wantsGpu();
        if (cuda && Cuda.deviceCount() < gpus) {
            throw new IllegalArgumentException("--gpus " + gpus + ": this machine has " + Cuda.deviceCount() + " GPU(s)"
                    + (Cuda.available() ? "" : " (" + Cuda.whyUnavailable() + ")") + "; lower --gpus, or use --device cpu "
                    + "for threads standing in for GPUs");
        }
        int tokens = Math.toIntExact(Units.parseTokens(c.context));
        if (tokens <= 0 || c.steps <= 0 || c.microBatches <= 0) {
            throw new IllegalArgumentException("--context, --steps and --micro-batches must be positive");
        }
        // --init-from: the folder's config.json says which model (as on one GPU)
        ModelConfig config = c.initFrom != null ? dev.longtune.io.HfCheckpoint.open(c.initFrom).config()
                : c.resume != null ? dev.longtune.io.HfCheckpoint.open(c.resume).config() : ModelCatalog.get(c.model);
        LlamaModel.requireSupported(config);
        // set-up phases with their times on stderr (--progress on): allocating, initialising and pinning the shards
        // takes minutes for the 8B
        LlamaModel.LayerListener phases = LayerProgress.of(c.progress, c.spec.commandLine().getErr());
        long started = System.nanoTime();
        Precision p = Precision.parse(c.precision);
        TrainingConfig training = TrainingConfig.defaults(c.steps).withLearningRate(c.lr, c.lr / 10)
                .withGradientAccumulation(c.microBatches).withSeed(c.seed);
        DataParallel.Job job = new DataParallel.Job(config, p, c.checkpointing(), c.parameterPlacement(), training, c.seed);
        if (c.initFrom != null) {
            job = job.withInitFrom(c.initFrom);
        }
        // each rank's shards of the first layers (and of the embedding) on its GPU, updated there
        c.resolveResidentLayers(config, cuda, p, tokens);
        job = job.withResident(c.residentLayers(), c.residentEmbedding());
        if (c.evalEvery != null && (c.evalEvery <= 0 || c.evalExamples <= 0)) {
            throw new IllegalArgumentException("--eval-every and --eval-examples must be positive");
        }
        // held-out examples, as on one GPU: they never enter training
        LayerProgress.setup(phases, started, "data: " + c.data + ", " + c.examples + " examples of " + tokens + " tokens");
        List<TrainingData> split = TrainingData.split(c.data, LlamaTokenizer.llama31(), config.vocabSize(), tokens, c.examples,
                c.evalEvery == null ? 0 : c.evalExamples, c.seed);
        TrainingData data = split.get(0), evalData = split.size() > 1 ? split.get(1) : null;
        Rendezvous.Node node = Rendezvous.Node.fromEnvironment(System.getenv(), gpus);
        int world = node == null ? gpus : node.worldSize();
        // several nodes share the run folder (a shared filesystem): node 0 writes its config, log and best, every node
        // its ranks' slices of each checkpoint
        boolean writesRun = node == null || node.nodeRank() == 0;
        LayerProgress.setup(phases, started, (c.resume != null ? "resuming from " + c.resume : "allocating and "
                + (c.initFrom != null ? "loading " + c.initFrom + " into " : "initialising ") + config.name()) + " on " + gpus + (cuda ? " GPU(s)" : " CPU rank(s)")
                + " (shards, optimizer state)");
        int kept = KeptAttention.parse(c.keepAttention, config.numLayers());
        if (kept == KeptAttention.AUTO) {
            throw new IllegalArgumentException("--keep-attention auto is for one GPU: with --gpus give all or a number of "
                    + "layers (longtune plan --gpus " + gpus + " --keep-attention N shows the host memory each needs)");
        }
        try (DataParallel dp = open(job, gpus, cuda, node); StopSignal stop = StopSignal.install()) {
            LayerProgress.setup(phases, started, "set up; training");
            for (int r = 0; kept > 0 && r < dp.ranks(); r++) {
                dp.rank(r).model().setKeptAttentionLayers(kept); // before the run's config, which records it
            }
            if (c.prefetchFits(dp.rank(0).model(), cuda, p, tokens)) {
                for (int r = 0; r < dp.ranks(); r++) {
                    dp.rank(r).model().setPrefetchCheckpoints(true);
                }
                c.spec.commandLine().getErr().println("longtune train: offloaded checkpoints come back a layer ahead in "
                        + "backward (each GPU has the room for one more, by the planner)");
            }
            if (c.lastLayerFits(dp.rank(0).model(), cuda, p, tokens)) {
                for (int r = 0; r < dp.ranks(); r++) {
                    dp.rank(r).model().setKeepLastLayer(true);
                }
                c.spec.commandLine().getErr().println("longtune train: the last layer keeps its saved tensors for its "
                        + "backward, which does not recompute it (each GPU has the room, by the planner)");
            }
            if (run != null && writesRun) {
                if (!run.started()) {
                    Map<String, Object> runConfig = c.runConfig(dp.rank(0), p, dp.rank(0).model().device());
                    runConfig.put("gpus", gpus);
                    run.writeConfig(runConfig);
                } else {
                    run.truncateLogAfter(dp.step()); // steps after the checkpoint died with the process that ran them
                }
            }
            if (run != null) {
                RunFolder.requireRoomForCheckpoints(run.dir(), dp.rank(0), c.keep);
            }
            if (c.tile != null) {
                for (int r = 0; r < dp.ranks(); r++) {
                    dp.rank(r).model().setSequenceTile(c.tile);
                }
            }
            if (!c.json) {
                out.printf(Locale.ROOT, "%s (%,d parameters), ZeRO-3 over %d %s, %s, shards on the %s, checkpointing %s; "
                                + "%d sequences of %,d tokens, %d per step%n", config.name(), config.totalParameters(), gpus,
                        cuda ? "GPUs (NCCL)" : "CPU ranks", p.id, c.parameterPlacement().id, c.checkpointing().id,
                        data.batches().size(), tokens, world * c.microBatches);
                if (node != null) {
                    out.printf(Locale.ROOT, "node %d of %d: global ranks %d-%d of %d%n", node.nodeRank(), node.nodes(),
                            node.rank(0), node.rank(gpus - 1), world);
                }
            }
            double first = Double.NaN, last = Double.NaN, tokensPerSecond = 0;
            int from = dp.step();
            // with a run folder --steps is the run's total; otherwise it counts on from where the run stands
            int target = run != null ? c.steps : from + c.steps;
            long lastSave = System.nanoTime();
            double bestEval = Double.POSITIVE_INFINITY;
            int bestStep = -1;
            if (run != null && run.best().isPresent()) {
                bestStep = ((Number) run.best().get().get("step")).intValue();
                bestEval = ((Number) run.best().get().get("eval_loss")).doubleValue();
            }
            // model FLOPs utilisation per GPU against its datasheet peak (none on CPU ranks, or in FP32): the step's
            // documents over every rank of every node
            java.util.OptionalDouble peakTflops = dp.rank(0).model().device() instanceof dev.longtune.cuda.CudaDevice g
                    ? dev.longtune.train.Mfu.peakTflops(g.gpuName(), p) : java.util.OptionalDouble.empty();
            for (int step = from + 1; step <= target; step++) {
                // --profile-memory: rank 0's device and host memory at every allocation through the second step
                // (the ranks hold the same shares, up to the padding of the last rank's slices)
                boolean profile = c.profileMemory && step == Math.min(from + 2, target);
                var timeline = profile ? dev.longtune.report.MemoryTimeline.record(dp.rank(0).model()) : null;
                List<StepResult> ranks;
                List<dev.longtune.model.Batch> stepBatches = data.forStep(step, world * c.microBatches);
                try {
                    ranks = dp.stepAll(stepBatches);
                } finally {
                    if (timeline != null) {
                        timeline.close();
                    }
                }
                if (timeline != null) {
                    LayerProgress.setup(phases, started, "memory timeline of step " + step + " (rank 0) in "
                            + TrainCommand.writeTimeline(timeline, run));
                }
                StepResult r = ranks.get(0);
                Double evalLoss = evalData != null && (step % c.evalEvery == 0 || step >= target)
                        ? dp.meanLoss(evalData.batches()) : null;
                // citations: greedy answers to held-out questions (every rank generating in step), as on one GPU
                Double citationF1 = evalLoss != null && c.evalCitations > 0 && !evalData.questions().isEmpty()
                        ? dev.longtune.train.CitationEvaluation.score(evalData.questions().subList(0,
                                Math.min(c.evalCitations, evalData.questions().size())), LlamaTokenizer.llama31(),
                                prompt -> dp.generate(prompt, 96)).f1() : null;
                boolean newBest = evalLoss != null && evalLoss < bestEval;
                if (newBest) {
                    bestEval = evalLoss;
                    bestStep = step;
                }
                first = Double.isNaN(first) ? r.loss() : first;
                last = r.loss();
                tokensPerSecond = r.tokensPerSecond();
                if (c.json) {
                    Map<String, Object> line = r.toJson();
                    line.remove("memory");
                    line.remove("host_memory");
                    line.put("gpus", gpus);
                    if (peakTflops.isPresent()) {
                        line.put("mfu", dev.longtune.train.Mfu.ofStep(config, stepBatches, r.seconds(),
                                peakTflops.getAsDouble() * world));
                    }
                    if (evalLoss != null) {
                        line.put("eval_loss", evalLoss);
                    }
                    if (citationF1 != null) {
                        line.put("citation_f1", citationF1);
                    }
                    line.put("ranks", perRank(dp, ranks));
                    out.println(Json.line(line));
                } else {
                    long worst = 0;
                    for (StepResult x : ranks) {
                        worst = Math.max(worst, x.devicePeak().values().stream().mapToLong(Long::longValue).sum());
                    }
                    out.printf(Locale.ROOT, "step %d  loss %.4f  lr %.2e  grad norm %.3f  %,.0f tokens/s over %d ranks  %.2f s "
                                    + "(%.2f s computing, %.2f s waiting for collectives of %.2f s, %.0f%% hidden)  peak %s per rank "
                                    + "(the largest)%n", r.step(), r.loss(),
                            r.learningRate(), r.gradNorm(), r.tokensPerSecond(), gpus, r.seconds(), r.busySeconds(),
                            r.collectiveSeconds(), r.communicationSeconds(),
                            Double.isNaN(r.collectiveOverlap()) ? 0 : 100 * r.collectiveOverlap(), Units.human(worst));
                    if (evalLoss != null) {
                        out.printf(Locale.ROOT, "       eval loss %.4f (held-out, %d sequences)%s%s%n", evalLoss,
                                evalData.batches().size(), citationF1 == null ? "" : String.format(Locale.ROOT,
                                        "  citation F1 %.3f", citationF1), newBest ? "  best so far" : "");
                    }
                }
                out.flush();
                if (run != null) {
                    Map<String, Object> line = r.toJson(); // rank 0's peaks, as the one-GPU log has them
                    line.put("gpus", gpus);
                    if (evalLoss != null) {
                        line.put("eval_loss", evalLoss);
                    }
                    if (citationF1 != null) {
                        line.put("citation_f1", citationF1);
                    }
                    line.put("time", java.time.Instant.now().toString());
                    if (writesRun) {
                        run.log(line);
                    }
                    // a clock or a signal may differ between nodes: they decide together
                    boolean due = dp.onAnyNode(step >= target || stop.received() != null || newBest
                            || c.saveEvery != null && step % c.saveEvery == 0
                            || c.saveEveryMinutes != null && System.nanoTime() - lastSave >= c.saveEveryMinutes * 60e9);
                    if (due) {
                        run.saveCheckpoint(step, c.keep, bestStep, dp::save, node == null ? RunFolder.Sharing.ALONE
                                : writesRun ? RunFolder.Sharing.FIRST_NODE : RunFolder.Sharing.OTHER_NODE);
                        if (newBest && writesRun) {
                            run.writeBest(bestStep, bestEval); // after its checkpoint is complete
                        }
                        lastSave = System.nanoTime();
                    }
                }
                if (node != null ? dp.onAnyNode(stop.received() != null) : stop.received() != null) { // every node stops
                    if (stop.received() == null) {
                        c.spec.commandLine().getErr().println("another node was stopped: stopping with it");
                    }
                    if (c.save != null) {
                        dp.save(c.save);
                    }
                    if (run != null && writesRun) {
                        c.plots(run);
                    }
                    c.spec.commandLine().getErr().printf(Locale.ROOT, "stopped by SIG%s after step %d: %s%n",
                            stop.received() != null ? stop.received() : "TERM (on another node)",
                            dp.step(), run != null ? "resume with --run-dir " + c.runDir + " --resume latest --gpus " + gpus
                                    : c.save != null ? "saved to " + c.save : "nothing saved (no --run-dir or --save)");
                    c.spec.commandLine().getErr().flush();
                    return StopSignal.EXIT_CODE;
                }
            }
            if (run != null && writesRun) {
                c.plots(run);
            }
            if (c.save != null) {
                try {
                    dp.save(c.save);
                } catch (java.io.IOException e) {
                    throw new IllegalStateException("--save " + c.save + ": " + e.getMessage(), e);
                }
            }
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("steps", dp.step());
            summary.put("saved", c.save == null ? null : c.save.toString());
            summary.put("gpus", gpus);
            summary.put("first_loss", first);
            summary.put("last_loss", last);
            summary.put("tokens_per_s", Math.round(tokensPerSecond * 10) / 10.0);
            if (c.json) {
                out.println(Json.line(Map.of("summary", summary)));
            } else {
                out.printf(Locale.ROOT, "done: loss %.4f -> %.4f on %d ranks%n", first, last, gpus);
            }
        }
        return 0;
    }

    /**
     * The ranks of this process: its GPUs over NCCL (meeting the other nodes first when the launcher's variables say
     * there are several), or CPU threads.
     */
    private DataParallel open(DataParallel.Job job, int gpus, boolean cuda, Rendezvous.Node node) {
        CudaOptions options = c.devices.cudaOptions();
        if (node == null && c.resume != null) {
            try {
                // the command line's resident layers (auto sized for these GPUs), not the saved run's
                return cuda ? DataParallel.resumeOnGpus(c.resume, gpus, options, NcclCommunicator.newId(), 0, gpus,
                        c.residentLayers(), c.residentEmbedding())
                        : DataParallel.resumeOnCpu(c.resume, gpus, c.residentLayers(), c.residentEmbedding());
            } catch (java.io.IOException e) {
                throw new IllegalArgumentException("--resume " + c.resume + ": " + e.getMessage(), e);
            }
        }
        if (node == null) {
            return cuda ? DataParallel.onGpus(job, gpus, options) : DataParallel.onCpu(job, gpus);
        }
        if (!cuda) {
            throw new IllegalArgumentException("NNODES=" + node.nodes() + ": several nodes meet over NCCL, on GPUs; "
                    + "unset NNODES to train with CPU ranks");
        }
        if (node.gpusPerNode() != gpus) {
            throw new IllegalArgumentException("GPUS_PER_NODE=" + node.gpusPerNode() + " but --gpus " + gpus + ": give the same");
        }
        byte[] mine = node.nodeRank() == 0 ? NcclCommunicator.bytes(NcclCommunicator.newId()) : null;
        byte[] id = Rendezvous.meet(node, configurationDigest(c, gpus), mine,
                rendezvousTimeout(System.getenv().getOrDefault("LONGTUNE_RENDEZVOUS_TIMEOUT", "600")));
        try {
            // --resume and --save: a folder every node reaches (a shared filesystem)
            return c.resume != null
                    ? DataParallel.resumeOnGpus(c.resume, gpus, options, NcclCommunicator.fromBytes(id), node.rank(0), node.worldSize(),
                            c.residentLayers(), c.residentEmbedding())
                    : DataParallel.onGpus(job, gpus, options, NcclCommunicator.fromBytes(id), node.rank(0), node.worldSize());
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("--resume " + c.resume + ": " + e.getMessage(), e);
        }
    }

    /**
     * A digest of what every node of a run must agree on: what it trains and how (the data split, the stack, the
     * collectives every node must issue alike: held-out passes, the run folder's saves and their timing, the
     * kernels). The run folder's path may differ between nodes, its presence may not.
     */
    static String configurationDigest(TrainCommand c, int gpus) {
        return Rendezvous.digest(String.join("|", c.model, c.data, c.context, c.precision, String.valueOf(c.offload),
                String.valueOf(c.checkpointing), String.valueOf(c.seed), String.valueOf(c.steps), String.valueOf(c.microBatches),
                String.valueOf(c.lr), String.valueOf(c.examples), String.valueOf(gpus), String.valueOf(c.tile), String.valueOf(c.keepAttention),
                String.valueOf(c.initFrom), String.valueOf(c.save), String.valueOf(c.resume), String.valueOf(c.evalEvery),
                String.valueOf(c.evalCitations), String.valueOf(c.residentLayers), String.valueOf(c.residentEmbedding),
                String.valueOf(c.evalExamples), String.valueOf(c.runDir != null), String.valueOf(c.saveEvery),
                String.valueOf(c.saveEveryMinutes), String.valueOf(c.keep), String.valueOf(c.keepLastLayer),
                String.valueOf(c.devices.kernelsAs)));
    }

    /** LONGTUNE_RENDEZVOUS_TIMEOUT: how long node 0 waits for the others, and they for it, in seconds. */
    static java.time.Duration rendezvousTimeout(String seconds) {
        try {
            long s = Long.parseLong(seconds.strip());
            if (s > 0) {
                return java.time.Duration.ofSeconds(s);
            }
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new IllegalArgumentException("LONGTUNE_RENDEZVOUS_TIMEOUT=" + seconds + ": give the seconds the nodes wait "
                + "for each other, a positive whole number (default 600)");
    }

    /** Each rank's device and host peaks by category in the step (and its GPU allocator's figures). */
    private static List<Map<String, Object>> perRank(DataParallel dp, List<StepResult> results) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (int r = 0; r < results.size(); r++) {
            Map<String, Object> rank = new LinkedHashMap<>();
            var device = dp.rank(r).model().device();
            rank.put("rank", r);
            rank.put("device", device.name());
            rank.put("memory", byCategory(results.get(r).devicePeak()));
            rank.put("host_memory", byCategory(results.get(r).hostPeak()));
            if (device instanceof dev.longtune.cuda.CudaDevice gpu) {
                rank.put("gpu_allocator", gpu.memorySummary());
            }
            out.add(rank);
        }
        return out;
    }

    private static Map<String, Object> byCategory(Map<MemoryCategory, Long> peaks) {
        Map<String, Object> m = new LinkedHashMap<>();
        peaks.forEach((k, v) -> m.put(k.id, v));
        return m;
    }
}
