package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.data.LlamaTokenizer;
import dev.longtune.device.Device;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.plan.Units;
import dev.longtune.report.MemoryTimeline;
import dev.longtune.run.RunFolder;
import dev.longtune.run.RunPlots;
import dev.longtune.run.StopSignal;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingCheckpoint;
import dev.longtune.train.TrainingConfig;
import dev.longtune.train.TrainingData;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Full-parameter training of a Llama model on the CPU or a GPU (--device), from random weights, --init-from a Hugging Face folder or --resume a saved run.")
public class TrainCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Mixin DeviceOptions devices = new DeviceOptions();

    @Option(names = "--model", defaultValue = "tiny-llama-3", description = "preset or config.json; default ${DEFAULT-VALUE}")
    String model;

    @Option(names = "--data", defaultValue = TrainingData.SYNTHETIC, description = "synthetic-longcite, random-document (one random full-length document per sequence: what a benchmark against full-length sequences needs) or a LongCite .jsonl file; default ${DEFAULT-VALUE}")
    String data;

    @Option(names = "--context", defaultValue = "2048", description = "tokens per packed sequence; default ${DEFAULT-VALUE}")
    String context;

    @Option(names = "--steps", defaultValue = "10", description = "optimizer steps; default ${DEFAULT-VALUE}")
    int steps;

    @Option(names = "--precision", defaultValue = "bf16", description = "fp32, fp16 or bf16; default ${DEFAULT-VALUE}")
    String precision;

    @Option(names = "--checkpointing", description = "none, device or offload; default device (offload with --offload checkpoints)")
    String checkpointing;

    @Option(names = "--offload", split = ",", paramLabel = "WHAT",
            description = "what lives in host memory: parameters (weights and gradients, a layer at a time on the GPU; "
                    + "implies optimizer), optimizer (FP32 master weights and AdamW state, AdamW on the CPU), "
                    + "checkpoints (layer inputs); e.g. --offload parameters,optimizer,checkpoints")
    java.util.List<String> offload = java.util.List.of();

    @Option(names = "--micro-batches", defaultValue = "1", description = "micro-batches per step (gradient accumulation); default ${DEFAULT-VALUE}")
    int microBatches;

    @Option(names = "--lr", defaultValue = "3e-4", description = "peak learning rate; default ${DEFAULT-VALUE}")
    double lr;

    @Option(names = "--examples", defaultValue = "8", description = "synthetic examples to generate; default ${DEFAULT-VALUE}")
    int examples;

    @Option(names = "--seed", defaultValue = "1234", description = "seed for initialisation and data; default ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--save", description = "save weights, optimizer state and step here at the end") Path save;

    @Option(names = "--resume", description = "continue from a folder written by --save, or 'latest': the newest complete checkpoint of --run-dir") Path resume;

    @Option(names = "--run-dir", description = "a run folder: config.json, log.jsonl (a line per step), checkpoints/ (--save-every), plots at the end; --steps counts the run's total")
    Path runDir;

    @Option(names = "--save-every", description = "with --run-dir: a checkpoint every N steps (and always at the end)") Integer saveEvery;

    @Option(names = "--save-every-minutes", description = "with --run-dir: a checkpoint when M minutes have passed since the last") Double saveEveryMinutes;

    @Option(names = "--eval-every", description = "evaluate the loss on held-out examples every N steps (and at the end); with --run-dir the best checkpoint is kept too")
    Integer evalEvery;

    @Option(names = "--eval-examples", defaultValue = "2", description = "with --eval-every: examples held out for evaluation (never packed with training ones); default ${DEFAULT-VALUE}")
    int evalExamples;

    @Option(names = "--eval-citations", defaultValue = "0", description = "with --eval-every: also generate answers for N held-out examples and score their citations (F1) against the planted facts (synthetic-longcite) or what the reference answer cites (a LongCite .jsonl); default ${DEFAULT-VALUE}")
    int evalCitations;

    @Option(names = "--profile-memory", description = "record device and host memory by category at every allocation through the second step (the first, if only one): memory-timeline.csv and -device/-host .png/.svg, in --run-dir or the working folder")
    boolean profileMemory;

    @Option(names = "--keep", defaultValue = "3", description = "with --run-dir: complete checkpoints kept, the newest; default ${DEFAULT-VALUE}") int keep;

    @Option(names = "--init-from", description = "start from the weights of a Hugging Face folder (config.json + safetensors) instead of random ones")
    Path initFrom;

    @Option(names = "--optimizer",
            description = "where AdamW's FP32 master weights and moments live: host (ZeRO-offload, AdamW on the CPU) or device; default host")
    String optimizer;

    @Option(names = "--gpus", description = "ZeRO-3 data parallelism over the first N GPUs (NCCL), one thread each; with --device cpu, N threads standing in for GPUs")
    Integer gpus;

    @Option(names = "--tile", paramLabel = "TOKENS",
            description = "run each layer's MLP over tiles of this many tokens (sequence tiling, e.g. 8192): its wide tensors "
                    + "(T × intermediate) then take one tile's room instead of the context's; same results; default untiled")
    Integer tile;

    @Option(names = "--keep-attention", arity = "0..1", fallbackValue = "all", paramLabel = "LAYERS",
            description = "with offloaded checkpoints, also offload each layer's attention output and lse, so that backward's "
                    + "recompute skips attention (long context: faster, at T·(heads·head dim·2 + heads·4) bytes of host memory a layer); "
                    + "same results. all (the option alone), a number of layers (the first ones), or auto: as many as the "
                    + "host's memory holds by the planner (one GPU)")
    String keepAttention;

    @Option(names = "--keep-last-layer", negatable = true,
            description = "under checkpointing, the last layer's saved tensors stay on the GPU through the loss and its "
                    + "backward does not recompute it (one layer's forward less a step, one layer's saved tensors more "
                    + "during the loss); same results. Default: on where the GPU (or its --gpu-memory-cap) has the room "
                    + "by the planner; --no-keep-last-layer turns it off")
    Boolean keepLastLayer;

    @Option(names = "--resident-layers", paramLabel = "N|auto",
            description = "with --offload parameters: the first N decoder layers stay on the GPU with their AdamW state "
                    + "(with --gpus, each GPU's shards of them), updated there, so that the host AdamW has N fewer layers "
                    + "to finish before the next forward reaches them (short contexts, where the host optimizer is slower "
                    + "than the forward); 16 bytes of GPU memory per parameter (3.25 GiB per Llama 3.1 8B layer, divided "
                    + "by the GPUs with --gpus): see plan --resident-layers N; auto: as many as each GPU (its "
                    + "--gpu-memory-cap) holds by the planner; same results to round-off; default 0")
    String residentLayers;

    /** --resident-layers resolved against the model (and, for auto, the GPU's memory); null until then. */
    private Integer residentResolved;

    @Option(names = "--resident-embedding",
            description = "with --offload parameters: the embedding matrix stays on the GPU with its AdamW state (with "
                    + "--gpus, each GPU's shard of it), so that the next step's forward starts without waiting for the "
                    + "host's update of it (8 GiB for Llama 3.1 8B's 128,256 × 4,096, divided by the GPUs with --gpus; "
                    + "one GPU: untied embeddings only); see plan --resident-embedding")
    boolean residentEmbedding;

    /** --keep-attention resolved against the model (and, for auto, the host's memory); null until then. */
    private Integer keptLayers;

    @Option(names = "--host-ram", description = "the host RAM to plan for (e.g. 256GiB) where the machine reports less than it has (a container); default: what /proc/meminfo reports")
    String hostRam;

    @Option(names = "--json", description = "one JSON object per step, then a summary") boolean json;

    @Option(names = "--progress", defaultValue = "auto", description = "per-layer forward/backward progress on stderr: on, off or auto (a console); default ${DEFAULT-VALUE}")
    String progress;

    @Override
    public Integer call() throws Exception {
        RunFolder run = openRun();
        if (!devices.kernelsNote().isEmpty()) {
            spec.commandLine().getErr().println("longtune train: " + devices.kernelsNote());
        }
        if (gpus != null) {
            return new DataParallelTraining(this).run(gpus, spec.commandLine().getOut(), run);
        }
        try (Device device = devices.open(model, Units.parseTokens(context))) {
            return run(device, run);
        }
    }

    /**
     * The run folder, if any: a new run starts in an empty one; {@code --resume latest} continues the run in it from
     * its newest complete checkpoint, with the run's own model, data and length (an option given on the command line
     * that disagrees with the run is an error).
     */
    RunFolder openRun() throws java.io.IOException {
        if (runDir == null) {
            if (saveEvery != null || saveEveryMinutes != null || "latest".equals(String.valueOf(resume))) {
                throw new IllegalArgumentException("--save-every, --save-every-minutes and --resume latest need --run-dir (the run folder)");
            }
            return null;
        }
        if (saveEvery != null && saveEvery <= 0 || saveEveryMinutes != null && !(saveEveryMinutes > 0) || keep < 1) {
            throw new IllegalArgumentException("--save-every, --save-every-minutes and --keep must be positive");
        }
        RunFolder run = RunFolder.open(runDir);
        if ("latest".equals(String.valueOf(resume))) {
            if (!run.started()) {
                throw new IllegalArgumentException("--resume latest: " + runDir + " holds no run (no config.json): start it without --resume");
            }
            resume = run.latestCheckpoint().orElseThrow(() -> new IllegalArgumentException("--resume latest: no complete "
                    + "checkpoint in " + runDir.resolve(RunFolder.CHECKPOINTS) + " yet: start the run again without --resume"));
            Map<String, Object> c = run.config();
            model = adopt("--model", model, String.valueOf(c.get("model")));
            data = adopt("--data", data, String.valueOf(c.get("data")));
            context = adopt("--context", context, String.valueOf(c.get("context")));
            examples = Integer.parseInt(adopt("--examples", String.valueOf(examples), String.valueOf(c.get("examples"))));
            seed = Long.parseLong(adopt("--seed", String.valueOf(seed), String.valueOf(c.get("seed"))));
            var given = spec.commandLine().getParseResult();
            if (!given.hasMatchedOption("--steps")) {
                steps = ((Number) c.get("steps")).intValue(); // the run's total; --steps given extends it
            }
            // how it saves, unless this command line says otherwise
            if (!given.hasMatchedOption("--save-every") && c.get("save_every") instanceof Number n) {
                saveEvery = n.intValue();
            }
            if (!given.hasMatchedOption("--save-every-minutes") && c.get("save_every_minutes") instanceof Number n) {
                saveEveryMinutes = n.doubleValue();
            }
            if (!given.hasMatchedOption("--keep") && c.get("keep") instanceof Number n) {
                keep = n.intValue();
            }
            // the MLP's sequence tiles: the run's, unless this command line gives others (same results either way)
            if (!given.hasMatchedOption("--tile") && c.get("tile") instanceof Number n) {
                tile = n.intValue();
            }
            if (!given.hasMatchedOption("--resident-layers") && c.get("resident_layers") instanceof Number n && n.intValue() > 0) {
                residentLayers = String.valueOf(n.intValue()); // the run's resolved count, auto included
            }
            if (!given.hasMatchedOption("--resident-embedding") && Boolean.TRUE.equals(c.get("resident_embedding"))) {
                residentEmbedding = true;
            }
            if (!given.hasMatchedOption("--keep-attention")) {
                if (c.get("keep_attention") instanceof Boolean b) { // runs before partial keeping: all or none
                    keepAttention = b ? "all" : null;
                } else if (c.get("keep_attention") instanceof Number n && n.intValue() > 0) {
                    keepAttention = String.valueOf(n.intValue());
                }
            }
            // the held-out split decides the training data: it is the run's
            evalExamples = Integer.parseInt(adopt("--eval-examples", String.valueOf(evalExamples), String.valueOf(c.get("eval_examples"))));
            if (!given.hasMatchedOption("--eval-citations") && c.get("eval_citations") instanceof Number n) {
                evalCitations = n.intValue();
            }
            if (!given.hasMatchedOption("--eval-every") && c.get("eval_every") instanceof Number n) {
                evalEvery = n.intValue();
            } else if (evalEvery != null && c.get("eval_every") == null) {
                throw new IllegalArgumentException("--eval-every: the run was started without it, and holding examples out "
                        + "now would change its training data; start a new run to evaluate");
            }
        } else if (run.started() && !laterNode()) { // a later node may already see node 0's config of this very run
            throw new IllegalArgumentException("--run-dir " + runDir + " already holds a run: continue it with --resume latest, "
                    + "or give a new folder");
        }
        return run;
    }

    /** This process is a node other than the first of a run over several nodes (NODE_RANK > 0 with --gpus). */
    private boolean laterNode() {
        if (gpus == null) {
            return false;
        }
        var node = dev.longtune.dist.Rendezvous.Node.fromEnvironment(System.getenv(), gpus);
        return node != null && node.nodeRank() > 0;
    }

    /** The run's value of an option, unless the command line gave a different one. */
    private String adopt(String option, String given, String ofRun) {
        if (spec.commandLine().getParseResult().hasMatchedOption(option) && !given.equals(ofRun)) {
            throw new IllegalArgumentException(option + " " + given + " differs from the run's " + ofRun + " (" + runDir
                    + "/" + RunFolder.CONFIG + "): drop it to resume the run");
        }
        return ofRun;
    }

    private Integer run(Device device, RunFolder run) throws Exception {
        var out = spec.commandLine().getOut();
        int tokens = Math.toIntExact(Units.parseTokens(context));
        if (tokens <= 0 || steps <= 0 || microBatches <= 0) {
            throw new IllegalArgumentException("--context, --steps and --micro-batches must be positive");
        }
        requireFolder("--resume", resume, "a folder written by 'train --save', or 'latest' with --run-dir");
        requireFolder("--init-from", initFrom, "a Hugging Face folder with config.json and safetensors");
        Trainer trainer;
        Precision p;
        // stderr, so that stdout (and --json) stays clean
        LlamaModel.LayerListener layers = LayerProgress.of(progress, spec.commandLine().getErr());
        long started = System.nanoTime();
        if (resume != null) {
            LayerProgress.setup(layers, started, "resuming from " + resume);
            trainer = TrainingCheckpoint.resume(resume, device);
            p = Precision.parse(precisionOf(trainer.model()));
        } else {
            p = Precision.parse(precision);
            LlamaModel m;
            if (initFrom != null) {
                resolveResidentLayers(dev.longtune.io.HfCheckpoint.open(initFrom).config(), device instanceof dev.longtune.cuda.CudaDevice, p, tokens);
                LayerProgress.setup(layers, started, "loading " + initFrom);
                m = TrainingCheckpoint.loadModel(initFrom, device, p, checkpointing(), parameterPlacement(), residentLayers(),
                        residentEmbedding());
            } else {
                ModelConfig config = ModelCatalog.get(model);
                LlamaModel.requireSupported(config);
                resolveResidentLayers(config, device instanceof dev.longtune.cuda.CudaDevice, p, tokens);
                requireHostMemory(config, device, p, tokens);
                LayerProgress.setup(layers, started, "allocating " + config.name() + " (parameters on the "
                        + parameterPlacement().id + ")");
                m = residentLayers() > 0 || residentEmbedding()
                        ? new LlamaModel(config, device, p, checkpointing(), residentLayers(), residentEmbedding())
                        : new LlamaModel(config, device, p, checkpointing(), parameterPlacement());
                LayerProgress.setup(layers, started, "random initialisation");
                m.initialize(seed);
            }
            LayerProgress.setup(layers, started, "optimizer state (on the " + optimizerPlacement().id + ")");
            trainer = new Trainer(m, TrainingConfig.defaults(steps).withLearningRate(lr, lr / 10)
                    .withGradientAccumulation(microBatches).withSeed(seed), p, optimizerPlacement());
        }
        if (tile != null) {
            trainer.model().setSequenceTile(tile);
        }
        int kept = keptAttentionLayers(trainer.model().config(), device, p, tokens);
        if (kept > 0) {
            trainer.model().setKeptAttentionLayers(kept);
        }
        if (prefetchFits(trainer.model(), device instanceof dev.longtune.cuda.CudaDevice, p, tokens)) {
            trainer.model().setPrefetchCheckpoints(true);
            spec.commandLine().getErr().println("longtune train: offloaded checkpoints come back a layer ahead in backward "
                    + "(the GPU has the room for one more, by the planner)");
        }
        if (lastLayerFits(trainer.model(), device instanceof dev.longtune.cuda.CudaDevice, p, tokens)) {
            trainer.model().setKeepLastLayer(true);
            spec.commandLine().getErr().println("longtune train: the last layer keeps its saved tensors for its backward, "
                    + "which does not recompute it (the GPU has the room, by the planner; --no-keep-last-layer to turn off)");
        }
        LayerProgress.setup(layers, started, "set up; training");
        try (trainer; StopSignal stop = StopSignal.install()) {
            if (evalEvery != null && (evalEvery <= 0 || evalExamples <= 0)) {
                throw new IllegalArgumentException("--eval-every and --eval-examples must be positive");
            }
            var tokenizer = LlamaTokenizer.llama31();
            List<TrainingData> split = TrainingData.split(data, tokenizer, trainer.model().config().vocabSize(), tokens,
                    examples, evalEvery == null ? 0 : evalExamples, seed);
            TrainingData trainingData = split.get(0), evalData = split.size() > 1 ? split.get(1) : null;
            double bestEval = Double.POSITIVE_INFINITY;
            int bestStep = -1;
            if (run != null && run.best().isPresent()) {
                bestStep = ((Number) run.best().get().get("step")).intValue();
                bestEval = ((Number) run.best().get().get("eval_loss")).doubleValue();
            }
            if (run != null) {
                if (!run.started()) {
                    run.writeConfig(runConfig(trainer, p, device));
                } else {
                    run.truncateLogAfter(trainer.step()); // steps after the checkpoint died with the process that ran them
                }
                RunFolder.requireRoomForCheckpoints(run.dir(), trainer, keep);
            }
            if (!json) {
                out.printf(Locale.ROOT, "%s (%,d parameters) on %s, %s, parameters on the %s, optimizer on the %s, "
                                + "checkpointing %s; %d sequences of %,d tokens (%s)%n",
                        trainer.model().config().name(), trainer.model().config().totalParameters(), device.name(), p.id,
                        trainer.model().parameterPlacement().id, trainer.optimizer().placement().id,
                        trainer.model().checkpointing().id, trainingData.batches().size(), tokens, trainingData.stats());
            }
            double first = Double.NaN, last = Double.NaN, tokensPerSecond = 0;
            // model FLOPs utilisation against the GPU's datasheet peak (none on the CPU, or in FP32)
            java.util.OptionalDouble peakTflops = device instanceof dev.longtune.cuda.CudaDevice g
                    ? dev.longtune.train.Mfu.peakTflops(g.gpuName(), p) : java.util.OptionalDouble.empty();
            // with a run folder --steps is the run's total; otherwise it counts on from where the run stands
            int target = run != null ? steps : trainer.step() + steps;
            int firstStep = trainer.step();
            long lastSave = System.nanoTime();
            trainer.model().setLayerListener(layers);
            while (trainer.step() < target) {
                LayerProgress.label(layers, "step " + (trainer.step() + 1) + "/" + target);
                boolean profile = profileMemory && trainer.step() + 1 == Math.min(firstStep + 2, target);
                MemoryTimeline timeline = profile ? MemoryTimeline.record(trainer.model()) : null;
                StepResult r;
                List<Batch> stepBatches = trainingData.forStep(trainer.step() + 1, trainer.config().gradientAccumulation());
                try {
                    r = trainer.step(stepBatches);
                } finally {
                    if (timeline != null) {
                        timeline.close();
                    }
                    LayerProgress.finish(layers);
                }
                if (timeline != null) {
                    LayerProgress.setup(layers, started, "memory timeline of step " + r.step() + " in " + writeTimeline(timeline, run));
                }
                Double evalLoss = evalData != null && (r.step() % evalEvery == 0 || r.step() >= target)
                        ? evalData.meanLoss(trainer.model()) : null;
                // citations: greedy answers to held-out questions, scored against their evidence
                Double citationF1 = evalLoss != null && evalCitations > 0 && !evalData.questions().isEmpty()
                        ? dev.longtune.train.CitationEvaluation.score(evalData.questions().subList(0,
                                Math.min(evalCitations, evalData.questions().size())), tokenizer,
                                dev.longtune.model.Generator.forChat(trainer.model()), 96).f1() : null;
                boolean newBest = evalLoss != null && evalLoss < bestEval;
                if (newBest) {
                    bestEval = evalLoss;
                    bestStep = r.step();
                }
                first = Double.isNaN(first) ? r.loss() : first;
                last = r.loss();
                tokensPerSecond = r.tokensPerSecond();
                Double mfu = peakTflops.isPresent()
                        ? dev.longtune.train.Mfu.ofStep(trainer.model().config(), stepBatches, r.seconds(), peakTflops.getAsDouble()) : null;
                if (json) {
                    Map<String, Object> line = r.toJson();
                    if (mfu != null) {
                        line.put("mfu", mfu);
                    }
                    if (evalLoss != null) {
                        line.put("eval_loss", evalLoss);
                    }
                    if (citationF1 != null) {
                        line.put("citation_f1", citationF1);
                    }
                    if (device instanceof dev.longtune.cuda.CudaDevice gpu) {
                        line.put("gpu_allocator", gpu.memorySummary()); // reserved, peak reserved, fragmentation
                        line.put("pinned_allocator", gpu.pinnedSummary()); // the pinned pool: the same figures
                    }
                    out.println(Json.line(line));
                } else {
                    out.printf(Locale.ROOT, "step %d  loss %.4f  lr %.2e  grad norm %.3f  %,.0f tokens/s  %.2f s (%.2fx busy)  peak %s%s%n",
                            r.step(), r.loss(), r.learningRate(), r.gradNorm(), r.tokensPerSecond(), r.seconds(), r.wallOverBusy(),
                            Units.human(r.devicePeak().values().stream().mapToLong(Long::longValue).sum()),
                            r.applied() ? "" : "  (skipped: overflow, loss scale now " + trainer.lossScaler().scale() + ")");
                    if (evalLoss != null) {
                        out.printf(Locale.ROOT, "       eval loss %.4f (held-out, %d sequences)%s%s%n", evalLoss,
                                evalData.batches().size(), citationF1 == null ? "" : String.format(Locale.ROOT,
                                        "  citation F1 %.3f", citationF1), newBest ? "  best so far" : "");
                    }
                }
                out.flush();
                if (run != null) {
                    Map<String, Object> line = r.toJson();
                    if (device instanceof dev.longtune.cuda.CudaDevice gpu) {
                        line.put("gpu_allocator", gpu.memorySummary());
                    }
                    if (evalLoss != null) {
                        line.put("eval_loss", evalLoss);
                    }
                    if (mfu != null) {
                        line.put("mfu", mfu);
                    }
                    if (citationF1 != null) {
                        line.put("citation_f1", citationF1);
                    }
                    line.put("time", java.time.Instant.now().toString());
                    run.log(line);
                    boolean due = trainer.step() >= target || stop.received() != null || newBest
                            || saveEvery != null && trainer.step() % saveEvery == 0
                            || saveEveryMinutes != null && System.nanoTime() - lastSave >= saveEveryMinutes * 60e9;
                    if (due) {
                        Precision precisionOfRun = p;
                        Path saved = run.saveCheckpoint(trainer.step(), keep, bestStep,
                                dir -> TrainingCheckpoint.save(trainer, precisionOfRun, dir));
                        if (newBest) {
                            run.writeBest(bestStep, bestEval); // after its checkpoint is complete
                        }
                        lastSave = System.nanoTime();
                        LayerProgress.setup(layers, started, "checkpoint " + saved);
                    }
                }
                if (stop.received() != null) {
                    if (save != null) {
                        TrainingCheckpoint.save(trainer, p, save);
                    }
                    if (run != null) {
                        plots(run);
                    }
                    spec.commandLine().getErr().printf(Locale.ROOT, "stopped by SIG%s after step %d: %s%n", stop.received(),
                            trainer.step(), run != null ? "resume with --run-dir " + runDir + " --resume latest"
                                    : save != null ? "saved to " + save + " (resume with --resume " + save + ")" : "nothing saved (no --run-dir or --save)");
                    spec.commandLine().getErr().flush();
                    return StopSignal.EXIT_CODE;
                }
            }
            if (save != null) {
                TrainingCheckpoint.save(trainer, p, save);
            }
            if (run != null) {
                plots(run);
            }
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("steps", trainer.step());
            summary.put("first_loss", first);
            summary.put("last_loss", last);
            summary.put("tokens_per_s", Math.round(tokensPerSecond * 10) / 10.0);
            summary.put("saved", save == null ? null : save.toString());
            if (json) {
                out.println(Json.line(Map.of("summary", summary)));
            } else {
                out.printf(Locale.ROOT, "done: loss %.4f -> %.4f%s%n", first, last, save == null ? "" : ", saved to " + save);
            }
        }
        return 0;
    }

    /** The run's charts; a run is not failed for want of them (e.g. a runtime without the charting library). */
    void plots(RunFolder run) {
        try {
            RunPlots.write(run);
        } catch (Exception | LinkageError e) {
            spec.commandLine().getErr().println("longtune train: plots skipped (" + e + "); the log is in " + run.dir().resolve(RunFolder.LOG));
        }
    }

    /** The run's config.json: what it trains, how, and from which code. */
    Map<String, Object> runConfig(Trainer trainer, Precision p, Device device) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("model", model);
        c.put("data", data);
        c.put("context", context);
        c.put("steps", steps);
        c.put("examples", examples);
        c.put("seed", seed);
        c.put("precision", p.id);
        c.put("micro_batches", microBatches);
        c.put("lr", lr);
        c.put("save_every", saveEvery);
        c.put("save_every_minutes", saveEveryMinutes);
        c.put("keep", keep);
        c.put("eval_every", evalEvery);
        c.put("eval_examples", evalExamples);
        c.put("eval_citations", evalCitations);
        c.put("parameters", trainer.model().parameterPlacement().id);
        c.put("optimizer", trainer.optimizer().placement().id);
        c.put("checkpointing", trainer.model().checkpointing().id);
        c.put("tile", tile);
        c.put("keep_attention", trainer.model().keptAttentionLayers());
        c.put("resident_layers", trainer.model().residentLayers());
        c.put("resident_embedding", trainer.model().residentEmbedding());
        c.put("prefetch_checkpoints", trainer.model().prefetchCheckpoints());
        c.put("keep_last_layer", trainer.model().keepLastLayer());
        c.put("device", device.name());
        c.put("init_from", initFrom == null ? null : initFrom.toString());
        c.put("parameters_count", trainer.model().config().totalParameters());
        c.put("git_commit", RunFolder.gitCommit());
        c.put("started", java.time.Instant.now().toString());
        c.put("command", String.join(" ", spec.commandLine().getParseResult().originalArgs()));
        return c;
    }

    /** Refuses, with the planner's numbers, a run the host's RAM (or on the CPU, the Java heap) cannot hold. */
    private void requireHostMemory(ModelConfig config, Device device, Precision p, long tokens) {
        int kept = keptAttentionLayers(config, device, p, tokens);
        String problem = KeptAttention.advise(kept, config.numLayers(), n -> hostProblem(config, device, p, tokens, n));
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
    }

    /** The planner's objection to this run's host memory with {@code kept} layers keeping attention; null when it fits. */
    private String hostProblem(ModelConfig config, Device device, Precision p, long tokens, int kept) {
        boolean optimizerOnHost = optimizerPlacement() == Optimizer.Placement.HOST;
        boolean parametersOnHost = parameterPlacement() == ParameterPlacement.HOST;
        return device instanceof dev.longtune.cuda.CudaDevice
                ? HostMemoryCheck.onGpu(config, p, optimizerOnHost, parametersOnHost, checkpointing(), kept, residentLayers(), residentEmbedding(), tokens,
                        devices.capBytes(), hostRam != null ? Units.parseBytes(hostRam)
                                : dev.longtune.config.NodeCatalog.cpu().hostRamBytes())
                : HostMemoryCheck.onCpu(config, p, optimizerOnHost, parametersOnHost, checkpointing(), kept, tokens,
                        Runtime.getRuntime().maxMemory());
    }

    /** How many layers keep their attention output: --keep-attention against the model, auto against the host's memory. */
    private int keptAttentionLayers(ModelConfig config, Device device, Precision p, long tokens) {
        if (keptLayers == null) {
            int layers = config.numLayers(), asked = KeptAttention.parse(keepAttention, layers);
            keptLayers = KeptAttention.resolve(asked, layers, n -> hostProblem(config, device, p, tokens, n) == null);
            if (asked == KeptAttention.AUTO) {
                spec.commandLine().getErr().printf(Locale.ROOT, "longtune train: --keep-attention auto: the first %d of %d "
                        + "layers keep their attention output (what the host's memory holds, by the planner)%n", keptLayers, layers);
            }
        }
        return keptLayers;
    }

    private boolean offloads(String what) {
        for (String o : offload) {
            if (!java.util.List.of("parameters", "optimizer", "checkpoints").contains(o.strip().toLowerCase(Locale.ROOT))) {
                throw new IllegalArgumentException("--offload " + o + ": use parameters, optimizer or checkpoints (comma-separated)");
            }
        }
        return offload.stream().anyMatch(o -> o.strip().equalsIgnoreCase(what));
    }

    /**
     * Whether backward may bring offloaded checkpoints back a layer ahead: where the planner's GPU peak with it (per
     * GPU, with {@code --gpus}), and the allocator's share, fits the GPU or its cap; results are the same either way.
     */
    boolean prefetchFits(LlamaModel m, boolean onGpu, Precision p, long tokens) {
        if (!onGpu || m.checkpointing() != Checkpointing.OFFLOAD) {
            return false;
        }
        var node = plannerNode();
        return ResidentLayers.fits(m.config(), node, runStack(m, node, p).withPrefetchCheckpoints(true), tokens);
    }

    /** The node the planner checks this run against: the GPU (or its cap) and the host, per GPU with {@code --gpus}. */
    private dev.longtune.config.NodeProfile plannerNode() {
        return PlannerAdvice.cappedNode(devices.capBytes(), hostRam != null ? Units.parseBytes(hostRam)
                : dev.longtune.config.NodeCatalog.cpu().hostRamBytes(), gpus == null ? 1 : gpus);
    }

    /** The planner's stack for model {@code m} as this run set it up so far (kept attention, resident layers). */
    private dev.longtune.config.TechniqueSet runStack(LlamaModel m, dev.longtune.config.NodeProfile node, Precision p) {
        boolean parametersOnHost = m.parameterPlacement() == ParameterPlacement.HOST;
        return dev.longtune.config.Stacks.engineRun(node, p, parametersOnHost || optimizerPlacement() == Optimizer.Placement.HOST,
                        parametersOnHost, m.checkpointing()).withGpus(gpus == null ? 1 : gpus)
                .withKeptAttentionLayers(m.keptAttentionLayers()).withResidentLayers(m.residentLayers())
                .withResidentEmbedding(m.residentEmbedding());
    }

    /**
     * Whether the last layer keeps its saved tensors through the loss: --keep-last-layer as given, or by default where
     * the planner's GPU peak with it (with the prefetch already chosen; per GPU with {@code --gpus}) fits the GPU or
     * its cap. Checkpointed runs on a GPU only; results are the same either way.
     */
    boolean lastLayerFits(LlamaModel m, boolean onGpu, Precision p, long tokens) {
        if (m.checkpointing() == Checkpointing.NONE || Boolean.FALSE.equals(keepLastLayer)) {
            return false;
        }
        if (Boolean.TRUE.equals(keepLastLayer)) {
            return true;
        }
        if (!onGpu) {
            return false;
        }
        var node = plannerNode();
        return ResidentLayers.fits(m.config(), node, runStack(m, node, p).withPrefetchCheckpoints(m.prefetchCheckpoints())
                .withKeepLastLayer(true), tokens);
    }

    /** --resident-layers as resolved by {@link #resolveResidentLayers} (0 when not given). */
    int residentLayers() {
        if (residentLayers == null) {
            return 0;
        }
        if (residentResolved == null) {
            throw new IllegalStateException("--resident-layers is resolved against the model first");
        }
        return residentResolved;
    }

    /**
     * Checks --resident-layers against the placement and the model, and resolves auto: the most layers whose planned
     * GPU peak (with the allocator's overhead; per GPU with --gpus) fits the GPU or its cap, said on stderr.
     */
    void resolveResidentLayers(ModelConfig config, boolean onGpu, Precision p, long tokens) {
        if (residentLayers == null || residentResolved != null) {
            return;
        }
        int asked = ResidentLayers.parse(residentLayers, config.numLayers());
        if (asked == 0) {
            residentResolved = 0;
            return;
        }
        if (parameterPlacement() != ParameterPlacement.HOST) {
            throw new IllegalArgumentException("--resident-layers keeps some layers on the GPU out of offloaded parameters: "
                    + "add --offload parameters (without it every layer is on the GPU already)");
        }
        if (asked != ResidentLayers.AUTO) {
            residentResolved = asked;
            return;
        }
        if (!onGpu) {
            throw new IllegalArgumentException("--resident-layers auto sizes the resident layers against the GPU's memory: "
                    + "it needs --device cuda (give a number of layers on the CPU)");
        }
        int kept = KeptAttention.parse(keepAttention, config.numLayers());
        int g = gpus == null ? 1 : gpus;
        residentResolved = ResidentLayers.auto(config, p, checkpointing(), kept == KeptAttention.AUTO ? config.numLayers() : kept,
                residentEmbedding(), tokens, devices.capBytes(), hostRam != null ? Units.parseBytes(hostRam)
                        : dev.longtune.config.NodeCatalog.cpu().hostRamBytes(), g);
        spec.commandLine().getErr().printf(Locale.ROOT, "longtune train: --resident-layers auto: the first %d of %d layers "
                + "stay on the GPU%s (what its memory holds by the planner, with %.0f%% for the allocator)%n", residentResolved,
                config.numLayers(), g > 1 ? "s (each GPU its shards of them)" : "", (ResidentLayers.RESERVED_OVER_ALLOCATED - 1) * 100);
    }

    /** --resident-embedding, checked against the placement as {@link #residentLayers()} is. */
    boolean residentEmbedding() {
        if (!residentEmbedding) {
            return false;
        }
        if (parameterPlacement() != ParameterPlacement.HOST) {
            throw new IllegalArgumentException("--resident-embedding keeps the embedding on the GPU out of offloaded "
                    + "parameters: it needs --offload parameters");
        }
        return true;
    }

    ParameterPlacement parameterPlacement() {
        return offloads("parameters") ? ParameterPlacement.HOST : ParameterPlacement.DEVICE;
    }

    Checkpointing checkpointing() {
        Checkpointing c = checkpointing == null
                ? offloads("checkpoints") ? Checkpointing.OFFLOAD : Checkpointing.DEVICE : Checkpointing.parse(checkpointing);
        if (checkpointing != null && offloads("checkpoints") && c != Checkpointing.OFFLOAD) {
            throw new IllegalArgumentException("--offload checkpoints and --checkpointing " + checkpointing + " disagree: drop one");
        }
        if (keepAttention != null && !keepAttention.trim().equals("0") && c != Checkpointing.OFFLOAD) {
            throw new IllegalArgumentException("--keep-attention offloads attention outputs with the layer inputs: add "
                    + "--offload checkpoints (checkpointing is " + c.id + ")");
        }
        if (Boolean.TRUE.equals(keepLastLayer) && c == Checkpointing.NONE) {
            throw new IllegalArgumentException("--keep-last-layer is for checkpointed runs (with --checkpointing none every "
                    + "layer keeps its saved tensors already): drop it or use --checkpointing device or offload");
        }
        return c;
    }

    Optimizer.Placement optimizerPlacement() {
        boolean host = offloads("optimizer") || offloads("parameters");
        if (optimizer == null) {
            return Optimizer.Placement.HOST;
        }
        Optimizer.Placement p = Optimizer.Placement.parse(optimizer);
        if (host && p != Optimizer.Placement.HOST) {
            throw new IllegalArgumentException("--optimizer " + optimizer + " with --offload " + String.join(",", offload)
                    + ": offloaded parameters and optimizer run AdamW on the host; drop --optimizer " + optimizer);
        }
        return p;
    }

    /** --profile-memory's files: memory-timeline.csv and its device and host charts, in the run folder or here. */
    static Path writeTimeline(MemoryTimeline timeline, RunFolder run) throws java.io.IOException {
        Path where = run != null ? run.dir() : Path.of("");
        timeline.table().write().csv(where.resolve("memory-timeline.csv").toFile());
        for (boolean onDevice : new boolean[] {true, false}) {
            RunPlots.saveChart(timeline.chart(onDevice), where.resolve("memory-timeline-" + (onDevice ? "device" : "host")));
        }
        return where.toAbsolutePath().resolve("memory-timeline.csv");
    }

    static void requireFolder(String option, Path folder, String what) {
        if (folder != null && !java.nio.file.Files.isDirectory(folder)) {
            throw new IllegalArgumentException(option + " " + folder + ": no such folder (it takes " + what + ")");
        }
    }

    private static String precisionOf(LlamaModel m) {
        return switch (m.dtype()) {
            case BF16 -> "bf16";
            case FP16 -> "fp16";
            default -> "fp32";
        };
    }
}
