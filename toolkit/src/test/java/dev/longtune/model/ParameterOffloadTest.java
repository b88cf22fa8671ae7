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
        try (LlamaModel m = new LlamaModel(c, new CpuDevice(), p, ck, placement)) {
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
