package dev.longtune.cli;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.model.Batch;
import dev.longtune.model.LlamaModel;
import dev.longtune.train.LossScaler;
import dev.longtune.train.TrainingCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * One forward and backward of a Hugging Face checkpoint on given tokens, with no optimizer step: the mean loss
 * and the L2 norm of every parameter's gradient, under its Hugging Face name. The sequences of the token file
 * are packed into one batch as separate documents (each predicts its own next tokens).
 *
 * <p>In FP16 the loss is scaled as {@code train} scales it ({@link LossScaler#forFp16()}: gradients are computed
 * for loss × 65536, so that small ones do not underflow, and the norms are divided by the scale again); where
 * the scaled gradients overflow, the scale halves and the pass runs again, as a training step would be skipped.
 * Norms are the device's own sums of squares (the gradients may live in GPU memory).
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Loss and per-parameter gradient norms of a checkpoint on given tokens (no optimizer step).")
public class InspectCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Mixin DeviceOptions devices = new DeviceOptions();

    @Option(names = "--checkpoint", required = true, description = "a Hugging Face folder: config.json + safetensors")
    Path checkpoint;

    @Option(names = "--tokens", required = true, description = "token ids, one sequence per line, separated by whitespace")
    Path tokens;

    @Option(names = "--precision", defaultValue = "bf16",
            description = "fp32, fp16 or bf16; default ${DEFAULT-VALUE} (fp16 scales the loss as train does, and unscales the norms)")
    String precision;

    @Option(names = "--progress", defaultValue = "auto", description = "per-layer progress on stderr: on, off or auto (a console); default ${DEFAULT-VALUE}")
    String progress;

    @Option(names = "--json", description = "one JSON object instead of a table") boolean json;

    @Override
    public Integer call() throws Exception {
        try (Device device = devices.open(checkpoint.toString(), 0)) {
            return run(device);
        }
    }

    private Integer run(Device device) throws Exception {
        if (!Files.isDirectory(checkpoint)) {
            throw new IllegalArgumentException("--checkpoint " + checkpoint + " is not a folder (a Hugging Face folder with config.json and safetensors)");
        }
        Precision p = Precision.parse(precision);
        try (LlamaModel model = TrainingCheckpoint.loadModel(checkpoint, device, p, Checkpointing.DEVICE)) {
            List<int[]> sequences = TokenFile.read(tokens, model.config().vocabSize());
            Batch batch = Batch.ofDocuments(sequences);
            LlamaModel.LayerListener listener = LayerProgress.of(progress, spec.commandLine().getErr());
            LayerProgress.label(listener, "inspect");
            model.setLayerListener(listener);
            LossScaler scaler = p == Precision.FP16 ? LossScaler.forFp16() : LossScaler.disabled();
            Map<String, Double> norms = new LinkedHashMap<>();
            double loss, total;
            while (true) {
                model.grads().zero();
                loss = model.forwardBackward(batch, (float) scaler.scale());
                LayerProgress.finish(listener);
                norms.clear();
                total = 0;
                double inverse = 1 / scaler.scale(); // a power of two: unscaling is exact
                for (var e : model.grads().byName().entrySet()) {
                    double sq = device.sumOfSquares(e.getValue()) * inverse * inverse;
                    norms.put(e.getKey(), Math.sqrt(sq));
                    total += sq;
                }
                if (Double.isFinite(total) || !scaler.enabled() || scaler.scale() <= 1) {
                    break;
                }
                scaler.update(true); // overflow: halve the scale, as a skipped training step does, and run again
                LayerProgress.label(listener, "inspect, loss scale " + (long) scaler.scale());
            }
            print(spec.commandLine().getOut(), loss, Math.sqrt(total), norms, model, batch, sequences.size(), p,
                    scaler.scale(), device);
        }
        return 0;
    }

    private void print(PrintWriter out, double loss, double totalNorm, Map<String, Double> norms, LlamaModel model,
                       Batch batch, int sequences, Precision p, double lossScale, Device device) {
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("checkpoint", checkpoint.toString());
            o.put("precision", p.id);
            o.put("device", device.name());
            o.put("loss_scale", lossScale); // gradients were computed for loss × loss_scale; the norms are unscaled
            o.put("sequences", sequences);
            o.put("tokens", batch.tokens());
            o.put("targets", batch.validTargets());
            o.put("loss", loss);
            o.put("grad_norm", totalNorm);
            o.put("grad_norms", norms);
            out.println(Json.write(o));
        } else {
            String scaling = p == Precision.FP16
                    ? String.format(Locale.ROOT, ", loss scale %.0f (norms unscaled)", lossScale) : "";
            out.printf(Locale.ROOT, "%s on %d sequences (%,d tokens, %,d targets), %s%s on %s: loss %.6f, gradient norm %.6g%n",
                    model.config().name(), sequences, batch.tokens(), batch.validTargets(), p.id, scaling, device.name(),
                    loss, totalNorm);
            int width = norms.keySet().stream().mapToInt(String::length).max().orElse(9);
            out.printf(Locale.ROOT, "%-" + width + "s  %14s%n", "parameter", "grad L2 norm");
            norms.forEach((name, norm) -> out.printf(Locale.ROOT, "%-" + width + "s  %14.6e%n", name, norm));
        }
        out.flush();
    }
}
