package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class LlamaModelTest {
    /** Two packed documents (lengths 7 and 6), positions restarting, the last target of each ignored. */
    static Batch packedBatch(int vocab, long seed) {
        Random r = new Random(seed);
        int[] ids = new int[13], targets = new int[13], positions = new int[13];
        for (int i = 0; i < 13; i++) {
            ids[i] = r.nextInt(vocab);
        }
        for (int i = 0; i < 13; i++) {
            boolean lastOfDoc = i == 6 || i == 12;
            targets[i] = lastOfDoc ? -100 : ids[i + 1];
            positions[i] = i < 7 ? i : i - 7;
        }
        return new Batch(ids, targets, positions, new int[] {0, 7, 13});
    }

    static LlamaModel model(ModelConfig c, Checkpointing ckpt) {
        LlamaModel m = new LlamaModel(c, new CpuDevice(), Precision.FP32, ckpt);
        m.initialize(42);
        // larger weights than the 0.02 init so every path carries a gradient well above float noise
        for (Tensor t : m.weights().all()) {
            float[] w = t.floats();
            for (int i = 0; i < w.length; i++) {
                w[i] *= t.name().endsWith("norm.weight") ? 1f : 10f;
            }
        }
        return m;
    }

    @Test
    void gradientsMatchFiniteDifferencesOfTheLoss() {
        ModelConfig c = TinyLlama.small();
        Batch b = packedBatch(c.vocabSize(), 7);
        try (LlamaModel m = model(c, Checkpointing.NONE)) {
            m.grads().zero();
            m.forwardBackward(b, 1f);
            Random r = new Random(3);
            List<String> checked = new ArrayList<>();
            for (var entry : m.weights().byName().entrySet()) {
                float[] w = entry.getValue().floats();
                float[] g = m.grads().get(entry.getKey()).floats();
                for (int trial = 0; trial < 2; trial++) {
                    int i = r.nextInt(w.length);
                    float keep = w[i], eps = 1e-2f;
                    w[i] = keep + eps;
                    double plus = m.loss(b);
                    w[i] = keep - eps;
                    double minus = m.loss(b);
                    w[i] = keep;
                    double numeric = (plus - minus) / (2 * eps);
                    assertThat((double) g[i]).as("%s[%d]", entry.getKey(), i)
                            .isCloseTo(numeric, within(2e-3 + 0.03 * Math.abs(numeric)));
                    checked.add(entry.getKey());
                }
            }
            assertThat(checked).contains("model.embed_tokens.weight", "lm_head.weight",
                    "model.layers.1.self_attn.k_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.norm.weight");
        }
    }

    @Test
    void theThreeCheckpointModesGiveIdenticalGradients() {
        ModelConfig c = TinyLlama.config(32, 56, 3, 4, 2, 37, true);
        Batch b = packedBatch(c.vocabSize(), 11);
        Map<String, float[]> reference = null;
        for (Checkpointing mode : Checkpointing.values()) {
            try (LlamaModel m = model(c, mode)) {
                m.grads().zero();
                double loss = m.forwardBackward(b, 1f);
                assertThat(loss).isPositive();
                Map<String, float[]> grads = new java.util.LinkedHashMap<>();
                m.grads().byName().forEach((k, v) -> grads.put(k, v.floats().clone()));
                if (reference == null) {
                    reference = grads;
                } else {
                    for (var e : reference.entrySet()) {
                        assertThat(grads.get(e.getKey())).as(mode + " " + e.getKey()).containsExactly(e.getValue());
                    }
                }
            }
        }
    }

    @Test
    void checkpointingTradesActivationsForLayerInputsAndOffloadMovesThemToTheHost() {
        ModelConfig c = TinyLlama.config(32, 56, 4, 4, 2, 37, false);
        Batch b = packedBatch(c.vocabSize(), 5);
        long[] activationPeak = new long[3], deviceCheckpoints = new long[3], hostCheckpoints = new long[3];
        for (Checkpointing mode : Checkpointing.values()) {
            try (LlamaModel m = model(c, mode)) {
                m.device().memory().resetPeaks();
                m.forwardBackward(b, 1f);
                activationPeak[mode.ordinal()] = m.device().memory().peak(MemoryCategory.ACTIVATIONS);
                deviceCheckpoints[mode.ordinal()] = m.device().memory().peak(MemoryCategory.CHECKPOINTS);
                hostCheckpoints[mode.ordinal()] = m.device().hostMemory().peak(MemoryCategory.CHECKPOINTS);
                // nothing is left behind after the step but weights and gradients
                assertThat(m.device().memory().current(MemoryCategory.ACTIVATIONS)).isZero();
                assertThat(m.device().memory().current(MemoryCategory.CHECKPOINTS)).isZero();
                assertThat(m.device().hostMemory().currentTotal()).isZero();
            }
        }
        int none = 0, device = 1, offload = 2;
        assertThat(activationPeak[device]).isLessThan(activationPeak[none] / 2);
        // every layer input (13 tokens × 32 × 4 B) is a checkpoint, on the device or on the host
        long oneInput = 13L * 32 * 4;
        assertThat(deviceCheckpoints[device]).isGreaterThanOrEqualTo(4 * oneInput);
        assertThat(hostCheckpoints[offload]).isEqualTo(4 * oneInput);
        // in forward: the layer's input and output, and the previous layer's input until its copy to the host ends
        assertThat(deviceCheckpoints[offload]).isLessThanOrEqualTo(3 * oneInput);
        assertThat(hostCheckpoints[none] + hostCheckpoints[device]).isZero();
    }

    @Test
    void documentsInOnePackDoNotSeeEachOther() {
        ModelConfig c = TinyLlama.small();
        Batch packed = packedBatch(c.vocabSize(), 9);
        try (LlamaModel m = model(c, Checkpointing.NONE)) {
            int[] firstIds = java.util.Arrays.copyOfRange(packed.ids(), 0, 7);
            int[] firstTargets = java.util.Arrays.copyOfRange(packed.targets(), 0, 7);
            int[] secondIds = java.util.Arrays.copyOfRange(packed.ids(), 7, 13);
            int[] secondTargets = java.util.Arrays.copyOfRange(packed.targets(), 7, 13);
            double first = m.loss(new Batch(firstIds, firstTargets, new int[] {0, 1, 2, 3, 4, 5, 6}, new int[] {0, 7}));
            double second = m.loss(new Batch(secondIds, secondTargets, new int[] {0, 1, 2, 3, 4, 5}, new int[] {0, 6}));
            // the packed loss is the mean over all 11 valid targets: 6 from the first, 5 from the second
            assertThat(m.loss(packed)).isCloseTo((6 * first + 5 * second) / 11, within(1e-5));
        }
    }
}
