package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelCatalog;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.data.LlamaTokenizer;
import dev.longtune.device.Device;
import dev.longtune.model.LlamaModel;
import dev.longtune.model.ParameterPlacement;
import dev.longtune.plan.Units;
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

    @Option(names = "--data", defaultValue = TrainingData.SYNTHETIC, description = "synthetic-longcite or a LongCite .jsonl file; default ${DEFAULT-VALUE}")
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

    @Option(names = "--resume", description = "continue from a folder written by --save") Path resume;

    @Option(names = "--init-from", description = "start from the weights of a Hugging Face folder (config.json + safetensors) instead of random ones")
    Path initFrom;

    @Option(names = "--optimizer",
            description = "where AdamW's FP32 master weights and moments live: host (ZeRO-offload, AdamW on the CPU) or device; default host")
    String optimizer;

    @Option(names = "--json", description = "one JSON object per step, then a summary") boolean json;

    @Option(names = "--progress", defaultValue = "auto", description = "per-layer forward/backward progress on stderr: on, off or auto (a console); default ${DEFAULT-VALUE}")
    String progress;

    @Override
    public Integer call() throws Exception {
        try (Device device = devices.open(model, Units.parseTokens(context))) {
            return run(device);
        }
    }

    private Integer run(Device device) throws Exception {
        var out = spec.commandLine().getOut();
        int tokens = Math.toIntExact(Units.parseTokens(context));
        if (tokens <= 0 || steps <= 0 || microBatches <= 0) {
            throw new IllegalArgumentException("--context, --steps and --micro-batches must be positive");
        }
        requireFolder("--resume", resume, "a folder written by 'train --save'");
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
                LayerProgress.setup(layers, started, "loading " + initFrom);
                m = TrainingCheckpoint.loadModel(initFrom, device, p, checkpointing(), parameterPlacement());
            } else {
                ModelConfig config = ModelCatalog.get(model);
                LayerProgress.setup(layers, started, "allocating " + config.name() + " (parameters on the "
                        + parameterPlacement().id + ")");
                m = new LlamaModel(config, device, p, checkpointing(), parameterPlacement());
                LayerProgress.setup(layers, started, "random initialisation");
                m.initialize(seed);
            }
            LayerProgress.setup(layers, started, "optimizer state (on the " + optimizerPlacement().id + ")");
            trainer = new Trainer(m, TrainingConfig.defaults(steps).withLearningRate(lr, lr / 10)
                    .withGradientAccumulation(microBatches).withSeed(seed), p, optimizerPlacement());
        }
        LayerProgress.setup(layers, started, "set up; training");
        try (trainer) {
            TrainingData trainingData = TrainingData.load(data, LlamaTokenizer.llama31(), tokens, examples, seed);
            if (!json) {
                out.printf(Locale.ROOT, "%s (%,d parameters) on %s, %s, parameters on the %s, optimizer on the %s, "
                                + "checkpointing %s; %d sequences of %,d tokens (%s)%n",
                        trainer.model().config().name(), trainer.model().config().totalParameters(), device.name(), p.id,
                        trainer.model().parameterPlacement().id, trainer.optimizer().placement().id,
                        trainer.model().checkpointing().id, trainingData.batches().size(), tokens, trainingData.stats());
            }
            double first = Double.NaN, last = Double.NaN, tokensPerSecond = 0;
            int target = trainer.step() + steps;
            trainer.model().setLayerListener(layers);
            while (trainer.step() < target) {
                LayerProgress.label(layers, "step " + (trainer.step() + 1) + "/" + target);
                StepResult r = trainer.step(trainingData.forStep(trainer.step() + 1, trainer.config().gradientAccumulation()));
                LayerProgress.finish(layers);
                first = Double.isNaN(first) ? r.loss() : first;
                last = r.loss();
                tokensPerSecond = r.tokensPerSecond();
                if (json) {
                    Map<String, Object> line = r.toJson();
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
                }
                out.flush();
            }
            if (save != null) {
                TrainingCheckpoint.save(trainer, p, save);
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

    private boolean offloads(String what) {
        for (String o : offload) {
            if (!java.util.List.of("parameters", "optimizer", "checkpoints").contains(o.strip().toLowerCase(Locale.ROOT))) {
                throw new IllegalArgumentException("--offload " + o + ": use parameters, optimizer or checkpoints (comma-separated)");
            }
        }
        return offload.stream().anyMatch(o -> o.strip().equalsIgnoreCase(what));
    }

    private ParameterPlacement parameterPlacement() {
        return offloads("parameters") ? ParameterPlacement.HOST : ParameterPlacement.DEVICE;
    }

    private Checkpointing checkpointing() {
        if (checkpointing == null) {
            return offloads("checkpoints") ? Checkpointing.OFFLOAD : Checkpointing.DEVICE;
        }
        Checkpointing c = Checkpointing.parse(checkpointing);
        if (offloads("checkpoints") && c != Checkpointing.OFFLOAD) {
            throw new IllegalArgumentException("--offload checkpoints and --checkpointing " + checkpointing + " disagree: drop one");
        }
        return c;
    }

    private Optimizer.Placement optimizerPlacement() {
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

    private static void requireFolder(String option, Path folder, String what) {
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
