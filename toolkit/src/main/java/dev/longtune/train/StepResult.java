package dev.longtune.train;

import dev.longtune.tensor.MemoryCategory;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One optimizer step: mean loss over its micro-batches, whether the update was applied (an FP16 overflow
 * skips it), the gradient norm, learning rate, loss scale, throughput, and peak memory by category on the
 * device and the host during the step.
 */
public record StepResult(int step, double loss, boolean applied, double gradNorm, double learningRate,
                         double lossScale, long tokens, double seconds,
                         Map<MemoryCategory, Long> devicePeak, Map<MemoryCategory, Long> hostPeak) {

    public double tokensPerSecond() { return tokens / Math.max(seconds, 1e-9); }

    /** The {@code train --json} line: step, loss, tokens_per_s, memory bytes by category. */
    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("step", step);
        m.put("loss", loss);
        m.put("applied", applied);
        m.put("grad_norm", Double.isFinite(gradNorm) ? gradNorm : null);
        m.put("lr", learningRate);
        m.put("loss_scale", lossScale);
        m.put("tokens", tokens);
        m.put("tokens_per_s", Math.round(tokensPerSecond() * 10) / 10.0);
        Map<String, Object> memory = new LinkedHashMap<>();
        devicePeak.forEach((c, v) -> memory.put(c.id, v));
        m.put("memory", memory);
        Map<String, Object> host = new LinkedHashMap<>();
        hostPeak.forEach((c, v) -> host.put(c.id, v));
        m.put("host_memory", host);
        return m;
    }
}
