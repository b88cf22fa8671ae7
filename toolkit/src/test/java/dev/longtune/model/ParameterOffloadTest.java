package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.CpuDevice;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.Tensor;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Parameters offloaded to the host (ZeRO-3-style, a unit at a time on the device) train bit-identically to
 * resident ones on the CPU device, where the same schedule of copies and events runs synchronously.
 */
class ParameterOffloadTest {
    record Run(List<Double> losses, List<Double> norms, Map<String, float[]> weights, Map<String, float[]> master,
               boolean overlapped, List<Double> busySeconds) {}

    static Run train(ModelConfig c, Precision p, Checkpointing ck, ParameterPlacement placement, int microBatches) {
        return train(c, p, ck, placement, microBatches, 0);
    }

    static Run train(ModelConfig c, Precision p, Checkpointing ck, ParameterPlacement placement, int microBatches,
                     int residentLayers) {
        return train(c, p, ck, placement, microBatches, residentLayers, false);
    }

    static Run train(ModelConfig c, Precision p, Checkpointing ck, ParameterPlacement placement, int microBatches,
                     int residentLayers, boolean residentEmbedding) {
        CpuDevice device = new CpuDevice();
        try (LlamaModel m = residentLayers > 0 || residentEmbedding ? new LlamaModel(c, device, p, ck, residentLayers, residentEmbedding)
                : new LlamaModel(c, device, p, ck, placement)) {
            m.initialize(7);
            TrainingConfig tc = TrainingConfig.defaults(4).withLearningRate(5e-3, 5e-4).withGradientAccumulation(microBatches);
            try (Trainer t = new Trainer(m, tc, p, Optimizer.Placement.HOST)) {
                List<Double> losses = new ArrayList<>(), norms = new ArrayList<>(), busy = new ArrayList<>();
                Random r = new Random(11);
                for (int step = 0; step < 3; step++) {
                    List<Batch> batches = new ArrayList<>();
                    for (int mb = 0; mb < microBatches; mb++) {
                        batches.add(Batch.ofDocuments(List.of(r.ints(23, 0, c.vocabSize()).toArray(),
                                r.ints(14, 0, c.vocabSize()).toArray())));
                    }
                    StepResult s = t.step(batches);
                    losses.add(s.loss());
                    norms.add(s.gradNorm());
                    busy.add(s.busySeconds());
                    assertThat(s.busySeconds()).isPositive().isLessThanOrEqualTo(s.seconds());
                    // the device's idle time between units, by what came next: within the step's wall time beyond
                    // busy ("forward embedding" spans the time since the previous step's last unit: not in the first)
                    assertThat(s.idleSeconds()).containsKeys("forward layers", "backward layers", "backward embedding")
                            .allSatisfy((k, v) -> assertThat(v).as(k).isNotNegative());
                    double within = s.idleSeconds().entrySet().stream().filter(e -> !e.getKey().equals("forward embedding"))
                            .mapToDouble(Map.Entry::getValue).sum();
                    assertThat(within + s.busySeconds()).isLessThanOrEqualTo(s.seconds());
                    assertThat(s.idleSeconds().containsKey("forward embedding")).isEqualTo(step > 0 || microBatches > 1);
                }
                Map<String, float[]> w = new LinkedHashMap<>(), master = new LinkedHashMap<>();
                m.weights().byName().forEach((n, x) -> w.put(n, m.device().read(x)));
                t.optimizer().master().byName().forEach((n, x) -> master.put(n, m.device().read(x)));
                return new Run(losses, norms, w, master, t.overlapsUpdate(), busy);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1} tied={2} micro-batches={3}")
    @CsvSource({
            "bf16, device, false, 1",
            "bf16, offload, false, 2",
            "fp16, device, true, 2",
            "fp32, none, true, 1"})
    void offloadedTrainingIsBitIdenticalToResident(String precision, String checkpointing, boolean tied, int microBatches) {
        ModelConfig c = TinyLlama.config(32, 56, 3, 4, 2, 37, tied);
        Precision p = Precision.parse(precision);
        Checkpointing ck = Checkpointing.parse(checkpointing);
        Run resident = train(c, p, ck, ParameterPlacement.DEVICE, microBatches);
        Run offloaded = train(c, p, ck, ParameterPlacement.HOST, microBatches);
        // offloaded: the update runs unit by unit in the background (norms as gradients arrive), resident: in line
        assertThat(offloaded.overlapped()).isTrue();
        assertThat(resident.overlapped()).isFalse();
        assertThat(offloaded.losses()).containsExactlyElementsOf(resident.losses());
        assertThat(offloaded.norms()).containsExactlyElementsOf(resident.norms());
        assertThat(resident.losses().get(2)).isNotEqualTo(resident.losses().get(0)); // the steps changed the weights
        resident.weights().forEach((n, w) -> assertThat(offloaded.weights().get(n)).as(n).containsExactly(w));
        resident.master().forEach((n, w) -> assertThat(offloaded.master().get(n)).as(n).containsExactly(w));
    }

    /**
     * The first layers resident on the device (their optimizer state too, updated by the device's AdamW through the
     * ops of the resident path) give the same bits as every layer offloaded (the host AdamW in the background).
     */
    @ParameterizedTest(name = "{0} {1} resident={2} micro-batches={3} embedding={4}")
    @CsvSource({
            "bf16, offload, 1, 1, false",
            "fp16, device, 2, 2, true",
            "bf16, device, 3, 1, false",
            "bf16, offload, 0, 2, true"})
    void residentLayersTrainBitIdenticallyToOffloadedOnes(String precision, String checkpointing, int resident, int microBatches,
                                                         boolean embedding) {
        ModelConfig c = TinyLlama.config(32, 56, 3, 4, 2, 37, false);
        Precision p = Precision.parse(precision);
        Checkpointing ck = Checkpointing.parse(checkpointing);
        Run offloaded = train(c, p, ck, ParameterPlacement.HOST, microBatches);
        Run mixed = train(c, p, ck, ParameterPlacement.HOST, microBatches, resident, embedding);
        assertThat(mixed.overlapped()).isTrue();
        assertThat(mixed.losses()).containsExactlyElementsOf(offloaded.losses());
        assertThat(mixed.norms()).containsExactlyElementsOf(offloaded.norms());
        assertThat(offloaded.losses().get(2)).isNotEqualTo(offloaded.losses().get(0));
        offloaded.weights().forEach((n, w) -> assertThat(mixed.weights().get(n)).as(n).containsExactly(w));
        offloaded.master().forEach((n, w) -> assertThat(mixed.master().get(n)).as(n).containsExactly(w));
    }

    /** Resident layers move their weights, gradients and optimizer state from the host's trackers to the device's. */
    @Test
    void residentLayersLiveOnTheDevice() {
        ModelConfig c = TinyLlama.config(32, 56, 5, 4, 2, 37, false);
        CpuDevice device = new CpuDevice();
        try (LlamaModel m = new LlamaModel(c, device, Precision.BF16, Checkpointing.DEVICE, 2);
             Trainer t = new Trainer(m, TrainingConfig.defaults(2), Precision.BF16, Optimizer.Placement.HOST)) {
            m.initialize(3);
            assertThat(m.residentLayers()).isEqualTo(2);
            ParameterUnits units = new ParameterUnits(c);
            long resident = 0, all = m.weights().numel();
            for (int unit : new int[] {1, 2}) {
                for (String n : units.names(unit)) {
                    resident += m.weights().get(n).numel();
                    assertThat(m.isResident(n)).as(n).isTrue();
                }
            }
            assertThat(m.isResident("model.layers.2.mlp.up_proj.weight")).isFalse();
            assertThat(m.isResident("model.embed_tokens.weight")).isFalse();
            long layer = resident / 2;
            // host: every offloaded weight and gradient (2 bytes each) and its FP32 master, m and v (12 bytes)
            assertThat(device.hostMemory().current(MemoryCategory.WEIGHTS)).isEqualTo(2 * (all - resident));
            assertThat(device.hostMemory().current(MemoryCategory.GRADS)).isEqualTo(2 * (all - resident));
            assertThat(device.hostMemory().current(MemoryCategory.OPTIMIZER)).isEqualTo(12 * (all - resident));
            // device: the resident layers, their optimizer state, and a ring of two slots for the other three layers
            assertThat(device.memory().current(MemoryCategory.WEIGHTS)).isEqualTo(2 * resident + 2 * 2 * layer);
            assertThat(device.memory().current(MemoryCategory.GRADS)).isEqualTo(2 * resident + 2 * 2 * layer);
            assertThat(device.memory().current(MemoryCategory.OPTIMIZER)).isEqualTo(12 * resident);
            Random r = new Random(4);
            StepResult s = t.step(List.of(Batch.ofDocument(r.ints(19, 0, 37).toArray())));
            assertThat(s.applied()).isTrue();
            assertThat(device.memory().current(MemoryCategory.OPTIMIZER)).isEqualTo(12 * resident);
        }
    }

    @Test
    void everyLayerResidentNeedsNoRing() {
        ModelConfig c = TinyLlama.config(32, 56, 2, 4, 2, 37, false);
        CpuDevice device = new CpuDevice();
        try (LlamaModel m = new LlamaModel(c, device, Precision.BF16, Checkpointing.DEVICE, 2)) {
            m.initialize(3);
            long layers = m.weights().numel() - 2L * 37 * 32 - 32; // embedding, head and final norm off
            assertThat(device.memory().current(MemoryCategory.WEIGHTS)).isEqualTo(2 * layers);
        }
        assertThatThrownBy(() -> new LlamaModel(c, device, Precision.BF16, Checkpointing.DEVICE, 3))
                .hasMessageContaining("resident layers: 3 (0 to 2");
        ModelConfig tied = TinyLlama.config(32, 56, 2, 4, 2, 37, true);
        assertThatThrownBy(() -> new LlamaModel(tied, device, Precision.BF16, Checkpointing.DEVICE, 1, true))
                .hasMessageContaining("ties its embedding to the LM head");
    }

    @Test
    void theDeviceHoldsOnlyTheUnitsInFlight() {
        ModelConfig c = TinyLlama.config(32, 56, 5, 4, 2, 37, false);
        CpuDevice device = new CpuDevice();
        try (LlamaModel m = new LlamaModel(c, device, Precision.BF16, Checkpointing.DEVICE, ParameterPlacement.HOST)) {
            m.initialize(3);
            m.zeroGrads();
            ParameterUnits units = new ParameterUnits(c);
            // during the decoder layers' backward (the step's peak) only the ring is on the device: the embedding/head
            // slot is freed after the loss and brought back for the embedding's backward
            List<Long> weightsInLayerBackward = new ArrayList<>();
            m.setLayerListener((pass, layer, n) -> {
                if (pass.equals("backward") && layer > 0) {
                    weightsInLayerBackward.add(device.memory().current(MemoryCategory.WEIGHTS));
                }
            });
            m.forwardBackward(Batch.ofDocument(new Random(1).ints(19, 0, 37).toArray()), 1f);
            long all = m.weights().numel() * 2;
            long ring = 0, vocabulary = 0;
            for (int unit : new int[] {1, 2, units.head()}) { // a ring of two layers; the head's slot, shared with the embedding
                for (String n : units.names(unit)) {
                    if (unit == units.head()) {
                        vocabulary += m.weights().get(n).numel() * 2;
                    } else {
                        ring += m.weights().get(n).numel() * 2;
                    }
                }
            }
            assertThat(device.hostMemory().peak(MemoryCategory.WEIGHTS)).isEqualTo(all);
            assertThat(device.hostMemory().peak(MemoryCategory.GRADS)).isEqualTo(all);
            assertThat(device.memory().peak(MemoryCategory.WEIGHTS)).isEqualTo(ring + vocabulary).isLessThan(all);
            assertThat(device.memory().peak(MemoryCategory.GRADS)).isEqualTo(ring + vocabulary);
            assertThat(weightsInLayerBackward).hasSize(c.numLayers() - 1).containsOnly(ring);
            assertThat(device.memory().current(MemoryCategory.WEIGHTS)).isEqualTo(ring); // and after the step
        }
    }

    @Test
    void forwardOnlyPassesAgree() {
        ModelConfig c = TinyLlama.config(32, 56, 3, 4, 2, 37, true);
        Batch b = Batch.ofDocument(new Random(5).ints(21, 0, 37).toArray());
        try (LlamaModel resident = new LlamaModel(c, new CpuDevice(), Precision.BF16, Checkpointing.DEVICE);
             LlamaModel offloaded = new LlamaModel(c, new CpuDevice(), Precision.BF16, Checkpointing.DEVICE, ParameterPlacement.HOST)) {
            resident.initialize(2);
            offloaded.initialize(2);
            assertThat(offloaded.loss(b)).isEqualTo(resident.loss(b));
            try (Tensor a = resident.hiddenAfter(2, b); Tensor o = offloaded.hiddenAfter(2, b)) {
                assertThat(o.floats()).containsExactly(a.floats());
            }
        }
    }

    @Test
    void misuseIsRefused() {
        ModelConfig c = TinyLlama.config(32, 56, 3, 4, 2, 37, false);
        CpuDevice device = new CpuDevice();
        try (LlamaModel m = new LlamaModel(c, device, Precision.BF16, Checkpointing.DEVICE, ParameterPlacement.HOST)) {
            assertThatThrownBy(() -> new Trainer(m, TrainingConfig.defaults(1), Precision.BF16, Optimizer.Placement.DEVICE))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--optimizer host");
        }
        try (OffloadedParameters store = new OffloadedParameters(c, device, dev.longtune.tensor.DType.BF16, 2)) {
            assertThatThrownBy(() -> store.weight("model.layers.0.mlp.up_proj.weight"))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("outside an acquire");
            store.acquire(1, false, -1, false);
            assertThatThrownBy(() -> store.grad("model.layers.0.mlp.up_proj.weight"))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("with-gradients");
            assertThatThrownBy(() -> store.acquire(3, false, -1, false)) // layer 2 shares layer 0's ring slot
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("in use");
            store.release(1, false);
            assertThatThrownBy(() -> store.release(1, false)).isInstanceOf(IllegalStateException.class);
        }
        assertThatThrownBy(() -> new OffloadedParameters(c, device, dev.longtune.tensor.DType.BF16, 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least 2");
    }
}
