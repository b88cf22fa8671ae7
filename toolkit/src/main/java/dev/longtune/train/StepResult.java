package dev.longtune.train;

import dev.longtune.tensor.MemoryCategory;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One optimizer step: mean loss over its micro-batches, whether the update was applied (an FP16 overflow
 * skips it), the gradient norm, learning rate, loss scale, throughput, the device's busy time, and peak memory by
 * category on the device and the host during the step.
 *
 * <p>{@code collectiveSeconds}: with data parallelism, the time the device's compute stream waited for the step's
 * collectives (NCCL's all-gathers and reduce-scatters and the copies that pack and unpack them): the part of them
 * not overlapped with compute. {@code communicationSeconds}: the time the communication stream spent in them, all
 * of it; {@link #collectiveOverlap} is the share of it that compute hid.
 *
 * <p>{@code updateWaitSeconds}: with offloaded parameters, how long the step's thread waited for the host AdamW of
 * the previous step to finish a unit it was about to load; {@code optimizerSeconds}: how long it spent after
 * backward in the optimizer (waiting for the gradients' norms, clipping, queueing the background update, or the
 * whole update where it is not in the background). Both are host time: the GPU idles during them only once its
 * queue has run dry.
 *
 * <p>{@code idleSeconds}: the device's idle time between units' work, by the work that followed ("forward layers",
 * "backward head", …; {@code LlamaModel.takeIdleSeconds}): where wall time beyond busy time went. "forward embedding"
 * counts from the previous step's last kernel, so it holds the time between steps.
 *
 * <p>{@code hostUpdateSeconds}: how long the host AdamW of the previous step took, from its submission to its last
 * unit (NaN where there was none in the background): the race the step's forward ran against.
 *
 * <p>{@code seconds} is the step's wall time as the caller sees it; {@code busySeconds} the device's compute within
 * it (kernels of forward, recompute, loss and backward, timed with events). Their ratio is what offloading costs:
 * 1.0 when no copy, checkpoint transfer or optimizer work ever keeps the device waiting. With offloaded parameters
 * the update of step n runs while step n+1's forward does, so its cost shows in the steps after the first.
 */
public record StepResult(int step, double loss, boolean applied, double gradNorm, double learningRate,
                         double lossScale, long tokens, double seconds, double busySeconds,
                         Map<MemoryCategory, Long> devicePeak, Map<MemoryCategory, Long> hostPeak,
                         double collectiveSeconds, double updateWaitSeconds, double optimizerSeconds,
                         Map<String, Double> idleSeconds, double hostUpdateSeconds, double communicationSeconds) {

    /** Without the communication stream's time (no data parallelism). */
    public StepResult(int step, double loss, boolean applied, double gradNorm, double learningRate, double lossScale,
                      long tokens, double seconds, double busySeconds, Map<MemoryCategory, Long> devicePeak,
                      Map<MemoryCategory, Long> hostPeak, double collectiveSeconds, double updateWaitSeconds,
                      double optimizerSeconds, Map<String, Double> idleSeconds, double hostUpdateSeconds) {
        this(step, loss, applied, gradNorm, learningRate, lossScale, tokens, seconds, busySeconds, devicePeak, hostPeak,
                collectiveSeconds, updateWaitSeconds, optimizerSeconds, idleSeconds, hostUpdateSeconds, 0);
    }

    /** Without the device's idle time by what followed it. */
    public StepResult(int step, double loss, boolean applied, double gradNorm, double learningRate, double lossScale,
                      long tokens, double seconds, double busySeconds, Map<MemoryCategory, Long> devicePeak,
                      Map<MemoryCategory, Long> hostPeak, double collectiveSeconds, double updateWaitSeconds,
                      double optimizerSeconds) {
        this(step, loss, applied, gradNorm, learningRate, lossScale, tokens, seconds, busySeconds, devicePeak, hostPeak,
                collectiveSeconds, updateWaitSeconds, optimizerSeconds, Map.of(), Double.NaN);
    }

    /** Without data parallelism or host waits. */
    public StepResult(int step, double loss, boolean applied, double gradNorm, double learningRate, double lossScale,
                      long tokens, double seconds, double busySeconds, Map<MemoryCategory, Long> devicePeak,
                      Map<MemoryCategory, Long> hostPeak) {
        this(step, loss, applied, gradNorm, learningRate, lossScale, tokens, seconds, busySeconds, devicePeak, hostPeak, 0, 0, 0);
    }

    /**
     * The share of the communication stream's time in collectives that the compute stream did not wait for (1: all
     * hidden behind compute); NaN without collectives.
     */
    public double collectiveOverlap() {
        return communicationSeconds > 0 ? Math.max(0, 1 - collectiveSeconds / communicationSeconds) : Double.NaN;
    }

    /** Wall time over the device's busy time (≥ 1; see the class comment). */
    public double wallOverBusy() { return seconds / Math.max(busySeconds, 1e-9); }

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
        m.put("seconds", Math.round(seconds * 1000) / 1000.0);
        m.put("busy_s", Math.round(busySeconds * 1000) / 1000.0);
        m.put("wall_over_busy", Math.round(wallOverBusy() * 1000) / 1000.0);
        if (collectiveSeconds > 0 || communicationSeconds > 0) {
            // ZeRO-3's gathers and reduce-scatters (with their packing copies): what the compute stream waited for
            // (outside busy_s), all of their time on the communication stream, and the share compute hid
            m.put("collectives_s", Math.round(collectiveSeconds * 1000) / 1000.0);
            m.put("communication_s", Math.round(communicationSeconds * 1000) / 1000.0);
            if (communicationSeconds > 0) {
                m.put("collectives_overlap", Math.round(collectiveOverlap() * 1000) / 1000.0);
            }
        }
        m.put("update_wait_s", Math.round(updateWaitSeconds * 1000) / 1000.0);
        m.put("optimizer_s", Math.round(optimizerSeconds * 1000) / 1000.0);
        if (Double.isFinite(hostUpdateSeconds)) {
            m.put("host_update_s", Math.round(hostUpdateSeconds * 1000) / 1000.0);
        }
        if (!idleSeconds.isEmpty()) {
            Map<String, Object> idle = new LinkedHashMap<>();
            idleSeconds.forEach((k, v) -> idle.put(k, Math.round(v * 1000) / 1000.0));
            m.put("idle_s", idle);
        }
        Map<String, Object> memory = new LinkedHashMap<>();
        devicePeak.forEach((c, v) -> memory.put(c.id, v));
        m.put("memory", memory);
        Map<String, Object> host = new LinkedHashMap<>();
        hostPeak.forEach((c, v) -> host.put(c.id, v));
        m.put("host_memory", host);
        return m;
    }
}
