package dev.longtune.model;

import dev.longtune.config.Checkpointing;
import dev.longtune.cuda.GpuTests;
import dev.longtune.config.ModelConfig;
import dev.longtune.config.Precision;
import dev.longtune.device.Device;
import dev.longtune.tensor.MemoryCategory;
import dev.longtune.tensor.MemoryTracker;
import dev.longtune.train.Optimizer;
import dev.longtune.train.StepResult;
import dev.longtune.train.Trainer;
import dev.longtune.train.TrainingConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Interrupting a training step (a notebook's interrupt button interrupts the cell's thread) abandons it at the next
 * layer boundary and leaves the trainer exactly as before the step: same memory by category on the device and the
 * host, same step counter, and the following steps give the losses and gradient norms of a run never interrupted.
 */
class InterruptedStepTest {
    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String device : GpuTests.devices()) {
            out.add(Arguments.of(device, ParameterPlacement.DEVICE, Checkpointing.DEVICE, "forward", 1, 1));
            out.add(Arguments.of(device, ParameterPlacement.DEVICE, Checkpointing.NONE, "backward", 1, 2));
            out.add(Arguments.of(device, ParameterPlacement.HOST, Checkpointing.OFFLOAD, "forward", 0, 1));
            out.add(Arguments.of(device, ParameterPlacement.HOST, Checkpointing.OFFLOAD, "backward", 2, 2));
        }
        return out.stream();
    }

    /** hidden 128, 2 query / 1 KV heads of 64, MLP 344, vocab 301, 3 layers. */
    static final ModelConfig CONFIG = TinyLlama.config(128, 344, 3, 2, 1, 301, false);

    static List<Batch> batches(int step, int microBatches) {
        Random r = new Random(100 + step);
        List<Batch> out = new ArrayList<>();
        for (int k = 0; k < microBatches; k++) {
            out.add(Batch.ofDocuments(List.of(r.ints(29, 0, 301).toArray(), r.ints(18, 0, 301).toArray())));
        }
        return out;
    }

    static Trainer trainer(Device d, ParameterPlacement placement, Checkpointing ck, int microBatches) {
        LlamaModel m = new LlamaModel(CONFIG, d, Precision.BF16, ck, placement);
        m.initialize(5);
        TrainingConfig tc = TrainingConfig.defaults(5).withLearningRate(5e-3, 5e-4).withGradientAccumulation(microBatches);
        return new Trainer(m, tc, Precision.BF16, Optimizer.Placement.HOST);
    }

    static Map<MemoryCategory, Long> current(MemoryTracker t) {
        Map<MemoryCategory, Long> m = new EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) {
            m.put(c, t.current(c));
        }
        return m;
    }

    @ParameterizedTest(name = "{0} parameters={1} checkpoints={2}: interrupted after {3} of layer {4}, {5} micro-batches")
    @MethodSource("cases")
    void anInterruptedStepLeavesTheTrainerAsBefore(String device, ParameterPlacement placement, Checkpointing ck,
                                                   String pass, int layer, int microBatches) {
        List<StepResult> uninterrupted = new ArrayList<>(), resumed = new ArrayList<>();
        try (Device d = ModelOnDevicesTest.open(device); Trainer t = trainer(d, placement, ck, microBatches)) {
            for (int s = 0; s < 3; s++) {
                uninterrupted.add(t.step(batches(s, microBatches)));
            }
            t.model().close();
        }
        try (Device d = ModelOnDevicesTest.open(device); Trainer t = trainer(d, placement, ck, microBatches)) {
            LlamaModel m = t.model();
            resumed.add(t.step(batches(0, microBatches)));
            MemoryTracker gpu = m.device().memory(), host = m.device().hostMemory();
            Map<MemoryCategory, Long> gpuBefore = current(gpu), hostBefore = current(host);
            int[] seen = new int[1];
            m.setLayerListener((p, i, n) -> {
                // in the last micro-batch, where the offloaded optimizer has started summing gradient norms
                if (p.equals(pass) && i == layer && ++seen[0] == microBatches) {
                    Thread.currentThread().interrupt();
                }
            });
            assertThatThrownBy(() -> t.step(batches(1, microBatches))).isInstanceOf(StepInterruptedException.class)
                    .hasMessageContaining("interrupted before");
            assertThat(Thread.interrupted()).as("the interrupt status is kept for the caller").isTrue();
            m.setLayerListener((p, i, n) -> { });
            assertThat(t.step()).as("the abandoned step is not counted").isEqualTo(1);
            if (device.equals("cuda")) {
                // the GPU keeps the last few batches' metadata (ids, positions, labels: KB) uploaded, in workspace, until
                // newer batches replace them (CudaDevice.batchInts): a bounded cache, not the step's memory
                gpuBefore.remove(MemoryCategory.WORKSPACE);
            }
            Map<MemoryCategory, Long> gpuAfter = current(gpu);
            gpuAfter.keySet().retainAll(gpuBefore.keySet());
            assertThat(gpuAfter).as("device memory by category").isEqualTo(gpuBefore);
            assertThat(current(host)).as("host memory by category").isEqualTo(hostBefore);
            for (int s = 1; s < 3; s++) {
                resumed.add(t.step(batches(s, microBatches)));
            }
            assertThat(t.step()).isEqualTo(3);
            m.close();
        }
        for (int s = 0; s < 3; s++) {
            StepResult a = uninterrupted.get(s), b = resumed.get(s);
            if (device.equals("cpu")) {
                assertThat(b.loss()).as("step %d loss", s + 1).isEqualTo(a.loss());
                assertThat(b.gradNorm()).as("step %d grad norm", s + 1).isEqualTo(a.gradNorm());
            } else { // the GPU's attention backward adds with atomics: equal to rounding
                assertThat(b.loss()).as("step %d loss", s + 1).isCloseTo(a.loss(), within(2e-3 * a.loss()));
                assertThat(b.gradNorm()).as("step %d grad norm", s + 1).isCloseTo(a.gradNorm(), within(2e-2 * a.gradNorm()));
            }
        }
        assertThat(uninterrupted.get(2).loss()).isNotEqualTo(uninterrupted.get(0).loss());
    }
}
